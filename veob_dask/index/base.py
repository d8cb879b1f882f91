"""Search indexes with one interface: ``fit(embedding)``, ``kneighbors(queries, k, n_probe)``.

``ExactIndex`` is the blocked brute force (the reference); ``CellIndex`` searches the nearest
Voronoi cells of the §5 partition tree (``method="tree"``) or of k-means (``method="kmeans"``).
Both save to and load from a Zarr group; a stored index remembers a fingerprint of the embedding
it was built from and refuses to be used with another one.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import dask.array as da
import numpy as np
import zarr

from ..errors import InvalidParameterError, StoreFormatError
from ..io.store import _is_url, _local, atomic_store, open_group
from ..partition import KMeansCells, PartitionTree
from ..partition.base import as_rows
from .cells import CellSearcher, check_n_probe, search_any
from .exact import exact_kneighbors

__all__ = ["CellIndex", "ExactIndex", "embedding_fingerprint", "load_index"]

_ATTR = "veob_index"
_FORMAT = 1
_FP_ROWS = 256


def embedding_fingerprint(x: Any) -> dict[str, Any]:
    """Shape, dtype and a SHA-1 of the first and last 256 rows (two chunk reads)."""
    arr = x if isinstance(x, da.Array) else np.asarray(x)
    n = int(arr.shape[0])
    head = arr[:_FP_ROWS]
    tail = arr[max(0, n - _FP_ROWS):]
    if isinstance(arr, da.Array):
        head, tail = da.compute(head, tail)
    h = hashlib.sha1()
    for part in (head, tail):
        h.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
    return {"shape": [int(s) for s in arr.shape], "dtype": str(arr.dtype),
            "sha1": h.hexdigest()}


def _check_same_embedding(stored: dict[str, Any], embedding: Any, where: str) -> None:
    got = embedding_fingerprint(embedding)
    if got != stored:
        raise StoreFormatError(
            f"the index store {where} was built from a different embedding (stored fingerprint "
            f"shape={stored.get('shape')}, dtype={stored.get('dtype')}, sha1="
            f"{str(stored.get('sha1'))[:12]}; this embedding has shape={got['shape']}, "
            f"dtype={got['dtype']}, sha1={got['sha1'][:12]}). Rebuild the index from this "
            "embedding (veob index build EMBEDDING INDEX) or pass the embedding it was built from."
        )


class _IndexBase:
    """Shared checks and save/load plumbing."""

    method = "base"

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_rows_"):
            raise InvalidParameterError(
                f"this {type(self).__name__} is not fitted yet; call fit(embedding) first.")

    def check_embedding(self, embedding: Any) -> None:
        """Raise :class:`StoreFormatError` unless ``embedding`` is the one this index was built on."""
        self._check_fitted()
        _check_same_embedding(self.fingerprint_, embedding, f"({type(self).__name__})")

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the index to a Zarr group at ``path`` (temporary path, then rename)."""
        self._check_fitted()
        with atomic_store(path, overwrite=overwrite) as tmp:
            group = zarr.open_group(store=tmp if _is_url(tmp) else _local(tmp), mode="w")
            meta = {"format_version": _FORMAT, "method": self.method,
                    "params": self._params(), "fingerprint": self.fingerprint_,
                    "n_rows": self.n_rows_, "n_features": self.n_features_}
            for name, arr in self._arrays().items():
                rows = max(1, min(arr.shape[0], (1 << 24) // max(1, arr[:1].nbytes)))
                za = group.create_array(name, shape=arr.shape, dtype=arr.dtype,
                                        chunks=(rows, *arr.shape[1:]))
                za[...] = arr
            group.attrs[_ATTR] = meta

    def _params(self) -> dict[str, Any]:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}


class ExactIndex(_IndexBase):
    """The exact blocked search behind the common index interface.

    ``fit`` only keeps a reference to the (lazy) embedding and its fingerprint; ``kneighbors``
    runs :func:`~veob_dask.index.exact_kneighbors` (``n_probe`` is ignored). Saved, it stores no
    vectors, only the fingerprint: load it with the embedding.
    """

    method = "exact"

    def __init__(self, *, query_block: int = 256, n_threads: int | None = None) -> None:
        self.query_block = query_block
        self.n_threads = n_threads

    def fit(self, embedding: Any) -> ExactIndex:
        x = as_rows(embedding)
        self.embedding_ = x
        self.n_rows_, self.n_features_ = int(x.shape[0]), int(x.shape[1])
        self.fingerprint_ = embedding_fingerprint(x)
        return self

    def kneighbors(self, queries: Any, k: int = 10, n_probe: Any = None) -> tuple[Any, Any]:
        """Exact ``(indices, sq_distances)`` of the k nearest rows (numpy, or lazy for dask)."""
        self._check_fitted()
        base = self.embedding_
        if not isinstance(queries, da.Array) and len(base.chunks[0]) == 1:
            base = base.compute()
        return exact_kneighbors(queries, base, k, query_block=self.query_block,
                                n_threads=self.n_threads)

    def _params(self) -> dict[str, Any]:
        return {"query_block": self.query_block, "n_threads": self.n_threads}


class CellIndex(_IndexBase):
    """Approximate (or, with ``n_probe="all"``, exact) search over Voronoi cells.

    Parameters
    ----------
    method : {"tree", "kmeans"}, default="tree"
        Cells of the §5 partition tree, or of k-means.
    n_probe : int or "all", default=8
        Cells searched per query (can be overridden per call).
    max_depth, min_samples : optional
        Tree parameters (see :class:`~veob_dask.partition.PartitionTree`).
    n_clusters, max_iter : optional
        k-means parameters (see :class:`~veob_dask.partition.KMeansCells`).
    max_samples : int, "auto" or None, default="auto"
        Rows the cells are trained on.
    random_state : int, default=0
    n_threads : int, optional
        Threads of a search (default: the CPU count).

    Attributes
    ----------
    partition_ : PartitionTree or KMeansCells
        The fitted cells.
    n_rows_, n_features_, n_cells_ : int
    fingerprint_ : dict
        Fingerprint of the embedding the index was built from.

    Notes
    -----
    Build: the partitioner's passes, then one pass that places every row in its cell. Memory:
    the index holds the embedding (sorted by cell) and float32 residuals in memory, like faiss's
    ``IndexIVFFlat``; ``kneighbors`` on numpy queries is eager, on dask queries lazy (one search
    per query chunk). Determinism: fixed by ``random_state``.
    """

    method = "cells"

    def __init__(self, method: str = "tree", *, n_probe: int | str = 8,
                 max_depth: int | None = None, min_samples: int = 100,
                 n_clusters: int | str = "auto", max_iter: int = 10,
                 max_samples: int | str | None = "auto", random_state: int | None = 0,
                 n_threads: int | None = None) -> None:
        self.cell_method = method
        self.n_probe = n_probe
        self.max_depth = max_depth
        self.min_samples = min_samples
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_threads = n_threads

    def _make_partition(self) -> PartitionTree | KMeansCells:
        if self.cell_method == "tree":
            return PartitionTree(self.max_depth, min_samples=self.min_samples,
                                 max_samples=self.max_samples, keep_labels=True,
                                 random_state=self.random_state)
        if self.cell_method == "kmeans":
            return KMeansCells(self.n_clusters, max_iter=self.max_iter,
                               max_samples=self.max_samples, keep_labels=True,
                               random_state=self.random_state)
        raise InvalidParameterError(
            f"method must be 'tree' or 'kmeans'; got {self.cell_method!r}.")

    def fit(self, embedding: Any) -> CellIndex:
        """Build the cells, then sort every row of ``embedding`` into its cell."""
        part = self._make_partition()
        if isinstance(self.n_probe, str) and self.n_probe != "all":
            raise InvalidParameterError(f"n_probe must be a positive int or 'all'; "
                                        f"got {self.n_probe!r}.")
        x = as_rows(embedding)
        part.fit(x)
        labels = part.labels_
        del part.labels_
        members = np.argsort(labels, kind="stable")
        rank = np.empty_like(members)
        rank[members] = np.arange(members.size)
        vectors = np.empty(x.shape, dtype=x.dtype)
        start = 0
        for block in x.to_delayed().ravel():
            arr = np.asarray(block.compute())
            vectors[rank[start:start + arr.shape[0]]] = arr
            start += arr.shape[0]
        offsets = np.concatenate([[0], np.cumsum(part.cell_counts_)]).astype(np.int64)
        self.partition_ = part
        self.n_rows_, self.n_features_ = int(x.shape[0]), int(x.shape[1])
        self.n_cells_ = int(part.n_cells_)
        self.fingerprint_ = embedding_fingerprint(x)
        self._searcher = CellSearcher(part.cell_centroids_, offsets, members, vectors,
                                      part.cell_r2max_, self.n_threads)
        return self

    def kneighbors(self, queries: Any, k: int = 10, n_probe: Any = None) -> tuple[Any, Any]:
        """``(indices, sq_distances)`` of the k nearest rows among the ``n_probe`` nearest cells.

        Distances are exact float64 for the rows returned; ``n_probe="all"`` gives the exact
        answer (cells that cannot hold a neighbour are skipped by the triangle inequality).
        """
        self._check_fitted()
        p = check_n_probe(self.n_probe if n_probe is None else n_probe, self.n_cells_)
        return search_any(self._searcher, queries, k, p, self.n_rows_, self.n_features_)

    def _params(self) -> dict[str, Any]:
        return {"method": self.cell_method, "n_probe": self.n_probe, "max_depth": self.max_depth,
                "min_samples": self.min_samples, "n_clusters": self.n_clusters,
                "max_iter": self.max_iter, "max_samples": self.max_samples,
                "random_state": self.random_state, "n_threads": self.n_threads}

    def _arrays(self) -> dict[str, np.ndarray]:
        s = self._searcher
        out = {"offsets": s.offsets, "members": s.members, "vectors": s.vectors}
        for name, value in vars(self.partition_).items():
            if name.endswith("_") and isinstance(value, np.ndarray):
                out[f"partition_{name}"] = value
        return out


def load_index(path: str | os.PathLike[str], embedding: Any = None) -> ExactIndex | CellIndex:
    """Load an index saved by ``.save``; with ``embedding``, check it is the one indexed.

    An :class:`ExactIndex` needs ``embedding`` (it stores no vectors).

    Raises
    ------
    StoreNotFoundError
        If nothing exists at ``path``.
    StoreFormatError
        If the store is not an index, or was built from a different embedding.
    """
    group = open_group(path, mode="r")
    meta = group.attrs.get(_ATTR)
    where = repr(str(path))
    if not isinstance(meta, dict) or meta.get("format_version") != _FORMAT:
        raise StoreFormatError(f"{where} is not a veob_dask index store (no '{_ATTR}' attrs of "
                               f"format {_FORMAT}); build one with veob index build.")
    if embedding is not None:
        _check_same_embedding(meta["fingerprint"], embedding, where)
    index: ExactIndex | CellIndex
    if meta["method"] == "exact":
        if embedding is None:
            raise InvalidParameterError(f"{where} is an exact index; pass the embedding too.")
        index = ExactIndex(**meta["params"]).fit(embedding)
        return index
    index = CellIndex(**meta["params"])
    part = index._make_partition()
    for name, arr in group.arrays():
        if name.startswith("partition_"):
            setattr(part, name[len("partition_"):], np.asarray(arr[...]))
    part.keep_labels = False
    state = {"n_cells_": int(part.cell_centroids_.shape[0]),
             "n_samples_": int(meta["n_rows"]), "n_features_in_": int(meta["n_features"])}
    for key, value in state.items():
        setattr(part, key, value)
    index.partition_ = part
    index.n_rows_, index.n_features_ = int(meta["n_rows"]), int(meta["n_features"])
    index.n_cells_ = state["n_cells_"]
    index.fingerprint_ = meta["fingerprint"]
    index._searcher = CellSearcher(part.cell_centroids_, np.asarray(group["offsets"][...]),
                                   np.asarray(group["members"][...]),
                                   np.asarray(group["vectors"][...]), part.cell_r2max_,
                                   index.n_threads)
    return index
