"""Exact blocked k-nearest-neighbour search (squared Euclidean), never the whole distance matrix.

The search scans the base in row tiles. For a tile it computes, with one float32 matrix product,
``|b|^2 - 2 q.b`` for a block of queries (the query norm is constant per row, so the ranking is the
same), then keeps only the entries below each query's current k-th best distance (plus a rounding
margin). Those few candidates get their squared distance recomputed exactly in float64 from the
original rows and are merged into the running top-k with one vectorised sort. After the first tiles
the threshold is tight, so almost every entry is rejected by a row minimum and one comparison; no
``argpartition`` over a million distances per query is needed (that is what makes a plain numpy
brute force slow).

Both inputs are shifted by the mean of the base tile's chunk before the product, which keeps the
float32 cancellation error small for data far from the origin; the distances returned are
recomputed from the unshifted rows.

This is the one exact k-NN scan of the library: indexes, the retrieval evaluation and the text
models' neighbour queries all call :func:`exact_kneighbors`. The cosine distance ``1 - cos`` is
the same scan on rows scaled to unit length, ``|q̂ - b̂|² / 2``; two extra coordinates make a
zero row (whose cosine is taken as 0) sit at distance 1 from every other row.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from .._reduce import SPLIT_EVERY, tree_reduce
from .._validation import check_block_finite
from ..errors import DataError, DimensionMismatchError, InvalidParameterError

__all__ = ["METRICS", "check_k", "check_numpy_queries", "exact_kneighbors", "merge_topk"]

#: Distances :func:`exact_kneighbors` ranks by.
METRICS = ("sqeuclidean", "cosine")

_EPS32 = float(np.finfo(np.float32).eps)
#: Base rows per tile of one matrix product (the tile's distances for a query block stay small).
_TILE_ROWS = 16384
#: Rows of the first tile; tiles then double up to ``_TILE_ROWS`` while the threshold tightens.
_FIRST_TILE = 1024
#: Base rows read per task when the base is a numpy array.
_NUMPY_CHUNK_ROWS = 262144
#: Up to this many queries a chunk is scanned by float64 differences, one query at a time:
#: preparing the float32 product costs several passes over the chunk, more than a difference
#: pass per query for so few.
_DIRECT_QUERIES = 2
#: Base rows per step of the direct scan (its float64 temporaries stay near 16 MB at d = 256).
_DIRECT_ROWS = 8192


class _TopK:
    """Running top-k of a block of queries: exact float64 distances, indices, sorted per row."""

    def __init__(self, n: int, k: int) -> None:
        self.vals = np.full((n, k), np.inf)
        self.idx = np.full((n, k), -1, dtype=np.int64)

    def merge(self, rows: np.ndarray, cand_rows: np.ndarray, cand_vals: np.ndarray,
              cand_idx: np.ndarray) -> None:
        """Merge candidates (``cand_rows`` index into ``rows``, which are sorted and unique)."""
        k = self.vals.shape[1]
        m = rows.size
        r = np.concatenate([np.repeat(np.arange(m), k), cand_rows])
        v = np.concatenate([self.vals[rows].ravel(), cand_vals])
        i = np.concatenate([self.idx[rows].ravel(), cand_idx])
        order = np.lexsort((i, v, r))
        v, i = v[order], i[order]
        start = np.searchsorted(r[order], np.arange(m))
        sel = start[:, None] + np.arange(k)
        self.vals[rows] = v[sel]
        self.idx[rows] = i[sel]


def _scan_direct(state: _TopK, q: np.ndarray, chunk: np.ndarray, offset: int,
                 metric: str) -> None:
    """:func:`_scan_chunk` for a few queries, one query and one tile of rows at a time: float64
    distances to every row (cosine: ``2 − 2 cos`` from a dot product, re-ranked exactly on the
    unit rows of the candidates within 1e-12), the rows up to the k-th (ties included) merged."""
    k = state.vals.shape[1]
    d = chunk.shape[1]
    one = np.zeros(1, dtype=np.int64)
    for a in range(0, chunk.shape[0], _DIRECT_ROWS):
        tile = np.asarray(chunk[a:a + _DIRECT_ROWS])
        kk = min(k, tile.shape[0])
        if metric == "cosine":
            norms = np.sqrt(np.einsum("ij,ij->i", tile, tile, dtype=np.float64))
            inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        for i in range(q.shape[0]):
            if metric == "sqeuclidean":
                diff = q[i] - tile
                dist = np.einsum("ij,ij->i", diff, diff)
                margin = 0.0
            else:
                dist = 2.0 - 2.0 * (tile @ q[i, :d]) * inv
                margin = 1e-12
            kth = min(float(np.partition(dist, kk - 1)[kk - 1]), float(state.vals[i, -1]))
            cand = np.flatnonzero(dist <= kth + margin)
            if cand.size == 0:
                continue
            vals = dist[cand]
            if metric == "cosine":
                diff = q[i] - _unit_rows(tile[cand], 0)
                vals = np.einsum("ij,ij->i", diff, diff)
            state.merge(one + i, np.zeros(cand.size, dtype=np.int64), vals, cand + (offset + a))


def _scan_chunk(state: _TopK, q: np.ndarray, chunk: np.ndarray, offset: int,
                query_block: int, n_threads: int, metric: str = "sqeuclidean") -> None:
    """Update ``state`` (for all rows of ``q``, already in the form :func:`_rows_for` gives)
    with the base rows ``chunk`` starting at ``offset``."""
    if q.shape[0] <= _DIRECT_QUERIES:
        _scan_direct(state, q, chunk, offset, metric)
        return
    chunk = np.asarray(chunk) if metric == "sqeuclidean" else _unit_rows(chunk, 0)
    k = state.vals.shape[1]
    d = q.shape[1]
    shift = chunk.mean(axis=0, dtype=np.float64)
    bs = (chunk - shift).astype(np.float32, copy=False)
    baug = np.empty((chunk.shape[0], d + 1), dtype=np.float32)
    np.multiply(bs, -2.0, out=baug[:, :d])
    baug[:, d] = np.einsum("ij,ij->i", bs, bs)
    qs = (q - shift).astype(np.float32, copy=False)
    qaug = np.empty((q.shape[0], d + 1), dtype=np.float32)
    qaug[:, :d] = qs
    qaug[:, d] = 1.0
    qn = np.einsum("ij,ij->i", qs, qs).astype(np.float64)
    q64 = np.asarray(q, dtype=np.float64)
    # Tile boundaries: small first tiles (only when nothing is known yet), then full tiles.
    bounds = []
    start = 0
    size = _FIRST_TILE if not np.isfinite(state.vals[:, -1]).any() else _TILE_ROWS
    while start < chunk.shape[0]:
        stop = min(chunk.shape[0], start + size)
        bounds.append((start, stop))
        start, size = stop, min(_TILE_ROWS, 2 * size)
    tile_bmax = [float(baug[a:b, d].max()) for a, b in bounds]
    slack = 8.0 * (d + 1) * _EPS32

    def work(q0: int) -> None:
        q1 = min(q.shape[0], q0 + query_block)
        qa = qaug[q0:q1]
        qn_b = qn[q0:q1]
        for (a, b), bmax in zip(bounds, tile_bmax, strict=True):
            dist = qa @ baug[a:b].T
            margin = slack * (qn_b + bmax)
            kth = state.vals[q0:q1, -1]
            thr = kth - qn_b + margin
            cold = ~np.isfinite(thr)
            if cold.any():
                kk = min(k, b - a)
                part = np.partition(dist[cold], kk - 1, axis=1)[:, kk - 1]
                thr[cold] = part + margin[cold]
            rows = np.flatnonzero(dist.min(axis=1) <= thr)
            if rows.size == 0:
                continue
            rr, cc = np.nonzero(dist[rows] <= thr[rows, None].astype(np.float32))
            gr = rows[rr] + q0
            diff = q64[gr] - np.asarray(chunk[a + cc], dtype=np.float64)
            exact = np.einsum("ij,ij->i", diff, diff)
            state.merge(rows + q0, rr, exact, cc.astype(np.int64) + (offset + a))

    starts = range(0, q.shape[0], query_block)
    if n_threads <= 1 or q.shape[0] <= query_block:
        for q0 in starts:
            work(q0)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(work, starts))


def check_k(k: Any, n_base: int) -> int:
    """The number of neighbours asked for: a positive int, at most the indexed rows."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 1:
        raise InvalidParameterError(f"n_neighbors must be a positive integer; got {k!r}.")
    if int(k) > n_base:
        raise InvalidParameterError(
            f"n_neighbors must be at most the number of indexed rows ({n_base}); got "
            f"{int(k)}. Ask for fewer neighbours or index more rows."
        )
    return int(k)


