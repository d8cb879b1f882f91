"""Client-side products of tall, skinny panels, split by rows over the local cores.

Between two passes of the randomized solver the workers are idle and the client
orthogonalises d x l panels (d up to millions, l ~ 100). BLAS parallelises these shapes
poorly (``Bᵀ W`` is a long reduction, ``W -= B C`` is memory-bound): two OpenBLAS threads gave
1.1–1.3x on a 160,000 x 60 panel where splitting the rows over two Python threads, each running
single-threaded BLAS with the GIL released, gave 2x. Results are summed in a fixed order, so
they do not depend on timing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["gram", "matmul", "sub_matmul", "tmatmul"]

#: Rows below which a panel is multiplied in one piece (threads would cost more than they save).
MIN_ROWS = 20_000

_POOL: ThreadPoolExecutor | None = None


def _threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _slices(n: int) -> list[slice]:
    parts = min(_threads(), max(1, n // MIN_ROWS))
    edges = np.linspace(0, n, parts + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _map(fn: Callable[[slice], Any], n: int) -> list[Any]:
    global _POOL
    slices = _slices(n)
    if len(slices) == 1:
        return [fn(slices[0])]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_threads(), thread_name_prefix="veob-rows")
    return list(_POOL.map(fn, slices))


def tmatmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``aᵀ b`` for row-aligned tall panels."""
    parts = _map(lambda s: a[s].T @ b[s], a.shape[0])
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def gram(w: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``wᵀ w``, each row piece converted to ``dtype`` first (default: ``w``'s)."""
    def piece(s: slice) -> np.ndarray:
        z = w[s] if dtype is None else w[s].astype(dtype, copy=False)
        return z.T @ z
    parts = _map(piece, w.shape[0])
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def matmul(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``w @ m`` for a tall ``w`` and a small ``m``, in ``w``'s dtype."""
    out = np.empty((w.shape[0], m.shape[1]), dtype=np.result_type(w.dtype, m.dtype))
    _map(lambda s: np.matmul(w[s], m, out=out[s]), w.shape[0])
    return out


def sub_matmul(w: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """``w -= b @ c`` in place."""
    _map(lambda s: np.subtract(w[s], b[s] @ c, out=w[s]), w.shape[0])
