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
from sklearn.base import BaseEstimator

from .._contract import check_input
from ..errors import InvalidParameterError, NotFittedError, StoreFormatError
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
from .exact import check_k, exact_kneighbors

__all__ = ["CellIndex", "ExactIndex", "embedding_fingerprint", "fingerprint_of", "load_index",
           "read_index", "write_index"]

#: Rows at each end of an embedding that its fingerprint hashes.
FINGERPRINT_ROWS = 256
#: Most threads a loaded index may ask for.
MAX_THREADS = 1024


def embedding_fingerprint(x: Any) -> dict[str, Any]:
    """Shape, dtype and a SHA-1 of the first and last 256 rows (two chunk reads)."""
    arr = x if isinstance(x, da.Array) else np.asarray(x)
    n = int(arr.shape[0])
    head = arr[:FINGERPRINT_ROWS]
    tail = arr[max(0, n - FINGERPRINT_ROWS):]
    if isinstance(arr, da.Array):
        head, tail = da.compute(head, tail)
    return fingerprint_of(head, tail, arr.shape, arr.dtype)


def fingerprint_of(head: np.ndarray, tail: np.ndarray, shape: tuple[int, ...],
                   dtype: Any) -> dict[str, Any]:
    """:func:`embedding_fingerprint` from the first and last 256 rows, already read."""
    h = hashlib.sha1()
    for part in (head, tail):
        h.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
    return {"shape": [int(s) for s in shape], "dtype": str(np.dtype(dtype)),
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


def _drop_self(ind: np.ndarray, sq: np.ndarray, start: int) -> np.ndarray:
    """Kernel: the k+1 neighbours of indexed rows ``start..`` without the row itself (the last
    one when a duplicate row ranks before it), stacked as ``[sq | ind]`` float64 columns."""
    rows = np.arange(start, start + ind.shape[0])[:, None]
    drop = ind == rows
    drop[~drop.any(axis=1), -1] = True
    k = ind.shape[1] - 1
    return np.hstack([sq[~drop].reshape(-1, k), ind[~drop].reshape(-1, k).astype(np.float64)])


def _drop_self_block(ind: np.ndarray, sq: np.ndarray,
                     block_info: dict[Any, Any] | None = None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return _drop_self(ind, sq, int(start))


class _IndexBase(BaseEstimator):
    """``fit(X)``, ``kneighbors(X, n_neighbors)`` as scikit-learn's ``NearestNeighbors``.

    ``kneighbors`` returns ``(distances, indices)``, nearest first; distances are squared
    Euclidean (what ``NearestNeighbors(metric="sqeuclidean")`` gives), the quantity every index
    here ranks by. Numpy queries give numpy; dask queries give lazy dask arrays chunked like
    the query rows. Subclasses implement ``_search(q, k, n_probe) -> (indices, sq)`` and
    ``_fitted_rows()``.
    """

    method = "base"

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_samples_seen_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(embedding) first.")

    def _search(self, q: Any, k: int, n_probe: Any) -> tuple[Any, Any]:  # pragma: no cover
        raise NotImplementedError

    def _fitted_rows(self) -> Any:  # pragma: no cover
        raise NotImplementedError

    def kneighbors(self, X: Any = None, n_neighbors: int | None = None,
                   return_distance: bool = True, *, n_probe: Any = None) -> Any:
        """The ``n_neighbors`` nearest indexed rows of each row of ``X``.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_queries, n_features_in_), optional
            Queries. None: every indexed row, its own row excluded (as scikit-learn does).
        n_neighbors : int, optional
            Neighbours per query (default: the ``n_neighbors`` parameter).
        return_distance : bool, default=True
            Also return the distances.
        n_probe : int or "all", optional
            Cells searched per query (cell indexes; overrides the parameter).

        Returns
        -------
        distances : ndarray or dask.array.Array of shape (n_queries, n_neighbors)
            Squared Euclidean distances, ascending (float64). Only with ``return_distance``.
        indices : ndarray or dask.array.Array of shape (n_queries, n_neighbors)
            Row numbers of the indexed embedding (int64); -1 where a cell search found fewer
            rows than asked in the cells it probed.
        """
        self._check_fitted()
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        if X is None:
            check_k(k, self.n_samples_seen_ - 1)
            ind, sq = self._search(self._fitted_rows(), int(k) + 1, n_probe)
            if isinstance(ind, da.Array):
                both = da.map_blocks(_drop_self_block, ind, sq, dtype=np.float64,
                                     chunks=(ind.chunks[0], (2 * int(k),)))
            else:
                both = _drop_self(ind, sq, 0)
            sq, ind = both[:, :int(k)], both[:, int(k):].astype(np.int64)
        else:
            q, _ = check_input(self, X, reset=False, what="X")
            ind, sq = self._search(q, k, n_probe)
        return (sq, ind) if return_distance else ind

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
        return dict(self.get_params(deep=False))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}


class ExactIndex(_IndexBase):
    """The exact blocked search as a nearest-neighbour estimator.

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours per query when ``kneighbors`` is not told.
    query_block : int, default=256
        Queries per matrix product (numpy queries).
    n_threads : int, optional
        Threads over query blocks (default: the CPU count).

    Attributes
    ----------
    embedding_ : ndarray or dask.array.Array of shape (n_samples_seen_, n_features_in_)
        The indexed rows as given (a lazy array stays lazy: it is read at each search).
    n_samples_seen_, n_features_in_ : int
    n_passes_ : int
        0: ``fit`` reads nothing (the fingerprint, read when the index is saved or checked,
        takes the first and last 256 rows).

    Notes
    -----
    ``kneighbors`` runs :func:`~veob_dask.index.exact_kneighbors` (``n_probe`` is ignored).
    Saved, it stores no vectors, only the fingerprint: load it with the embedding
    (``veob_dask.load(path, embedding=...)``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 4))
    >>> dist, ind = ExactIndex(n_neighbors=3).fit(X).kneighbors(X[:2])
    >>> ind[:, 0].tolist(), bool(np.allclose(dist[:, 0], 0))
    ([0, 1], True)
    """

    method = "exact"

    def __init__(self, n_neighbors: int = 10, *, query_block: int = 256,
                 n_threads: int | None = None) -> None:
        self.n_neighbors = n_neighbors
        self.query_block = query_block
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any = None) -> ExactIndex:
        """Keep a reference to the rows to search (nothing is read).

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            The embedding to index.
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        x, _ = check_input(self, X, reset=True)
        self.embedding_ = x
        self.n_samples_seen_ = int(x.shape[0])
        self.n_passes_ = 0
        return self

    @property
    def fingerprint_(self) -> dict[str, Any]:
        """Fingerprint of the indexed embedding (reads its first and last 256 rows)."""
        self._check_fitted()
        return embedding_fingerprint(self.embedding_)

    def _fitted_rows(self) -> Any:
        return self.embedding_

    def _search(self, q: Any, k: int, n_probe: Any) -> tuple[Any, Any]:
        base = self.embedding_
        if not isinstance(q, da.Array) and isinstance(base, da.Array) and \
                len(base.chunks[0]) == 1:
            base = base.compute()
        return exact_kneighbors(q, base, k, query_block=self.query_block,
                                n_threads=self.n_threads)


class CellIndex(_IndexBase):
    """Approximate (or, with ``n_probe="all"``, exact) search over Voronoi cells.

    Parameters
    ----------
    cells : {"tree", "kmeans"}, default="tree"
        Cells of the §5 partition tree, or of k-means.
    n_neighbors : int, default=10
        Neighbours per query when ``kneighbors`` is not told.
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
    n_samples_seen_, n_features_in_, n_cells_ : int
    fingerprint_ : dict
        Fingerprint of the embedding the index was built from.
    n_passes_ : int
        The partition's passes, plus one that sorts every row into its cell.

    Notes
    -----
    Build: the partitioner's passes, then one pass that places every row in its cell. Memory:
    the index holds the embedding (sorted by cell) and float32 residuals in memory, like faiss's
    ``IndexIVFFlat``; ``kneighbors`` on numpy queries is eager, on dask queries lazy (one search
    per query chunk). Determinism: fixed by ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> index = CellIndex(n_probe="all", min_samples=20).fit(X)
    >>> dist, ind = index.kneighbors(X[:2], n_neighbors=1)
    >>> ind.ravel().tolist()
    [0, 1]
    """

    method = "cells"

    def __init__(self, cells: str = "tree", *, n_neighbors: int = 10, n_probe: int | str = 8,
                 max_depth: int | None = None, min_samples: int = 100,
                 n_clusters: int | str = "auto", max_iter: int = 10,
                 max_samples: int | str | None = "auto", random_state: int | None = 0,
                 n_threads: int | None = None) -> None:
        self.cells = cells
        self.n_neighbors = n_neighbors
        self.n_probe = n_probe
        self.max_depth = max_depth
        self.min_samples = min_samples
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_threads = n_threads

    def _make_partition(self) -> PartitionTree | KMeansCells:
        if self.cells == "tree":
            return PartitionTree(self.max_depth, min_samples=self.min_samples,
                                 max_samples=self.max_samples, keep_labels=True,
                                 random_state=self.random_state)
        if self.cells == "kmeans":
            return KMeansCells(self.n_clusters, max_iter=self.max_iter,
                               max_samples=self.max_samples, keep_labels=True,
                               random_state=self.random_state)
        raise InvalidParameterError(
            f"cells must be 'tree' or 'kmeans'; got {self.cells!r}.")

    def fit(self, X: Any, y: Any = None) -> CellIndex:
        """Build the cells, then sort every row of ``X`` into its cell.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
            The embedding to index.
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        part = self._make_partition()
        check_n_probe(self.n_probe, 1)
        x, _ = check_input(self, X, reset=True)
        x = as_rows(x)
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
        n = int(x.shape[0])
        self.partition_ = part
        self.n_samples_seen_ = n
        self.n_cells_ = int(part.n_cells_)
        # From the sorted copy: the first and last rows are in memory, no read needed.
        self.fingerprint_ = fingerprint_of(vectors[rank[:FINGERPRINT_ROWS]],
                                           vectors[rank[max(0, n - FINGERPRINT_ROWS):]], x.shape,
                                           x.dtype)
        self.n_passes_ = int(part.n_passes_) + 1
        self._searcher = CellSearcher(part.cell_centroids_, offsets, members, vectors,
                                      part.cell_r2max_, self.n_threads)
        return self

    def _fitted_rows(self) -> np.ndarray:
        s = self._searcher
        rows = np.empty_like(s.vectors)
        rows[s.members] = s.vectors
        return rows

    def _search(self, q: Any, k: int, n_probe: Any) -> tuple[Any, Any]:
        """Distances are exact float64 for the rows returned; ``n_probe="all"`` gives the exact
        answer (cells that cannot hold a neighbour are skipped by the triangle inequality)."""
        p = check_n_probe(self.n_probe if n_probe is None else n_probe, self.n_cells_)
        return search_any(self._searcher, q, k, p, self.n_samples_seen_, self.n_features_in_)

    def _arrays(self) -> dict[str, np.ndarray]:
        s = self._searcher
        return {"offsets": s.offsets, "members": s.members, "vectors": s.vectors}


