"""Nearest-neighbour search over embeddings: exact blocked search and cell indexes.

:func:`build_index` is the one entry point the CLI and the demo use::

    index = build_index(embedding, method="cells", n_probe=8)
    sq_distances, indices = index.kneighbors(queries, n_neighbors=10)
"""

from __future__ import annotations

from typing import Any

from .base import CellIndex, ExactIndex, embedding_fingerprint, load_index
from .exact import exact_kneighbors, merge_topk
from .subdomains import SubdomainIndex, SubdomainResult

__all__ = [
    "METHODS",
    "CellIndex",
    "ExactIndex",
    "SubdomainIndex",
    "SubdomainResult",
    "build_index",
    "embedding_fingerprint",
    "exact_kneighbors",
    "load_index",
    "merge_topk",
]

#: Index methods of :func:`build_index` ("cells" and "tree" are the §5 partition tree; the last
#: three are optional adapters needing hnswlib or faiss-cpu).
METHODS = ("exact", "cells", "tree", "kmeans", "hnswlib", "faiss-ivf", "faiss-flat")


def build_index(embedding: Any, method: str = "exact", **params: Any) -> Any:
    """Fit and return an index over ``embedding`` (numpy or dask, rows are vectors).

    Parameters
    ----------
    embedding : array-like or dask.array.Array of shape (n, d)
    method : {"exact", "cells", "tree", "kmeans"}, default="exact"
        ``"exact"``: blocked brute force; ``"cells"``/``"tree"``: cells of the §5 partition tree;
        ``"kmeans"``: k-means cells; ``"hnswlib"``, ``"faiss-ivf"``, ``"faiss-flat"``: the
        embedding exported to that library (optional extras, imported only here).
    **params
        Passed to :class:`ExactIndex` or :class:`CellIndex` (e.g. ``n_probe``, ``max_depth``,
        ``n_clusters``).

    Returns
    -------
    ExactIndex, CellIndex or VectorDBIndex
        Fitted; ``.kneighbors(queries, n_neighbors, n_probe=None) -> (sq_distances,
        indices)``, as scikit-learn's ``NearestNeighbors`` (squared Euclidean distances).
    """
    from ..errors import InvalidParameterError

    if method == "exact":
        return ExactIndex(**params).fit(embedding)
    if method in ("cells", "tree"):
        return CellIndex("tree", **params).fit(embedding)
    if method == "kmeans":
        return CellIndex("kmeans", **params).fit(embedding)
    if method in ("hnswlib", "faiss-ivf", "faiss-flat"):
        from .adapters import VectorDBIndex

        return VectorDBIndex(method, **params).fit(embedding)
    raise InvalidParameterError(f"method must be one of {METHODS}; got {method!r}.")
