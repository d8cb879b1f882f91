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
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..partition.base import as_rows
from .base import embedding_fingerprint
from .exact import _check_k, _check_numpy_queries

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


class VectorDBIndex:
    """An hnswlib or faiss index fed from a (lazy) embedding, behind the common interface.

    Parameters
    ----------
    backend : {"hnswlib", "faiss-ivf", "faiss-flat"}, default="hnswlib"
    n_probe : int, default=8
        faiss IVF ``nprobe``; for hnswlib the search ``ef`` is ``max(k, 10 * n_probe)`` unless
        ``ef`` is given.
    nlist : int or "auto", default="auto"
        faiss IVF lists (``sqrt(n)``); trained on the first ``256 * nlist`` rows.
    M, ef_construction, ef : int
        hnswlib graph parameters (defaults 16, 200, None).
    n_threads : int, optional
        Threads for building and querying (default: the CPU count).

    Notes
    -----
    Memory: the backend holds every vector in memory; the embedding is read one row chunk at a
    time. Indices are row numbers of the embedding; distances are squared Euclidean.
    Not saved by ``save``: rebuild it, or use the backend's own files.
    """

    method = "vectordb"

    def __init__(self, backend: str = "hnswlib", *, n_probe: int = 8, nlist: int | str = "auto",
                 M: int = 16, ef_construction: int = 200, ef: int | None = None,
                 n_threads: int | None = None) -> None:
        self.backend = backend
        self.n_probe = n_probe
        self.nlist = nlist
        self.M = M
        self.ef_construction = ef_construction
        self.ef = ef
        self.n_threads = n_threads

    def fit(self, embedding: Any) -> VectorDBIndex:
        """Stream the embedding's row chunks into the backend index."""
        if self.backend not in _BACKENDS:
            raise InvalidParameterError(
                f"backend must be one of {sorted(_BACKENDS)}; got {self.backend!r}.")
        lib = _import(self.backend)
        x = as_rows(embedding)
        n, d = int(x.shape[0]), int(x.shape[1])
        threads = self.n_threads or os.cpu_count() or 1
        chunks = x.to_delayed().ravel()
        if self.backend == "hnswlib":
            index = lib.Index(space="l2", dim=d)
            index.init_index(max_elements=n, M=self.M, ef_construction=self.ef_construction,
                             random_seed=100)
            start = 0
            for block in chunks:
                arr = np.asarray(block.compute(), dtype=np.float32)
                index.add_items(arr, np.arange(start, start + arr.shape[0]), num_threads=threads)
                start += arr.shape[0]
        else:
            lib.omp_set_num_threads(threads)
            if self.backend == "faiss-flat":
                index = lib.IndexFlatL2(d)
            else:
                nlist = max(1, round(n ** 0.5)) if self.nlist == "auto" else int(self.nlist)
                self._quantizer = lib.IndexFlatL2(d)
                index = lib.IndexIVFFlat(self._quantizer, d, nlist)
                train = np.asarray(x[: min(n, 256 * nlist)].compute(), dtype=np.float32)
                index.train(train)
            for block in chunks:
                index.add(np.ascontiguousarray(block.compute(), dtype=np.float32))
        self.index_ = index
        self.n_rows_, self.n_features_ = n, d
        self.fingerprint_ = embedding_fingerprint(x)
        return self

    def kneighbors(self, queries: Any, k: int = 10, n_probe: Any = None, *,
                   allowed: Any = None) -> tuple[Any, Any]:
        """``(indices int64, sq_distances float64)`` from the backend (numpy queries).

        ``allowed`` (row numbers) restricts the answer to those rows inside the engine — the
        metadata filter of a vector database: hnswlib's ``filter`` callback and faiss's
        ``IDSelectorBatch`` both skip the other rows during the search instead of
        post-filtering a longer list (so ``k`` answers come back whenever ``k`` rows are
        allowed).
        """
        if not hasattr(self, "index_"):
            raise InvalidParameterError("this VectorDBIndex is not fitted; call fit first.")
        q = np.ascontiguousarray(_check_numpy_queries(queries, self.n_features_),
                                 dtype=np.float32)
        ids = None
        if allowed is not None:
            ids = np.unique(np.asarray(allowed, dtype=np.int64).ravel())
            if ids.size and (ids[0] < 0 or ids[-1] >= self.n_rows_):
                raise InvalidParameterError(
                    f"allowed must hold row numbers in [0, {self.n_rows_}); got values from "
                    f"{ids[0]} to {ids[-1]}.")
        k = _check_k(k, self.n_rows_ if ids is None else ids.size)
        p = int(self.n_probe if n_probe is None else n_probe)
        threads = self.n_threads or os.cpu_count() or 1
        if self.backend == "hnswlib":
            self.index_.set_ef(max(k, self.ef or 10 * p))
            if ids is None:
                labels, dist = self.index_.knn_query(q, k=k, num_threads=threads)
            else:
                keep = np.zeros(self.n_rows_, dtype=bool)
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
