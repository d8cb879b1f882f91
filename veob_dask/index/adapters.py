"""Optional adapters: export an embedding to a real vector index and query it the same way.

For users who already run a vector database. The paper stored its embeddings in ChromaDB, which
uses hnswlib underneath (ALGORITHMS.md §4); here the embedding is streamed chunk by chunk into an
hnswlib graph or a faiss index, and ``kneighbors`` returns ``(indices, sq_distances)`` like the
other indexes. The libraries are imported only when an adapter is built: they are extras
(``pip install hnswlib`` / ``pip install faiss-cpu``), never dependencies of veob_dask.
"""

from __future__ import annotations

import importlib
import os
import uuid
from typing import Any

import dask.array as da
import numpy as np

from .._contract import check_input
from ..errors import InvalidParameterError
from ..partition.base import as_rows
from .base import FINGERPRINT_ROWS, _IndexBase, fingerprint_of
from .exact import check_k

__all__ = ["VectorDBIndex"]

_BACKENDS = {"hnswlib": "hnswlib", "faiss-ivf": "faiss", "faiss-flat": "faiss"}


def _import(backend: str) -> Any:
    module = _BACKENDS[backend]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pip = "faiss-cpu" if module == "faiss" else module
        raise ImportError(
            f"the {backend!r} adapter needs the optional package {module!r}; install it with "
            f"`pip install {pip}`.") from err


def _backend_block(q: np.ndarray, index: VectorDBIndex, k: int, n_probe: Any,
                   allowed: np.ndarray | None, which: int) -> np.ndarray:
    return index._query(np.asarray(q), k, n_probe, allowed)[which]


