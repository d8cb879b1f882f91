"""Cell search (§7.2): rank cells by centroid distance, search the ``n_probe`` nearest exactly.

The index keeps the embedding sorted by cell, as residuals from the cell centroid (float32, so
distances are computed from small numbers with little rounding), plus the cells' centroids and
radii. A batch of queries is searched in two phases, each grouped by cell so one matrix product
serves every query that probes a cell:

1. each query's nearest cell gives its first k candidates and a threshold (its k-th distance);
2. the other probed cells are skipped when the triangle inequality shows no member can beat the
   threshold (``(|q - c| - r_c)^2 > tau``); otherwise only members below the threshold are kept.

With ``n_probe`` equal to the number of cells the search is exact (the pruning never drops a true
neighbour), and the pruning makes it much cheaper than a brute force on clustered data.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask.array as da
import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import DimensionMismatchError, InvalidParameterError
from .exact import check_k, check_numpy_queries

__all__ = ["CellSearcher"]


class CellSearcher:
    """In-memory search structure over cells (built by :class:`~veob_dask.index.CellIndex`).

    Parameters
    ----------
    centroids : ndarray (n_cells, d) float64
    offsets : ndarray (n_cells + 1,) int64
        Cell ``c`` holds sorted rows ``offsets[c]:offsets[c + 1]``.
    members : ndarray (n,) int64
        Original row number of each sorted row.
    vectors : ndarray (n, d)
        Rows sorted by cell (original values; used for the exact final distances).
    r2max : ndarray (n_cells,)
        Largest squared member distance to the centroid of each cell.
    n_threads : int, optional
        Threads over cells during a search (default: the CPU count); BLAS runs single-threaded
        meanwhile, since many small products on a busy machine lose more to BLAS's own thread
        synchronisation than they gain.
    """

    def __init__(self, centroids: np.ndarray, offsets: np.ndarray, members: np.ndarray,
                 vectors: np.ndarray, r2max: np.ndarray, n_threads: int | None = None) -> None:
        self.n_threads = n_threads
        self._token = uuid.uuid4().hex  # cheap dask token: never hash the vectors
        self.centroids = np.asarray(centroids, dtype=np.float64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.members = np.asarray(members, dtype=np.int64)
        self.vectors = vectors
        self.r2max = np.asarray(r2max, dtype=np.float64)
        n, d = vectors.shape
        cell_of_row = np.repeat(np.arange(self.centroids.shape[0]), np.diff(self.offsets))
        self.aug = np.empty((n, d + 1), dtype=np.float32)
        for a in range(0, n, 65536):  # residuals in row blocks: no n x d float64 temporary
            res = (vectors[a:a + 65536] - self.centroids[cell_of_row[a:a + 65536]]).astype(
                np.float32)
            np.multiply(res, -2.0, out=self.aug[a:a + res.shape[0], :d])
            self.aug[a:a + res.shape[0], d] = np.einsum("ij,ij->i", res, res)

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("veob-cell-searcher", self._token)

    @property
    def n_cells(self) -> int:
        return int(self.centroids.shape[0])

    def _cell_dist(self, qs: np.ndarray, qidx: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate ``|q - x|^2 - |q - c|^2`` for queries ``qidx`` and the members of ``c``."""
        d = qs.shape[1]
        qr = np.ones((qidx.size, d + 1), dtype=np.float32)
        qr[:, :d] = qs[qidx] - self.centroids[c]
        a, b = self.offsets[c], self.offsets[c + 1]
        dist = qr @ self.aug[a:b].T
        qn = np.einsum("ij,ij->i", qr[:, :d], qr[:, :d]).astype(np.float64)
        return dist, qn

    def search(self, q: np.ndarray, k: int, n_probe: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and exact squared distances of the (approximate) k nearest rows.

        Queries whose probed cells hold fewer than ``k`` rows are searched again with twice as
        many cells, so every query gets ``k`` neighbours.
        """
        with threadpool_limits(limits=1, user_api="blas"):
            idx, sq = self._search(q, k, n_probe)
        short = np.flatnonzero((idx < 0).any(axis=1))
        if short.size and n_probe < self.n_cells:
            idx[short], sq[short] = self.search(q[short], k, min(self.n_cells, 2 * n_probe))
        return idx, sq

    def _search(self, q: np.ndarray, k: int, n_probe: int) -> tuple[np.ndarray, np.ndarray]:
        nq = q.shape[0]
        nc = self.n_cells
        q64 = np.asarray(q, dtype=np.float64)
        cn = np.einsum("ij,ij->i", self.centroids, self.centroids)
        dc = np.einsum("ij,ij->i", q64, q64)[:, None] - 2.0 * (q64 @ self.centroids.T) + cn
        np.maximum(dc, 0.0, out=dc)
        p = min(n_probe, nc)
        if p < nc:
            probe = np.argpartition(dc, p - 1, axis=1)[:, :p]
            probe = np.take_along_axis(probe, np.argsort(
                np.take_along_axis(dc, probe, 1), axis=1, kind="stable"), 1)
        else:
            probe = np.argsort(dc, axis=1, kind="stable")
        vals = np.full((nq, k), np.inf)
        pos = np.full((nq, k), -1, dtype=np.int64)

        def phase1(group: tuple[int, np.ndarray]) -> None:
            c, qidx = group
            dist, qn = self._cell_dist(q64, qidx, c)
            cnt = dist.shape[1]
            kk = min(k, cnt)
            part = np.argpartition(dist, kk - 1, axis=1)[:, :kk] if kk < cnt else \
                np.broadcast_to(np.arange(cnt), (qidx.size, cnt))
            vals[qidx, :kk] = np.take_along_axis(dist, part, 1) + qn[:, None]
            pos[qidx, :kk] = part + self.offsets[c]

        # Phase 1: each query's nearest cell (every query in exactly one group).
        first = probe[:, 0]
        self._run(phase1, _groups(first, np.arange(nq)))
        tau = vals.max(axis=1)
        if p == 1:
            return self._finish(q64, vals, pos, k)
        # Phase 2: the other probed cells, pruned by the triangle inequality.
        qid = np.repeat(np.arange(nq), p - 1)
        cid = probe[:, 1:].ravel()
        gap = np.sqrt(dc[qid, cid]) - np.sqrt(self.r2max[cid])
        lower = np.where(gap > 0, gap * gap, 0.0)
        keep = lower <= tau[qid] * (1 + 1e-6)

        def phase2(group: tuple[int, np.ndarray]) -> tuple[np.ndarray, ...] | None:
            c, qidx = group
            dist, qn = self._cell_dist(q64, qidx, c)
            thr = (tau[qidx] - qn + 1e-5 * (tau[qidx] + qn)).astype(np.float32)
            rows = np.flatnonzero(dist.min(axis=1) <= thr)
            if rows.size == 0:
                return None
            rr, cc = np.nonzero(dist[rows] <= thr[rows, None])
            r = rows[rr]
            return qidx[r], dist[r, cc] + qn[r], cc + self.offsets[c]

        found = [f for f in self._run(phase2, _groups(cid[keep], qid[keep])) if f is not None]
        if found:
            rq = np.concatenate([np.repeat(np.arange(nq), k), *(f[0] for f in found)])
            rv = np.concatenate([vals.ravel(), *(f[1] for f in found)])
            rp = np.concatenate([pos.ravel(), *(f[2] for f in found)])
            o = np.lexsort((rp, rv, rq))
            start = np.searchsorted(rq[o], np.arange(nq))
            sel = o[start[:, None] + np.arange(k)]
            vals, pos = rv[sel], rp[sel]
        return self._finish(q64, vals, pos, k)

    def _run(self, func: Any, groups: list[tuple[int, np.ndarray]]) -> list[Any]:
        """Apply ``func`` to every group, on ``n_threads`` threads (BLAS held to one thread)."""
        threads = self.n_threads or os.cpu_count() or 1
        if threads <= 1 or len(groups) < 2 * threads:
            return [func(g) for g in groups]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(func, groups, chunksize=max(1, len(groups) // (8 * threads))))

    def _finish(self, q64: np.ndarray, vals: np.ndarray, pos: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Exact float64 distances of the chosen rows, sorted (ties by original row number)."""
        ok = pos >= 0
        idx = np.where(ok, self.members[np.where(ok, pos, 0)], -1)
        diff = q64[:, None, :] - self.vectors[np.where(ok, pos, 0)].astype(np.float64)
        sq = np.where(ok, np.einsum("ijk,ijk->ij", diff, diff), np.inf)
        o = np.lexsort((idx, sq), axis=1)
        return np.take_along_axis(idx, o, 1), np.take_along_axis(sq, o, 1)


def _groups(cells: np.ndarray, queries: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``[(cell, query numbers probing it), ...]`` by one stable sort of the cell numbers."""
    order = np.argsort(cells, kind="stable")
    cs = cells[order]
    starts = np.flatnonzero(np.diff(cs, prepend=-1))
    ends = np.append(starts[1:], cs.size)
    qs = queries[order]
    return [(int(cs[a]), qs[a:b]) for a, b in zip(starts, ends, strict=True)]


def check_n_probe(n_probe: Any, n_cells: int) -> int:
    """``n_probe``: a positive int (capped at the cell count) or ``"all"``."""
    if isinstance(n_probe, str) and n_probe == "all":
        return n_cells
    if isinstance(n_probe, bool) or not isinstance(n_probe, (int, np.integer)) or n_probe < 1:
        raise InvalidParameterError(
            f"n_probe must be a positive int or 'all'; got {n_probe!r}.")
    return min(int(n_probe), n_cells)


def _search_block(q: np.ndarray, searcher: CellSearcher, k: int, n_probe: int, which: int
                  ) -> np.ndarray:
    return searcher.search(np.asarray(q), k, n_probe)[which]


def search_any(searcher: CellSearcher, queries: Any, k: Any, n_probe: int, n_rows: int,
               n_features: int) -> tuple[Any, Any]:
    """Validate, then search numpy queries eagerly or dask queries lazily (chunked by rows)."""
    if isinstance(queries, da.Array):
        if queries.ndim != 2 or queries.shape[1] != n_features:
            raise DimensionMismatchError(
                f"queries must have shape (n, {n_features}); got {queries.shape}.")
        k = check_k(k, n_rows)
        q = queries.rechunk({1: -1})
        out = [da.map_blocks(_search_block, q, searcher, k, n_probe, w,
                             chunks=(q.chunks[0], (k,)), dtype=dt)
               for w, dt in ((0, np.int64), (1, np.float64))]
        return out[0], out[1]
    q = check_numpy_queries(queries, n_features)
    k = check_k(k, n_rows)
    if q.shape[0] == 0:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k))
    return searcher.search(q, k, n_probe)
