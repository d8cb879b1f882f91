"""Subdomain partitions (§9.2): one embedding per subdomain, metadata filters, routing by content.

:class:`SubdomainEmbedding` fits every subdomain's basis in as few passes as a memory budget
allows; :func:`parse_where` reads metadata filters (``"lang=en"``, ``"year>=2010"``). One index
per subdomain and a merged ranking are :class:`veob_dask.index.SubdomainIndex`.
"""

from .embedding import SubdomainEmbedding
from .metadata import Condition, parse_where

__all__ = ["Condition", "SubdomainEmbedding", "parse_where"]
