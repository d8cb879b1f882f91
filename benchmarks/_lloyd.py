"""The hand-written Lloyd k-means that ``KMeansCells`` used before scikit-learn's ``KMeans``.

Kept here only as the baseline of the k-means comparison in ``bench_search.py`` (issue 10: the
library keeps it only if it beats scikit-learn on inertia and time; it did not).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from veob_dask._validation import parse_seed
from veob_dask.partition.cells import group_sums, nearest_centroids


def lloyd(x: np.ndarray, n_clusters: int, *, max_iter: int = 20, tol: float = 1e-4,
          random_state: Any = 0) -> tuple[np.ndarray, int]:
    """Lloyd's k-means on in-memory rows; returns ``(centroids, iterations run)``.

    Starts from k-means++ seeds drawn from a subsample of at most ``max(16 k, 2048)`` rows (k
    rounds of D^2 sampling, each ``O(16 k d)``); an emptied cluster is re-seeded with the row
    farthest from its centroid. Stops when no centroid moves more than ``tol`` times the data's RMS spread.
    """
    rng = np.random.default_rng(parse_seed(random_state))
    x64 = np.asarray(x, dtype=np.float64)
    centroids = _kmeanspp(x64, n_clusters, rng)
    spread = float(np.sqrt(np.mean(np.var(x64, axis=0)) + 1e-300))
    it = 0
    while it < max_iter:
        it += 1
        labels, sq, _ = nearest_centroids(x, centroids, n_threads=os.cpu_count() or 1)
        counts = np.bincount(labels, minlength=n_clusters)
        sums = group_sums(x64, labels, n_clusters)
        new = centroids.copy()
        full = counts > 0
        new[full] = sums[full] / counts[full, None]
        empty = np.flatnonzero(~full)
        if empty.size:
            far = np.argsort(sq)[::-1][:empty.size]
            new[empty] = x64[far]
        shift = float(np.sqrt(np.max(np.sum((new - centroids) ** 2, axis=1))))
        centroids = new
        if shift <= tol * spread and not empty.size:
            break
    return centroids, it


def _kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (D^2 sampling) on a random subsample of ``x``."""
    m = min(x.shape[0], max(16 * k, 2048))
    sub = x[np.sort(rng.choice(x.shape[0], size=m, replace=False))] if m < x.shape[0] else x
    norms = np.einsum("ij,ij->i", sub, sub)

    def sqdist(i: int) -> np.ndarray:
        return np.maximum(norms - 2.0 * (sub @ sub[i]) + norms[i], 0.0)

    chosen = [int(rng.integers(m))]
    best = sqdist(chosen[0])
    for _ in range(1, k):
        total = best.sum()
        if total <= 0:  # fewer distinct rows than clusters: take any unchosen row
            rest = np.setdiff1d(np.arange(m), chosen)
            nxt = int(rest[0]) if rest.size else int(rng.integers(m))
        else:
            nxt = int(np.searchsorted(np.cumsum(best), rng.random() * total))
            nxt = min(nxt, m - 1)
        chosen.append(nxt)
        np.minimum(best, sqdist(nxt), out=best)
    return sub[chosen].copy()