def check_numpy_queries(q: Any, d: int) -> np.ndarray:
    """Queries as a checked 2-D numpy array of width ``d`` (one-line errors)."""
    q = np.asarray(q)
    if q.ndim == 1 and q.size == d:
        raise DataError(
            f"queries must be 2-D (n_queries, {d}); got 1-D with shape {q.shape}. Use "
            "q.reshape(1, -1) for a single query."
        )
    if q.ndim != 2:
        raise DataError(f"queries must be 2-D (n_queries, n_features); got shape {q.shape}.")
    if q.shape[1] != d:
        raise DimensionMismatchError(
            f"queries have {q.shape[1]} features but the indexed vectors have {d}; embed the "
            "queries with the same model (and n_components) as the index."
        )
    if not np.issubdtype(q.dtype, np.number) or np.iscomplexobj(q):
        raise DataError(f"queries must be real numbers; got dtype {q.dtype}.")
    if q.size and not np.all(np.isfinite(q)):
        raise DataError("queries contain NaN or inf values; clean them first.")
    return q


def _unit_rows(x: np.ndarray, slot: int) -> np.ndarray:
    """Rows scaled to unit length, float64, with two extra columns: a zero row becomes the unit
    vector of column ``d + slot`` (base rows slot 0, queries slot 1), at ``|.|² = 2`` from every
    other row, i.e. cosine distance 1."""
    x = np.asarray(x)
    n, d = x.shape
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    zero = norms == 0
    out = np.empty((n, d + 2))
    np.divide(x, np.where(zero, 1.0, norms)[:, None], out=out[:, :d])
    out[:, d + slot] = zero
    out[:, d + 1 - slot] = 0.0
    return out


