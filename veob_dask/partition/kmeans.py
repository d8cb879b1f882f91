"""k-means cells (§7.2's alternative to the tree): Lloyd iterations on a sample, then Voronoi cells.

Like faiss's IVF training, the centroids are found by Lloyd's algorithm on a uniform sample (64
rows per cell by default, held in memory); the assignment pass then puts every row of the full,
possibly out-of-core, embedding in the cell of its nearest centroid. dask-ml's ``KMeans`` instead
makes one pass over the whole dataset per Lloyd iteration, after a k-means|| initialisation that
itself needs several passes; for the ~sqrt(n) cells a search index wants, a sample suffices.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import parse_seed
from ..errors import InvalidParameterError
from .base import VoronoiCellsMixin, as_rows, check_max_samples, sample_rows
from .cells import group_sums, nearest_centroids

__all__ = ["KMeansCells", "lloyd"]


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


class KMeansCells(VoronoiCellsMixin):
    """Voronoi cells around k-means centroids, with the same fitted state as ``PartitionTree``.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of cells; ``"auto"`` is ``round(sqrt(n))``.
    max_iter : int, default=10
        Lloyd iterations on the sample.
    max_samples : int, "auto" or None, default="auto"
        Rows of the training sample; ``"auto"`` is ``64 * n_clusters`` (faiss warns below 39 per
        centroid and samples up to 256), ``None`` all rows (in memory).
    keep_labels : bool, default=False
        Keep every row's cell in ``labels_``.
    random_state : int or None, default=0
        Seed of the sample and the initial centroids.

    Attributes
    ----------
    cell_centroids_, cell_counts_, cell_means_, cell_r2max_, neighbor_indptr_, neighbor_indices_
        As for :class:`~veob_dask.partition.PartitionTree`.
    n_iter_ : int
        Lloyd iterations run.

    Notes
    -----
    Laziness: ``fit`` computes (one pass to draw the sample, one assignment pass).
    Memory: the sample (``max_samples x d``) plus one row chunk per task.
    Determinism: fixed by ``random_state``.
    """

    def __init__(self, n_clusters: int | str = "auto", *, max_iter: int = 10,
                 max_samples: int | str | None = "auto", keep_labels: bool = False,
                 random_state: int | None = 0) -> None:
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.keep_labels = keep_labels
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> KMeansCells:
        """Find the centroids on a sample, then assign every row to its nearest centroid."""
        x = as_rows(X)
        n = int(x.shape[0])
        if self.n_clusters == "auto":
            k = max(1, round(math.sqrt(n)))
        elif isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, int) \
                or not 1 <= self.n_clusters <= n:
            raise InvalidParameterError(
                f"n_clusters must be 'auto' or an int in [1, n_samples={n}]; "
                f"got {self.n_clusters!r}.")
        else:
            k = self.n_clusters
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) \
                or self.max_iter < 1:
            raise InvalidParameterError(f"max_iter must be a positive int; got {self.max_iter!r}.")
        if self.max_samples is None:
            m = n
        elif self.max_samples == "auto":
            m = min(n, 64 * k)
        else:
            m = max(k, check_max_samples(self.max_samples, n))
        # Many small products on few, busy cores: threads over tiles, one BLAS thread each.
        with threadpool_limits(limits=1, user_api="blas"):
            sample = sample_rows(x, m, self.random_state) if m < n else np.asarray(x.compute())
            centroids, self.n_iter_ = lloyd(sample, k, max_iter=self.max_iter,
                                            random_state=self.random_state)
            self._set_cells(x, centroids, self.keep_labels)
        return self
