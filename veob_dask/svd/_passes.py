"""The data passes of the randomized solver: lazy sums over row blocks, one task per block.

Three products, each a dask array whose blocks are computed where the data chunk is read
(the read and the kernel fuse into one task) and summed as a tree of in-place additions:

``normal_product(x, q)``   ``Xᵀ X Q = Σ_b X_bᵀ (X_b Q)`` for a d x l panel ``Q`` (a power step);
``sketch_product(x, ...)`` ``Xᵀ Ω`` for a random sign matrix Ω drawn inside the tasks (the
                           start: one product per block instead of two, no panel to send);
``gram_product(x, q)``     ``(X Q)ᵀ (X Q)``, l x l (the last pass: the one block of the
                           projected matrix the earlier passes do not give);

With ``with_stats=True`` the same tasks also return the float64 statistics of their blocks
(column sums, sum of squares, row count; NaN/inf checks), so the first pass reads each chunk
once for both.

Sparse blocks (scipy.sparse or pydata ``sparse``) are multiplied in the compute dtype and their
partial products summed in it; dense blocks are converted to the compute dtype a cache-sized
sub-block at a time and accumulated in float64. Statistics are always float64.
"""

from __future__ import annotations

from typing import Any, Self

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.delayed import Delayed
from threadpoolctl import threadpool_limits

from ..errors import InvalidParameterError
from .kernels import as_csr, augmented_gram, block_stats, normal_block, subblock_rows

__all__ = [
    "WithStats",
    "compute_all",
    "gram_product",
    "has_sparse_blocks",
    "normal_product",
    "resolve_compute_dtype",
    "sketch_product",
    "sketch_rows",
]

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def resolve_compute_dtype(requested: Any, data_dtype: Any) -> np.dtype:
    """The dtype of the data products: ``requested``, or float32 for float32/float16 data and
    float64 otherwise (``None``)."""
    if requested is None:
        return np.dtype(np.float32 if np.dtype(data_dtype) in (np.float16, np.float32)
                        else np.float64)
    try:
        dt = np.dtype(requested)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InvalidParameterError(
            f"compute_dtype must be None, 'float32' or 'float64'; got {requested!r}.")
    return dt


def has_sparse_blocks(x: da.Array) -> bool:
    """Whether ``x``'s blocks are scipy.sparse or pydata ``sparse`` (from its meta)."""
    meta = getattr(x, "_meta", None)
    return bool(sp.issparse(meta) or type(meta).__module__.startswith("sparse"))


def _part_dtype(x: da.Array, dtype: Any) -> np.dtype:
    return np.dtype(dtype) if has_sparse_blocks(x) else np.dtype(np.float64)


def sketch_rows(seed: int, r0: int, r1: int, l: int, dtype: Any = np.float64) -> np.ndarray:
    """Rows ``r0:r1`` of the n x l random sign matrix Ω of ``seed``.

    Entry ``(i, j)`` is ±1 from the splitmix64 hash of ``seed`` and ``i·l + j``, so a row
    block is the same whatever the chunking and whichever worker draws it: no generator state
    is shared and nothing n-sized is ever sent.
    """
    offset = np.uint64((int(seed) * _GOLDEN + _GOLDEN) % 2**64)
    z = np.arange(r0 * l, r1 * l, dtype=np.uint64) + offset
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    # splitmix64 ends with z ^= z >> 31, which leaves the top bit, the only one used, as it is
    signs = np.less(z.view(np.int64), 0).astype(dtype)
    signs *= -2
    signs += 1
    return signs.reshape(r1 - r0, l)


