"""Exact SVD of tall-and-skinny data by TSQR: the R factor of a tree QR, then a small SVD."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from .._validation import check_block_finite
from ..errors import ChunkLayoutError
from ._signs import flip_signs
from .result import SVDResult

__all__ = ["tsqr_svd"]


def _checked(block: np.ndarray, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    check_block_finite(block, block_id)
    if hasattr(block, "toarray"):  # scipy.sparse / pydata sparse: TSQR needs dense blocks
        block = block.toarray() if not hasattr(block, "todense") else block.todense()
    return np.asarray(block, dtype=np.float64)


def _tall_row_chunks(rows: tuple[int, ...], d: int) -> tuple[int, ...]:
    """Merge row chunks shorter than ``d`` into a neighbour (TSQR needs tall blocks)."""
    out: list[int] = []
    for c in rows:
        if out and (out[-1] < d or c < d):
            out[-1] += c
        else:
            out.append(c)
    return tuple(out)


def tsqr_svd(x: da.Array, *, center: bool = False) -> SVDResult:
    """Exact SVD through dask's direct TSQR (Benson, Gleich, Demmel 2013).

    More accurate than the Gram route for ill-conditioned spectra (no squaring), slower.
    Centering costs one extra pass for the column means.

    Raises
    ------
    ChunkLayoutError
        If ``x`` has more than one column chunk, or a row chunk shorter than the column count.

    Notes
    -----
    Laziness: computes. Memory: one chunk plus stacked d x d R factors per task.
    """
    n, d = x.shape
    if len(x.chunks[1]) != 1:
        raise ChunkLayoutError(
            f"tsqr needs one column chunk; got chunks {x.chunks[1]}. Use x.rechunk({{1: -1}})."
        )
    rows = _tall_row_chunks(x.chunks[0], d)
    if rows != x.chunks[0]:
        x = x.rechunk({0: rows})
    xf = da.map_blocks(_checked, x, dtype=np.float64)
    mean = None
    if center:
        (mean,) = dask.compute(xf.mean(axis=0))
        xf = xf - mean
    _, r = da.linalg.tsqr(xf)
    (r_np,) = dask.compute(r)
    _, s, vt = np.linalg.svd(np.asarray(r_np), full_matrices=False)
    total = float(np.sum(s**2))
    return SVDResult(s, flip_signs(vt), total, n, mean)