class VectorDBIndex(_IndexBase):
    """An hnswlib or faiss index fed from a (lazy) embedding, as a nearest-neighbour estimator.

    Parameters
    ----------
    backend : {"hnswlib", "faiss-ivf", "faiss-flat"}, default="hnswlib"
    n_neighbors : int, default=10
        Neighbours per query when ``kneighbors`` is not told.
    n_probe : int, default=8
        faiss IVF ``nprobe``; for hnswlib the search ``ef`` is ``max(k, 10 * n_probe)`` unless
        ``ef`` is given.
    nlist : int or "auto", default="auto"
        faiss IVF lists (``sqrt(n)``); trained on the first ``256 * nlist`` rows.
    M, ef_construction, ef : int
        hnswlib graph parameters (defaults 16, 200, None).
    n_threads : int, optional
        Threads for building and querying (default: the CPU count).

    Attributes
    ----------
    index_ : hnswlib.Index or faiss.Index
        The backend's index.
    n_samples_seen_, n_features_in_ : int
    fingerprint_ : dict
        Fingerprint of the embedding (from the first and last rows streamed).
    n_passes_ : int
        1 (every chunk streamed into the backend once); faiss IVF reads its training rows (the
        first ``256 * nlist``) once more.

    Notes
    -----
    Memory: the backend holds every vector in memory; the embedding is read one row chunk at a
    time. ``kneighbors`` gives row numbers of the embedding and squared Euclidean distances;
    dask queries give lazy results chunked like the query rows. Not saved by
    ``veob_dask.save``: rebuild it, or use the backend's own files.
    """

    method = "vectordb"

    def __init__(self, backend: str = "hnswlib", *, n_neighbors: int = 10, n_probe: int = 8,
                 nlist: int | str = "auto", M: int = 16, ef_construction: int = 200,
                 ef: int | None = None, n_threads: int | None = None) -> None:
        self.backend = backend
        self.n_neighbors = n_neighbors
        self.n_probe = n_probe
        self.nlist = nlist
        self.M = M
        self.ef_construction = ef_construction
        self.ef = ef
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any = None) -> VectorDBIndex:
        """Stream the embedding's row chunks into the backend index.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        if self.backend not in _BACKENDS:
            raise InvalidParameterError(
                f"backend must be one of {sorted(_BACKENDS)}; got {self.backend!r}.")
        lib = _import(self.backend)
        x, _ = check_input(self, X, reset=True)
        x = as_rows(x)
        n, d = int(x.shape[0]), int(x.shape[1])
        threads = self.n_threads or os.cpu_count() or 1
        self.n_passes_ = 1
        if self.backend == "hnswlib":
            index = lib.Index(space="l2", dim=d)
            index.init_index(max_elements=n, M=self.M, ef_construction=self.ef_construction,
                             random_seed=100)

            def add(arr: np.ndarray, start: int) -> None:
                index.add_items(arr, np.arange(start, start + arr.shape[0]),
                                num_threads=threads)
        else:
            lib.omp_set_num_threads(threads)
            if self.backend == "faiss-flat":
                index = lib.IndexFlatL2(d)
            else:
                nlist = max(1, round(n ** 0.5)) if self.nlist == "auto" else int(self.nlist)
                self._quantizer = lib.IndexFlatL2(d)
                index = lib.IndexIVFFlat(self._quantizer, d, nlist)
                index.train(np.asarray(x[: min(n, 256 * nlist)].compute(), dtype=np.float32))
                self.n_passes_ = 2

            def add(arr: np.ndarray, start: int) -> None:
                index.add(arr)
        head, tail = self._stream(x, add)
        self.index_ = index
        self.n_samples_seen_ = n
        self.fingerprint_ = fingerprint_of(head, tail, x.shape, x.dtype)
        return self

    @staticmethod
    def _stream(x: Any, add: Any) -> tuple[np.ndarray, np.ndarray]:
        """Feed every row chunk to ``add(rows, first_row)``; keep the first and last rows for
        the fingerprint."""
        start, head, tail = 0, [], np.empty((0, x.shape[1]), dtype=x.dtype)
        for block in x.to_delayed().ravel():
            arr = np.asarray(block.compute())
            if start < FINGERPRINT_ROWS:
                head.append(arr[:FINGERPRINT_ROWS - start])
            tail = np.concatenate([tail, arr])[-FINGERPRINT_ROWS:]
            add(np.ascontiguousarray(arr, dtype=np.float32), start)
            start += arr.shape[0]
        return np.concatenate(head), tail

    def save(self, path: Any, **kwargs: Any) -> None:
        """Refused: a backend index is rebuilt, or saved with the backend's own files."""
        raise TypeError("a VectorDBIndex is not saved by veob_dask (its vectors live in the "
                        "backend): rebuild it, or use the backend's own save.")

    def _fitted_rows(self) -> Any:
        raise InvalidParameterError("VectorDBIndex.kneighbors needs the query rows X (the "
                                    "backend keeps the indexed vectors).")

    def kneighbors(self, X: Any = None, n_neighbors: int | None = None,
                   return_distance: bool = True, *, n_probe: Any = None,
                   allowed: Any = None) -> Any:
        """As :meth:`~veob_dask.index.ExactIndex.kneighbors`, restricted to ``allowed`` rows.

        ``allowed`` (row numbers) restricts the answer to those rows inside the engine — the
        metadata filter of a vector database: hnswlib's ``filter`` callback and faiss's
        ``IDSelectorBatch`` both skip the other rows during the search instead of
        post-filtering a longer list (so ``k`` answers come back whenever ``k`` rows are
        allowed).
        """
        self._allowed = None
        if allowed is not None:
            ids = np.unique(np.asarray(allowed, dtype=np.int64).ravel())
            if ids.size and (ids[0] < 0 or ids[-1] >= self.n_samples_seen_):
                raise InvalidParameterError(
                    f"allowed must hold row numbers in [0, {self.n_samples_seen_}); got values "
                    f"from {ids[0]} to {ids[-1]}.")
            self._allowed = ids
        try:
            return super().kneighbors(X, n_neighbors, return_distance, n_probe=n_probe)
        finally:
            self._allowed = None

    def _search(self, q: Any, k: int, n_probe: Any) -> tuple[Any, Any]:
        ids = self._allowed
        k = check_k(k, self.n_samples_seen_ if ids is None else ids.size)
        if isinstance(q, da.Array):
            out = [da.map_blocks(_backend_block, q, self, k, n_probe, ids, w,
                                 chunks=(q.chunks[0], (k,)), dtype=dt,
                                 name=f"veob-vdb-{w}-{uuid.uuid4().hex}")
                   for w, dt in ((0, np.int64), (1, np.float64))]
            return out[0], out[1]
        return self._query(np.asarray(q), k, n_probe, ids)

    def _query(self, q: np.ndarray, k: int, n_probe: Any, ids: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(q, dtype=np.float32)
        p = int(self.n_probe if n_probe is None else n_probe)
        threads = self.n_threads or os.cpu_count() or 1
        if self.backend == "hnswlib":
            self.index_.set_ef(max(k, self.ef or 10 * p))
            if ids is None:
                labels, dist = self.index_.knn_query(q, k=k, num_threads=threads)
            else:
                keep = np.zeros(self.n_samples_seen_, dtype=bool)
                keep[ids] = True
                labels, dist = self.index_.knn_query(q, k=k, num_threads=threads,
                                                     filter=lambda label: bool(keep[label]))
        else:
            lib = _import(self.backend)
            sel = None if ids is None else lib.IDSelectorBatch(ids)
            if self.backend == "faiss-ivf":
                self.index_.nprobe = p
                params = None if sel is None else lib.SearchParametersIVF(sel=sel, nprobe=p)
            else:
                params = None if sel is None else lib.SearchParameters(sel=sel)
            dist, labels = self.index_.search(q, k, params=params)
        return np.asarray(labels, dtype=np.int64), np.asarray(dist, dtype=np.float64)
