"""Subdomain partitions (§9.2): an embedding per subdomain of the rows, fitted in one pass."""

from .embedding import SubdomainEmbedding

__all__ = ["SubdomainEmbedding"]