def _rows_for(x: np.ndarray, metric: str, slot: int) -> np.ndarray:
    """The float64 rows the scan compares for ``metric`` (cosine: unit rows, see
    :func:`_unit_rows`)."""
    return np.asarray(x, dtype=np.float64) if metric == "sqeuclidean" else _unit_rows(x, slot)


def _from_squared(sq: np.ndarray, metric: str) -> np.ndarray:
    """Distances of ``metric`` from squared distances of the scanned rows (cosine: ``/2``)."""
    return sq if metric == "sqeuclidean" else sq / 2.0


def _topk_block(q: np.ndarray, chunk: np.ndarray, offset: int, k: int, metric: str,
                block_id: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Task kernel: top-k of query rows ``q`` among base rows ``chunk`` (dask path)."""
    check_block_finite(chunk, block_id)
    check_block_finite(q, block_id)
    state = _TopK(q.shape[0], min(k, chunk.shape[0]))
    _scan_chunk(state, _rows_for(q, metric, 1), chunk, offset, 256, 1, metric)
    return _from_squared(state.vals, metric), state.idx


def merge_topk(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge partial results ``[(sq_distances, indices), ...]`` of the same queries into the top ``k``.

    Each part holds sorted rows; parts may have fewer than ``k`` columns. Ties are broken by index.
    """
    vals = np.concatenate([p[0] for p in parts], axis=1)
    idx = np.concatenate([p[1] for p in parts], axis=1)
    order = np.lexsort((idx, vals), axis=1)[:, :k]
    return np.take_along_axis(vals, order, 1), np.take_along_axis(idx, order, 1)


def _pick(part: tuple[np.ndarray, np.ndarray], which: int) -> np.ndarray:
    return part[which]


def _dask_kneighbors(queries: da.Array, base: da.Array, k: int, metric: str,
                     split_every: int = SPLIT_EVERY) -> tuple[da.Array, da.Array]:
    """Lazy graph: one task per (query chunk, base chunk), then a tree merge per query chunk."""
    if len(queries.chunks[1]) > 1:
        queries = queries.rechunk({1: -1})
    if len(base.chunks[1]) > 1:
        base = base.rechunk({1: -1})
    token = tokenize(queries, base, k, metric)
    offsets = np.concatenate([[0], np.cumsum(base.chunks[0])]).astype(int)
    base_blocks = base.to_delayed().ravel().tolist()
    merge = partial(merge_topk, k=k)
    indices, sq = [], []
    for i, qb in enumerate(queries.to_delayed().ravel().tolist()):
        parts = [dask.delayed(_topk_block, pure=True)(
            qb, bb, int(offsets[j]), k, metric, (i, j),
            dask_key_name=(f"veob-knn-part-{token}", i, j)) for j, bb in enumerate(base_blocks)]
        final = tree_reduce(parts, merge, split_every=split_every, name=f"veob-knn-merge-{i}",
                            token=token)
        rows = queries.chunks[0][i]
        indices.append(da.from_delayed(dask.delayed(_pick, pure=True)(final, 1),
                                       shape=(rows, k), dtype=np.int64))
        sq.append(da.from_delayed(dask.delayed(_pick, pure=True)(final, 0),
                                  shape=(rows, k), dtype=np.float64))
    return da.concatenate(indices, axis=0), da.concatenate(sq, axis=0)


def _check_base(base: Any) -> Any:
    if not isinstance(base, da.Array):
        base = np.asarray(base)
    if base.ndim != 2 or base.shape[0] == 0 or base.shape[1] == 0:
        raise DataError(f"base must be a non-empty 2-D array; got shape {base.shape}.")
    return base


def _check_dask_queries(queries: da.Array, d: int) -> None:
    if queries.ndim != 2:
        raise DataError(f"queries must be 2-D; got shape {queries.shape}.")
    if queries.shape[1] != d:
        raise DimensionMismatchError(
            f"queries have {queries.shape[1]} features but the indexed vectors have {d}; "
            "embed the queries with the same model as the index."
        )


def _base_chunks(base: Any) -> Iterator[tuple[int, np.ndarray]]:
    """``(offset, chunk)`` of the base, a numpy chunk at a time (a dask base read in order with
    the current scheduler), each checked for NaN/inf."""
    if isinstance(base, da.Array):
        if len(base.chunks[1]) > 1:
            base = base.rechunk({1: -1})
        offset = 0
        for j in range(len(base.chunks[0])):
            chunk = np.asarray(base.blocks[j].compute())
            check_block_finite(chunk, (j, 0))
            yield offset, chunk
            offset += chunk.shape[0]
        return
    for start in range(0, base.shape[0], _NUMPY_CHUNK_ROWS):
        chunk = base[start:start + _NUMPY_CHUNK_ROWS]
        check_block_finite(chunk, (start // _NUMPY_CHUNK_ROWS, 0))
        yield start, chunk


def exact_kneighbors(
    queries: Any,
    base: Any,
    k: int,
    *,
    metric: str = "sqeuclidean",
    query_block: int = 256,
    n_threads: int | None = None,
) -> tuple[Any, Any]:
    """Exact k nearest neighbours of ``queries`` among the rows of ``base`` (squared Euclidean).

    Parameters
    ----------
    queries : ndarray or dask.array.Array of shape (n_queries, n_features)
        Query vectors.
    base : ndarray or dask.array.Array of shape (n_base, n_features)
        Indexed vectors, for example an embedding read lazily from Zarr.
    k : int
        Neighbours per query, ``1 <= k <= n_base``.
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        Squared Euclidean distance, or ``1 - cos`` (a zero row is at 1 from every row).
    query_block : int, default=256
        Queries per matrix product (numpy queries).
    n_threads : int, optional
        Threads over query blocks for numpy queries (default: the CPU count). BLAS is limited to
        one thread meanwhile.

    Returns
    -------
    indices : int64 array of shape (n_queries, k)
        Row numbers in ``base``, nearest first (ties broken by the lower row number).
    distances : float64 array of shape (n_queries, k)
        Squared Euclidean (or cosine) distances, ascending, recomputed exactly in float64.

    Raises
    ------
    DimensionMismatchError
        If queries and base have different feature counts.
    InvalidParameterError
        If ``k`` is not a positive integer or exceeds the number of base rows, or for an
        unknown ``metric``.
    DataError
        If an input is not 2-D or holds NaN/inf (for dask inputs, raised at compute time).

    Notes
    -----
    Laziness: numpy queries give numpy results (a dask base is read one row chunk at a time with
    the current scheduler); dask queries give lazy dask results chunked like the query rows, from
    one task per (query chunk, base chunk) and a tree merge.
    Memory: one base chunk, its float32 copy and one tile of distances per thread
    (``query_block x 16384`` float32); never the whole distance matrix.
    Determinism: results do not depend on chunking, thread count or scheduler.
    """
    base = _check_base(base)
    n_base, d = base.shape
    if metric not in METRICS:
        raise InvalidParameterError(f"metric must be one of {METRICS}; got {metric!r}.")
    if isinstance(query_block, bool) or not isinstance(query_block, (int, np.integer)) \
            or query_block < 1:
        raise InvalidParameterError(f"query_block must be a positive integer; got {query_block!r}.")
    if isinstance(queries, da.Array):
        _check_dask_queries(queries, d)
        k = check_k(k, n_base)
        base_d = base if isinstance(base, da.Array) else da.from_array(
            base, chunks=(_NUMPY_CHUNK_ROWS, -1))
        return _dask_kneighbors(queries, base_d, k, metric)
    q = check_numpy_queries(queries, d)
    k = check_k(k, n_base)
    threads = (os.cpu_count() or 1) if n_threads is None else int(n_threads)
    state = _TopK(q.shape[0], k)
    if q.shape[0] == 0:
        return state.idx, state.vals
    q_rows = _rows_for(q, metric, 1)
    for offset, chunk in _base_chunks(base):
        _scan_chunk(state, q_rows, chunk, offset, query_block, threads, metric)
    return state.idx, _from_squared(state.vals, metric)
