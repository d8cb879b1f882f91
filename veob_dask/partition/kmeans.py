"""k-means cells (§7.2's alternative to the tree): k-means on a sample, then Voronoi cells.

Like faiss's IVF training, the centroids are fitted on a bounded uniform sample (64 rows per cell
by default, held in memory), here by scikit-learn's :class:`~sklearn.cluster.KMeans`; the
assignment pass then puts every row of the full, possibly out-of-core, embedding in the cell of
its nearest centroid, lazily block by block. A sample rather than ``MiniBatchKMeans`` over the
chunks: the sample is one pass and ``64 k`` rows, and on it ``KMeans`` reached a lower inertia
than ``MiniBatchKMeans`` in less time (and than the hand-written Lloyd this replaced;
``benchmarks/bench_search.py``, figures in ``benchmarks/README.md``). dask-ml's ``KMeans`` makes
one pass over the whole dataset per iteration after a k-means|| start of several passes; for
the ~sqrt(n) cells a search index wants, a sample suffices.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import parse_seed
from ..errors import InvalidParameterError
from .base import VoronoiCellsMixin, check_max_samples, fit_rows, keeps_labels, sample_rows

__all__ = ["KMeansCells", "kmeans_centroids"]


def kmeans_centroids(x: np.ndarray, n_clusters: int, *, max_iter: int = 10,
                     random_state: Any = 0) -> tuple[np.ndarray, int]:
    """k-means centroids of in-memory rows; returns ``(centroids, iterations run)``.

    scikit-learn: :func:`~sklearn.cluster.kmeans_plusplus` seeds drawn from a subsample of at
    most ``max(16 k, 2048)`` rows (seeding on all rows doubled the time for the same inertia in
    ``benchmarks/bench_search.py``), then :class:`~sklearn.cluster.KMeans` from those seeds on
    all of ``x``. Fewer distinct rows than clusters leave some centroids duplicated; the cells
    keep only those that receive rows.

    Examples
    --------
    >>> import numpy as np
    >>> c, _ = kmeans_centroids(np.array([[0.0], [0.1], [10.0], [10.1]]), 2)
    >>> np.sort(c.ravel()).round(2).tolist()
    [0.05, 10.05]
    """
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.exceptions import ConvergenceWarning

    seed = parse_seed(random_state)
    rng = np.random.default_rng(seed)
    m = min(x.shape[0], max(16 * n_clusters, 2048))
    sub = x[np.sort(rng.choice(x.shape[0], size=m, replace=False))] if m < x.shape[0] else x
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Number of distinct clusters", ConvergenceWarning)
        seeds, _ = kmeans_plusplus(sub, n_clusters, random_state=seed)
        km = KMeans(n_clusters, init=seeds, n_init=1, max_iter=max_iter).fit(x)
    return np.asarray(km.cluster_centers_, dtype=np.float64), int(km.n_iter_)


class KMeansCells(VoronoiCellsMixin):
    """Voronoi cells around k-means centroids, with the same fitted state as ``PartitionTree``.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of cells; ``"auto"`` is ``round(sqrt(n))``.
    max_iter : int, default=10
        Lloyd iterations of :class:`~sklearn.cluster.KMeans` on the sample.
    max_samples : int, "auto" or None, default="auto"
        Rows of the training sample; ``"auto"`` is ``64 * n_clusters`` (faiss warns below 39 per
        centroid and samples up to 256), ``None`` all rows (in memory).
    keep_labels : bool or "auto", default="auto"
        Keep every row's cell in ``labels_``; ``"auto"``: for in-memory input only.
    random_state : int or None, default=0
        Seed of the sample and the initial centroids.

    Attributes
    ----------
    cell_centroids_, cell_counts_, cell_means_, cell_r2max_, neighbor_indptr_, neighbor_indices_
        As for :class:`~veob_dask.partition.PartitionTree`.
    n_iter_ : int
        Lloyd iterations run (``KMeans.n_iter_``).
    labels_ : ndarray of shape (n_samples,)
        Cell of every row, when kept (see ``keep_labels``).
    n_samples_seen_, n_features_in_, n_cells_ : int
    n_passes_ : int
        2: one pass drawing the sample (or reading every row), one assignment pass.

    Notes
    -----
    Laziness: ``fit`` computes (one pass to draw the sample, one assignment pass).
    Memory: the sample (``max_samples x d``) plus one row chunk per task.
    Determinism: fixed by ``random_state``.
    """

    def __init__(self, n_clusters: int | str = "auto", *, max_iter: int = 10,
                 max_samples: int | str | None = "auto", keep_labels: bool | str = "auto",
                 random_state: int | None = 0) -> None:
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.keep_labels = keep_labels
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> KMeansCells:
        """Find the centroids on a sample, then assign every row to its nearest centroid."""
        x, in_memory = fit_rows(self, X)
        keep_labels = keeps_labels(self.keep_labels, in_memory)
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
            centroids, self.n_iter_ = kmeans_centroids(sample, k, max_iter=self.max_iter,
                                                       random_state=self.random_state)
            self._set_cells(x, centroids, keep_labels)
        self.n_passes_ = 2  # the sample (or every row) and the assignment
        return self
