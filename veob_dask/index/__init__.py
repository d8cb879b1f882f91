"""Nearest-neighbour search over embeddings: exact blocked search and cell indexes."""

from __future__ import annotations

from .exact import exact_kneighbors, merge_topk

__all__ = ["exact_kneighbors", "merge_topk"]
