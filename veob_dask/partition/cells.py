"""Voronoi cells around given centroids: the assignment pass, cell statistics and neighbours.

§5 of the paper assigns every sample to its nearest cell centroid in a pass separate from the
tree build, so the cells are true Voronoi cells of the centroids. One pass over the (lazy)
embedding gives, per row, the nearest and second-nearest centroid; from these follow per cell the
count, the member mean, the largest squared distance to the centroid (``r2max``) and the
neighbouring cells (two cells are neighbours when some sample has one as its nearest and the other
as its second-nearest centroid, i.e. lies near their shared Voronoi face).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from .._reduce import SPLIT_EVERY, tree_reduce
from .._validation import check_block_finite

__all__ = ["CellStats", "cell_statistics", "group_sums", "nearest_centroids", "voronoi_labels"]

#: Rows per distance tile inside one block (tile x n_cells float32 distances).
_ROW_TILE = 4096


def nearest_centroids(x: np.ndarray, centroids: np.ndarray, second: bool = False,
                      n_threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Nearest centroid of each row of ``x`` (and the second-nearest of every 4th row).

    Returns ``(labels int64, sq_distance float64, second_labels or None)``; ties go to the lower
    centroid number. ``second_labels`` has one entry per 4th row (rows 0, 4, 8, ...), enough to
    find which Voronoi faces are populated at a quarter of the cost. The distance to the chosen
    centroid is recomputed exactly in float64. ``n_threads`` threads share the row tiles
    (call it under a one-thread BLAS limit).
    """
    x = np.asarray(x)
    c = np.asarray(centroids, dtype=np.float64)
    shift = c.mean(axis=0)
    cs = (c - shift).astype(np.float32)
    d = c.shape[1]
    caug = np.empty((c.shape[0], d + 1), dtype=np.float32)
    caug[:, :d] = -2.0 * cs
    caug[:, d] = np.einsum("ij,ij->i", cs, cs)
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int64)
    labels2 = np.empty((n + 3) // 4, dtype=np.int64) if second else None

    def tile(a: int) -> None:
        m = min(n, a + _ROW_TILE) - a
        xa = np.ones((m, d + 1), dtype=np.float32)
        xa[:, :d] = x[a:a + m] - shift
        dist = xa @ caug.T
        best = np.argmin(dist, axis=1)
        labels[a:a + m] = best
        if labels2 is not None:
            sub = dist[::4]  # _ROW_TILE is a multiple of 4, so rows a, a+4, ... of x
            if c.shape[0] > 1:
                sub[np.arange(sub.shape[0]), best[::4]] = np.inf
            labels2[a // 4:a // 4 + sub.shape[0]] = np.argmin(sub, axis=1) if c.shape[0] > 1 \
                else best[::4]

    starts = range(0, n, _ROW_TILE)
    if n_threads > 1 and n > _ROW_TILE:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(tile, starts))
    else:
        for a in starts:
            tile(a)
    diff = x.astype(np.float64) - c[labels]
    sq = np.einsum("ij,ij->i", diff, diff)
    return labels, sq, labels2


def _labels_block(block: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    check_block_finite(block)
    return nearest_centroids(block, centroids)[0]


def voronoi_labels(x: Any, centroids: np.ndarray) -> Any:
    """Nearest-centroid cell of every row: numpy in, numpy out; dask in, lazy dask out."""
    if isinstance(x, da.Array):
        return da.map_blocks(_labels_block, x, centroids, drop_axis=1, dtype=np.int64)
    return nearest_centroids(np.asarray(x), centroids)[0]


@dataclass
class CellStats:
    """Per-cell statistics of one assignment pass (arrays indexed by cell number)."""

    counts: np.ndarray  # int64 (n_cells,)
    sums: np.ndarray  # float64 (n_cells, d)
    r2max: np.ndarray  # float64 (n_cells,)
    pair_codes: np.ndarray  # int64 codes a * n_cells + b of (nearest, second) pairs, a != b
    pair_counts: np.ndarray  # int64 samples per pair code
    labels: np.ndarray | None = None  # int64 (n,) when requested

    def neighbours(self) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric neighbour lists as CSR ``(indptr, indices)`` over cells."""
        m = self.counts.size
        a, b = np.divmod(self.pair_codes, m)
        both = np.unique(np.concatenate([a * m + b, b * m + a]))
        rows, cols = np.divmod(both, m)
        indptr = np.zeros(m + 1, dtype=np.int64)
        np.add.at(indptr, rows + 1, 1)
        return np.cumsum(indptr), cols.astype(np.int64)


def group_sums(x: np.ndarray, labels: np.ndarray, m: int) -> np.ndarray:
    """Per-group column sums in float64 (``m`` groups), one weighted ``bincount`` per column."""
    out = np.empty((m, x.shape[1]))
    for j in range(x.shape[1]):
        out[:, j] = np.bincount(labels, weights=x[:, j], minlength=m)
    return out


def _stats_block(block: np.ndarray, centroids: np.ndarray, keep_labels: bool) -> dict[str, Any]:
    check_block_finite(block)
    m = centroids.shape[0]
    labels, sq, second = nearest_centroids(block, centroids, second=True)
    assert second is not None
    counts = np.bincount(labels, minlength=m).astype(np.int64)
    sums = group_sums(np.asarray(block), labels, m)
    r2max = np.zeros(m)
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.diff(labels[order], prepend=-1))
    if starts.size:
        r2max[labels[order][starts]] = np.maximum.reduceat(sq[order], starts)
    first = labels[::4]
    diff = first != second
    codes, ccounts = np.unique(first[diff] * m + second[diff], return_counts=True)
    out = {"counts": counts, "sums": sums, "r2max": r2max, "codes": codes, "ccounts": ccounts}
    if keep_labels:
        out["labels"] = [labels]
    return out


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(parts[0])
    for p in parts[1:]:
        out["counts"] = out["counts"] + p["counts"]
        out["sums"] = out["sums"] + p["sums"]
        out["r2max"] = np.maximum(out["r2max"], p["r2max"])
        codes = np.concatenate([out["codes"], p["codes"]])
        cc = np.concatenate([out["ccounts"], p["ccounts"]])
        uniq, inv = np.unique(codes, return_inverse=True)
        out["codes"], out["ccounts"] = uniq, np.bincount(inv, weights=cc).astype(np.int64)
        if "labels" in out:
            out["labels"] = out["labels"] + p["labels"]
    return out


def cell_statistics(x: Any, centroids: np.ndarray, *, keep_labels: bool = False,
                    split_every: int = SPLIT_EVERY) -> CellStats:
    """One pass over ``x``: nearest centroid per row and the per-cell statistics.

    Parameters
    ----------
    x : ndarray or dask.array.Array of shape (n, d)
        Rows to assign; a dask array is read one row chunk per task.
    centroids : ndarray of shape (n_cells, d)
    keep_labels : bool, default=False
        Also return every row's cell (``n`` int64 values gathered on the client).
    split_every : int, default=8
        Fan-in of the tree reduction (:func:`~veob_dask._reduce.tree_reduce`).

    Notes
    -----
    Memory: per task one row chunk and a ``4096 x n_cells`` float32 distance tile; the partial
    statistics are ``O(n_cells * d)``. Computes with the current scheduler.
    """
    centroids = np.asarray(centroids, dtype=np.float64)
    if isinstance(x, da.Array):
        if len(x.chunks[1]) > 1:
            x = x.rechunk({1: -1})
        parts = [dask.delayed(_stats_block)(b, centroids, keep_labels)
                 for b in x.to_delayed().ravel()]
        res = tree_reduce(parts, _combine, split_every=split_every,
                          name="veob-cell-stats").compute()
    else:
        res = _stats_block(np.asarray(x), centroids, keep_labels)
    labels = np.concatenate(res["labels"]) if keep_labels else None
    return CellStats(counts=res["counts"], sums=res["sums"], r2max=res["r2max"],
                     pair_codes=res["codes"], pair_counts=res["ccounts"], labels=labels)