def write_index(writer: ArtifactWriter, index: ExactIndex | CellIndex) -> None:
    """Write a fitted index into the (root or nested) group of ``writer`` (header included)."""
    index._check_fitted()
    assert writer.header is not None
    writer.header.update(method=index.method, params=index._params(),
                         fingerprint=index.fingerprint_, n_rows=index.n_samples_seen_,
                         n_features=index.n_features_in_)
    for name, arr in index._arrays().items():
        writer.array(name, arr, dims=INDEX_ARRAYS[name].dims)
    part = getattr(index, "partition_", None)
    if part is not None:
        write_estimator(writer.subgroup("partition", "model"), part, PARTITIONS)


_N_PROBE = is_choice("all") | is_int(1)
_THREADS = NONE | is_int(1, MAX_THREADS)
#: Parameter rules of the two index classes (as stored in the header's ``params``).
INDEX_PARAMS = {
    "exact": EstimatorSpec(ExactIndex, params={"n_neighbors": is_int(1),
                                               "query_block": is_int(1, 1 << 20),
                                               "n_threads": _THREADS}),
    "cells": EstimatorSpec(CellIndex, params={
        "cells": is_choice("tree", "kmeans"), "n_neighbors": is_int(1), "n_probe": _N_PROBE,
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
    if method == "cells" and "method" in params and "cells" not in params:
        params = {**params, "cells": params["method"]}  # release 0.1's name
        del params["method"]
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
    kind = "PartitionTree" if params.get("cells", "tree") == "tree" else "KMeansCells"
    names = [n for n, _ in group.arrays() if n.startswith("partition_")]
    arrays = read_arrays(group, names, where)
    arrays = {n[len("partition_"):]: a for n, a in arrays.items()}
    keys = (("max_depth", "min_samples", "max_samples", "random_state") if kind == "PartitionTree"
            else ("n_clusters", "max_iter", "max_samples", "random_state"))
    centroids = arrays.get("cell_centroids_")
    state = {"n_cells_": int(centroids.shape[0]) if centroids is not None else 0,
             "n_samples_seen_": int(meta["n_rows"]), "n_features_in_": int(meta["n_features"])}
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
    index.n_samples_seen_, index.n_features_in_ = n_rows, n_features
    index.n_cells_ = int(part.n_cells_)
    index.n_passes_ = int(getattr(part, "n_passes_", 1)) + 1
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