def _omega(seed: int, row0: int, n_rows: int, l: int, dtype: Any) -> np.ndarray:
    """Ω for ``n_rows`` rows from global row ``row0``, drawn in pieces of about 2**20 entries."""
    out = np.empty((n_rows, l), dtype=dtype)
    step = max(1, (1 << 20) // max(1, l))
    for start in range(0, n_rows, step):
        stop = min(n_rows, start + step)
        out[start:stop] = sketch_rows(seed, row0 + start, row0 + stop, l, dtype)
    return out


class WithStats:
    """A partial product with the float64 statistics of the same row blocks (both with a
    leading axis of length 1 until the final sum): ``stats`` holds the column sums, the
    column sums of the sketch Ω (``l_omega`` of them, for centring), the sum of squares and
    the row count."""

    __slots__ = ("product", "stats")

    def __init__(self, product: np.ndarray, stats: np.ndarray) -> None:
        self.product = product
        self.stats = stats

    def copy(self) -> WithStats:
        return WithStats(self.product.copy(), self.stats.copy())

    def __add__(self, other: WithStats) -> WithStats:
        return WithStats(self.product + other.product, self.stats + other.stats)

    def __iadd__(self, other: WithStats) -> Self:
        self.product += other.product
        self.stats += other.stats
        return self

    def __getitem__(self, index: int) -> WithStats:
        return WithStats(self.product[index], self.stats[index])


def _normal_block(block: Any, q: np.ndarray, with_stats: bool = False) -> Any:
    """Kernel: ``X_bᵀ (X_b q)`` of one row block, shape (1, d, l) (a :class:`WithStats` if
    asked); see :func:`~veob_dask.svd.kernels.normal_block`."""
    if with_stats:
        return WithStats(_normal_block(block, q), _stats_block(block, 0, 0, 0))
    return normal_block(block, q)[None]


def _panel_gram_block(block: Any, q: np.ndarray, with_stats: bool = False) -> Any:
    """Kernel: ``(X_b q)ᵀ (X_b q)`` of one row block, shape (1, l, l), float64 (a
    :class:`WithStats` if asked): the leading block of
    :func:`~veob_dask.svd.kernels.augmented_gram` with the panel as basis."""
    if with_stats:
        return WithStats(_panel_gram_block(block, q), _stats_block(block, 0, 0, 0))
    l = q.shape[1]
    return augmented_gram(block, q, dtype=q.dtype)[None, :l, :l]


def _sketch_block(block: Any, rows: np.ndarray, seed: int, l: int, dtype: Any,
                  l_omega: int) -> WithStats:
    """Kernel: ``X_bᵀ Ω_b`` of one row block, shape (1, d, l), with its statistics."""
    row0 = int(rows[0]) if rows.size else 0
    return WithStats(_sketch_only(block, row0, seed, l, dtype),
                     _stats_block(block, row0, seed, l_omega))


def _sketch_only(block: Any, row0: int, seed: int, l: int, dtype: Any) -> np.ndarray:
    csr = as_csr(block, dtype)
    if csr is not None:
        # One product for the whole block: a sparse product writes a dense d x l result, so
        # splitting the block would multiply that cost.
        return np.asarray(csr.T @ _omega(seed, row0, csr.shape[0], l, dtype))[None]
    xb = np.asarray(block)
    n_rows, d = xb.shape
    out = np.zeros((1, d, l))
    step = subblock_rows(2 * d, limit=1 << 30)  # half a Gram sub-block: Ω takes the rest
    for start in range(0, n_rows, step):
        part = xb[start:start + step]
        omega = _omega(seed, row0 + start, part.shape[0], l, dtype)
        out[0] += part.astype(dtype, copy=False).T @ omega
    return out


def _stats_block(block: Any, row0: int, seed: int, l: int) -> np.ndarray:
    """Kernel: float64 statistics of one row block, shape (1, d + l + 2): column sums, the
    column sums of Ω_b (``l`` of them, for centring a sketch), the sum of squares and the row
    count (:func:`~veob_dask.svd.kernels.block_stats`). Raises
    :class:`~veob_dask.errors.DataError` on NaN/inf."""
    n_rows, d = block.shape
    stats = block_stats(block)
    out = np.zeros((1, d + l + 2))
    out[0, :d] = stats[:d]
    out[0, d + l:] = stats[d:]
    if l:
        out[0, d:d + l] = _omega(seed, row0, n_rows, l, np.float64).sum(axis=0)
    return out


def _tree_sum(parts: da.Array, dtype: Any, split_every: int | None, name: str) -> Delayed:
    """The sum of the per-block results, as one Delayed (computing a Delayed skips the copy
    dask.array makes of a single-chunk result, which is slow where fresh pages fault slowly;
    benchmarks/README.md, "Measurements behind choices in the code")."""
    # A tree of in-place additions: no concatenation of the partial products.
    total = da.reduction(
        parts, _identity, _sum_aggregate, combine=_sum_combine, axis=0, keepdims=False,
        dtype=dtype, split_every=split_every, concatenate=False,
        meta=np.empty((0,) * (parts.ndim - 1), dtype=dtype), name=name)
    return total.to_delayed().ravel()[0]


def _fingerprint(q: np.ndarray) -> str:
    """Deterministic name token of a panel without hashing all of it (hashing a 90 MB panel
    cost more than a second per fit): shape, a strided sample and the column sums."""
    sample = q.ravel()[:: max(1, q.size // 4096)]
    return str(da.core.tokenize(q.shape, str(q.dtype), sample, q.sum(axis=0)))


def normal_product(x: da.Array, q: np.ndarray, *, with_stats: bool = False,
                   split_every: int | None = None) -> Delayed:
    """Lazy ``Xᵀ X q`` of shape (d, l), as a Delayed.

    Parameters
    ----------
    x : dask.array.Array of shape (n, d)
        One column chunk; dense, scipy.sparse or pydata ``sparse`` blocks.
    q : ndarray of shape (d, l)
        The panel, in the compute dtype; it is an argument of every task (fused with the
        chunk read, so no chunk travels between workers).
    with_stats : bool, default=False
        Compute a :class:`WithStats` instead: the product and the statistics of the data
        (``l_omega = 0``), from the same reads.
    split_every : int, optional
        Fan-in of the tree reduction.

    Notes
    -----
    Laziness: builds a graph only. Memory per task: one dense sub-block (or the sparse block)
    plus a d x l partial product. The product is in ``q``'s dtype for sparse blocks and in
    float64 for dense ones.
    """
    d, l = q.shape
    dtype = _part_dtype(x, q.dtype)
    parts = da.blockwise(
        _normal_block, "iab", x, "ij", q, None, with_stats, None, new_axes={"a": d, "b": l},
        adjust_chunks={"i": 1}, concatenate=True, dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
        name="veob-normal-" + da.core.tokenize(x.name, _fingerprint(q), with_stats))
    return _tree_sum(parts, dtype, split_every, "veob-normal-sum")


def gram_product(x: da.Array, q: np.ndarray, *, with_stats: bool = False,
                 split_every: int | None = None) -> Delayed:
    """Lazy ``(X q)ᵀ (X q) = qᵀ Xᵀ X q`` of shape (l, l), float64, as a Delayed.

    The last pass of the solver needs only this block of the projected matrix: one product
    per block instead of two, and an l x l result instead of a d x l one. ``with_stats`` as
    in :func:`normal_product`.
    """
    l = q.shape[1]
    parts = da.blockwise(
        _panel_gram_block, "iab", x, "ij", q, None, with_stats, None, new_axes={"a": l, "b": l},
        adjust_chunks={"i": 1}, concatenate=True, dtype=np.float64, meta=np.empty((0, 0, 0)),
        name="veob-gram-" + da.core.tokenize(x.name, _fingerprint(q), with_stats))
    return _tree_sum(parts, np.float64, split_every, "veob-gram-sum")


def sketch_product(x: da.Array, seed: int, l: int, *, dtype: Any = np.float64,
                   l_omega: int = 0, split_every: int | None = None) -> Delayed:
    """Lazy :class:`WithStats`: ``Xᵀ Ω`` of shape (d, l) for the random sign matrix Ω of
    ``seed`` (:func:`sketch_rows`; the result does not depend on the chunking beyond
    rounding) and the statistics of the data, with the column sums of Ω's first
    ``l_omega`` columns (pass ``l`` to centre the sketch, 0 otherwise)."""
    d = x.shape[1]
    part = _part_dtype(x, dtype)
    # Each task learns its first global row from a chunk of this range (aligned with x).
    rows = da.arange(x.shape[0], chunks=(x.chunks[0],), dtype=np.int64)
    parts = da.blockwise(
        _sketch_block, "iab", x, "ij", rows, "i", int(seed), None, int(l), None,
        np.dtype(dtype), None, int(l_omega), None, new_axes={"a": d, "b": l},
        adjust_chunks={"i": 1}, concatenate=True, dtype=part,
        meta=np.empty((0, 0, 0), dtype=part),
        name="veob-sketch-" + da.core.tokenize(x.name, int(seed), int(l), str(np.dtype(dtype)),
                                               int(l_omega)))
    return _tree_sum(parts, part, split_every, "veob-sketch-sum")


def compute_all(*values: Delayed) -> list[Any]:
    """Compute pass results (Delayed) together, with BLAS held at one thread in this process
    (dask runs one task per core already); arrays come back as ndarrays."""
    with threadpool_limits(1, user_api="blas"):
        out = dask.compute(*values)
    return [v if isinstance(v, WithStats) else np.asarray(v) for v in out]


def _identity(x: np.ndarray, axis: Any = None, keepdims: Any = None) -> np.ndarray:
    return x


def _flatten(parts: Any) -> list[np.ndarray]:
    if isinstance(parts, (list, tuple)):
        return [a for p in parts for a in _flatten(p)]
    return [parts]


def _sum_combine(parts: Any, axis: Any = None, keepdims: Any = None) -> np.ndarray:
    """Sum partial results (each with a leading axis of length 1) into a fresh array."""
    flat = _flatten(parts)
    if len(flat) == 1:
        return flat[0].copy()
    acc = flat[0] + flat[1]  # one fresh array, no copy of the first part
    for p in flat[2:]:
        acc += p
    return acc


def _sum_aggregate(parts: Any, axis: Any = None, keepdims: Any = None) -> np.ndarray:
    return _sum_combine(parts)[0]
