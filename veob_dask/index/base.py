"""Search indexes with one interface: ``fit(embedding)``, ``kneighbors(queries, k, n_probe)``.

``ExactIndex`` is the blocked brute force (the reference); ``CellIndex`` searches the nearest
Voronoi cells of the §5 partition tree (``method="tree"``) or of k-means (``method="kmeans"``).
Both save to and load from a Zarr group (an artifact of kind ``"index"``); a stored index
remembers a fingerprint of the embedding it was built from and refuses to be used with another
one. Layout::

    attrs["veob_dask"] = {"format_version": 2, "kind": "index", "method": "cells" | "exact",
                          "params": {...}, "fingerprint": {...}, "n_rows": n, "n_features": d}
    offsets   (n_cells + 1,) int64      dims ("cell_offset",)
    members   (n,) int64                dims ("member",): a permutation of 0..n-1
    vectors   (n, d)                    dims ("member", "feature")
    partition/                          the fitted cells, a nested model (PartitionTree or
                                        KMeansCells)

Loading checks everything against the partition's schema and the index's own rules (offsets
monotone from 0 to n, members a permutation), so a tampered file cannot return row ids outside
the embedding. Version-1 index stores (``attrs["veob_index"]``, partition arrays flattened as
``partition_<attr>``) are read too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import zarr

from ..errors import InvalidParameterError, StoreFormatError
from ..io.location import Location, PathLike, as_location
from ..io.serialize import (
    NONE,
    ArraySpec,
    EstimatorSpec,
    ScalarSpec,
    build_estimator,
    check_arrays,
    is_choice,
    is_int,
    is_json,
    read_estimator,
    write_estimator,
)
from ..io.store import open_artifact, read_arrays
from ..io.writer import ArtifactWriter, create_artifact
from ..partition import KMeansCells, PartitionTree
from ..partition.base import as_rows
from ..partition.schema import SPECS as PARTITIONS
from .cells import CellSearcher, check_n_probe, search_any
from .exact import exact_kneighbors

__all__ = ["CellIndex", "ExactIndex", "embedding_fingerprint", "load_index", "read_index",
           "write_index"]

_FP_ROWS = 256
#: Most threads a loaded index may ask for.
MAX_THREADS = 1024


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
            "embedding (veob index build EMBEDDING -o INDEX) or pass the embedding it was built from."
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

    def save(self, path: PathLike | Location, *, overwrite: bool = False,
             storage_options: Mapping[str, Any] | None = None) -> None:
        """Write the index to a Zarr group at ``path`` (temporary path, then published)."""
        self._check_fitted()
        nbytes = sum(int(a.nbytes) for a in self._arrays().values())
        with create_artifact(path, "index", overwrite=overwrite,
                             storage_options=storage_options, nbytes=nbytes) as w:
            write_index(w, self)

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
        check_n_probe(self.n_probe, 1)
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
        return {"offsets": s.offsets, "members": s.members, "vectors": s.vectors}


def write_index(writer: ArtifactWriter, index: ExactIndex | CellIndex) -> None:
    """Write a fitted index into the (root or nested) group of ``writer`` (header included)."""
    index._check_fitted()
    assert writer.header is not None
    writer.header.update(method=index.method, params=index._params(),
                         fingerprint=index.fingerprint_, n_rows=index.n_rows_,
                         n_features=index.n_features_)
    for name, arr in index._arrays().items():
        writer.array(name, arr, dims=INDEX_ARRAYS[name].dims)
    part = getattr(index, "partition_", None)
    if part is not None:
        write_estimator(writer.subgroup("partition", "model"), part, PARTITIONS)


_N_PROBE = is_choice("all") | is_int(1)
_THREADS = NONE | is_int(1, MAX_THREADS)
#: Parameter rules of the two index classes (as stored in the header's ``params``).
INDEX_PARAMS = {
    "exact": EstimatorSpec(ExactIndex, params={"query_block": is_int(1, 1 << 20),
                                               "n_threads": _THREADS}),
    "cells": EstimatorSpec(CellIndex, params={
        "method": is_choice("tree", "kmeans"), "n_probe": _N_PROBE,
        "max_depth": NONE | is_int(0, 62), "min_samples": is_int(1),
        "n_clusters": is_choice("auto") | is_int(1), "max_iter": is_int(1),
        "max_samples": is_choice("auto") | NONE | is_int(1), "random_state": NONE | is_int(0),
        "n_threads": _THREADS}),
}
#: The arrays of a cell index: members sorted by cell, offsets of each cell's run.
INDEX_ARRAYS = {
    "offsets": ArraySpec(("cell_offset",), "iu", monotone=True, first=0, last="member"),
    "members": ArraySpec(("member",), "iu", permutation=True),
    "vectors": ArraySpec(("member", "feature"), "f"),
}
_INDEX_STATE = EstimatorSpec(CellIndex, arrays=INDEX_ARRAYS,
                             scalars={"n_rows": ScalarSpec(is_int(1), dim="member"),
                                      "n_features": ScalarSpec(is_int(1), dim="feature")})


def _checked_params(method: str, params: Any, where: str) -> dict[str, Any]:
    spec = INDEX_PARAMS[method]
    if not isinstance(params, dict) or not is_json().ok(params):
        raise StoreFormatError(f"{where}: the index parameters must be a JSON object.")
    for name, value in params.items():
        rule = spec.params.get(name)
        if rule is None or not rule.ok(value):
            raise StoreFormatError(
                f"{where}: index parameter {name!r} = {value!r} is not allowed"
                + (f" (expected {rule.expects})." if rule else "."))
    return dict(params)


def _legacy_partition(group: zarr.Group, params: dict[str, Any], meta: Mapping[str, Any],
                      where: str) -> Any:
    """The cells of a version-1 index store (partition arrays flattened in the root)."""
    kind = "PartitionTree" if params.get("method", "tree") == "tree" else "KMeansCells"
    names = [n for n, _ in group.arrays() if n.startswith("partition_")]
    arrays = read_arrays(group, names, where)
    arrays = {n[len("partition_"):]: a for n, a in arrays.items()}
    keys = (("max_depth", "min_samples", "max_samples", "random_state") if kind == "PartitionTree"
            else ("n_clusters", "max_iter", "max_samples", "random_state"))
    centroids = arrays.get("cell_centroids_")
    state = {"n_cells_": int(centroids.shape[0]) if centroids is not None else 0,
             "n_samples_": int(meta["n_rows"]), "n_features_in_": int(meta["n_features"])}
    if kind == "KMeansCells":
        state["n_iter_"] = 0
    return build_estimator(PARTITIONS, kind, {k: params[k] for k in keys if k in params},
                           state, arrays, where)


def load_index(path: PathLike | Location, embedding: Any = None, *,
               storage_options: Mapping[str, Any] | None = None) -> ExactIndex | CellIndex:
    """Load an index saved by ``.save``; with ``embedding``, check it is the one indexed.

    An :class:`ExactIndex` needs ``embedding`` (it stores no vectors).

    Raises
    ------
    StoreNotFoundError
        If nothing exists at ``path``.
    StoreFormatError
        If the store is not an index, was built from a different embedding, or its content
        fails the checks (parameters, cell offsets, member ids, partition state).
    """
    loc = as_location(path, storage_options)
    group, header = open_artifact(loc, "index")
    return read_index(group, header, repr(str(loc)), embedding)


def read_index(group: zarr.Group, header: Mapping[str, Any], where: str,
               embedding: Any = None) -> ExactIndex | CellIndex:
    """Build the index saved in an open (root or nested) group whose header is ``header``
    (see :func:`load_index`)."""
    meta = header.get("legacy") if header.get("format_version") == 1 else header
    try:
        method = meta["method"]
        fingerprint = dict(meta["fingerprint"])
        n_rows, n_features = int(meta["n_rows"]), int(meta["n_features"])
    except (KeyError, TypeError, ValueError) as err:
        raise StoreFormatError(f"{where}: the index header is incomplete ({err}).") from err
    if method not in INDEX_PARAMS:
        raise StoreFormatError(f"{where}: unknown index method {method!r}.")
    params = _checked_params(method, meta.get("params", {}), where)
    if embedding is not None:
        _check_same_embedding(fingerprint, embedding, where)
    if method == "exact":
        if embedding is None:
            raise InvalidParameterError(f"{where} is an exact index; pass the embedding too.")
        return ExactIndex(**params).fit(embedding)
    arrays = read_arrays(group, list(INDEX_ARRAYS), where)
    try:
        check_arrays(_INDEX_STATE, arrays, {"n_rows": n_rows, "n_features": n_features})
    except ValueError as err:
        raise StoreFormatError(f"{where}: the index is damaged: {err}.") from err
    sub = group.get("partition")
    part = (read_estimator(sub, f"{where}/partition", PARTITIONS) if isinstance(sub, zarr.Group)
            else _legacy_partition(group, params, meta, where))
    _check_partition(part, arrays, n_features, where)
    index = CellIndex(**params)
    index.partition_ = part
    index.n_rows_, index.n_features_ = n_rows, n_features
    index.n_cells_ = int(part.n_cells_)
    index.fingerprint_ = fingerprint
    index._searcher = CellSearcher(part.cell_centroids_, arrays["offsets"], arrays["members"],
                                   arrays["vectors"], part.cell_r2max_, index.n_threads)
    return index


def _check_partition(part: Any, arrays: Mapping[str, np.ndarray], n_features: int,
                     where: str) -> None:
    if not isinstance(part, (PartitionTree, KMeansCells)) or not hasattr(part, "n_cells_"):
        raise StoreFormatError(f"{where}: the index holds no fitted cells.")
    if arrays["offsets"].shape[0] != int(part.n_cells_) + 1 or \
            int(part.n_features_in_) != n_features:
        raise StoreFormatError(
            f"{where}: the index arrays disagree with its cells ({arrays['offsets'].shape[0]} "
            f"offsets for {part.n_cells_} cells; {part.n_features_in_} features for "
            f"{n_features}); the index is damaged.")
