"""Common part of the cell partitioners: Voronoi cells around centroids, fitted state, predict."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from .._contract import check_input
from .._validation import as_dask_2d, parse_seed
from ..errors import InvalidParameterError
from .cells import cell_statistics, voronoi_labels

__all__ = ["VoronoiCellsMixin", "as_rows", "check_max_samples", "sample_rows"]

#: Row chunk used when numpy input is wrapped as a dask array for the build passes.
NUMPY_CHUNK_ROWS = 131072


def as_rows(X: Any) -> da.Array:
    """Checked dask view of ``X`` (numpy is wrapped without copying), one column chunk."""
    if isinstance(X, da.Array):
        return as_dask_2d(X, what="X")
    arr = np.asarray(X)
    if arr.ndim == 2 and arr.shape[0] > 0:
        return as_dask_2d(arr, what="X", chunks=min(arr.shape[0], NUMPY_CHUNK_ROWS))
    return as_dask_2d(arr, what="X")


def fit_rows(est: Any, X: Any) -> tuple[da.Array, bool]:
    """``X`` checked for ``fit`` (see :mod:`veob_dask._contract`) as a dask array of rows, and
    whether it came in memory (then the partition keeps ``labels_`` unless told not to)."""
    x, lazy = check_input(est, X, reset=True)
    return as_rows(x), not lazy


def keeps_labels(keep_labels: Any, in_memory: bool) -> bool:
    """Resolve ``keep_labels`` ("auto": keep them for in-memory input, as scikit-learn's
    clusterers do; never for dask input, whose labels scale with the data)."""
    if keep_labels == "auto":
        return in_memory
    if not isinstance(keep_labels, bool | np.bool_):
        raise InvalidParameterError(f"keep_labels must be True, False or 'auto'; got "
                                    f"{keep_labels!r}.")
    return bool(keep_labels)


def check_max_samples(value: Any, n: int) -> int:
    """Validate an explicit ``max_samples`` (a positive int); return ``min(value, n)``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidParameterError(
            f"max_samples must be a positive int, 'auto' or None; got {value!r}.")
    return min(int(value), n)


def sample_rows(x: da.Array, m: int, random_state: Any) -> np.ndarray:
    """A uniform random sample of ``m`` distinct rows (sorted row order), read in one pass."""
    rng = np.random.default_rng(parse_seed(random_state))
    idx = np.sort(rng.choice(x.shape[0], size=m, replace=False))
    return np.asarray(x[idx].compute())


class VoronoiCellsMixin(ClusterMixin, BaseEstimator):
    """Fitted Voronoi cells: ``cell_centroids_``, counts, radii, neighbours; ``predict``.

    Subclasses find centroids in ``fit`` and call :meth:`_set_cells`, which runs the assignment
    pass (§5: every sample goes to its nearest centroid) and drops empty cells.
    ``fit_predict`` returns every row's cell: numpy for in-memory input, lazy dask for dask
    input (no extra pass until it is computed).
    """

    def _set_cells(self, x: da.Array, centroids: np.ndarray, keep_labels: bool) -> np.ndarray:
        """Assignment pass; store cell state; return the kept-cell numbers of the input cells."""
        stats = cell_statistics(x, centroids, keep_labels=keep_labels)
        keep = np.flatnonzero(stats.counts > 0)
        remap = np.full(centroids.shape[0], -1, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        a, b = np.divmod(stats.pair_codes, centroids.shape[0])
        ok = (remap[a] >= 0) & (remap[b] >= 0)
        stats.pair_codes = remap[a[ok]] * keep.size + remap[b[ok]]
        stats.pair_counts = stats.pair_counts[ok]
        stats.counts, stats.sums, stats.r2max = (stats.counts[keep], stats.sums[keep],
                                                 stats.r2max[keep])
        self.cell_centroids_ = np.ascontiguousarray(centroids[keep], dtype=np.float64)
        self.cell_counts_ = stats.counts
        self.cell_means_ = stats.sums / stats.counts[:, None]
        self.cell_r2max_ = stats.r2max
        self.neighbor_indptr_, self.neighbor_indices_ = stats.neighbours()
        self.n_cells_ = int(keep.size)
        self.n_samples_seen_ = int(stats.counts.sum())
        self.n_features_in_ = int(x.shape[1])
        if keep_labels:
            assert stats.labels is not None
            self.labels_ = remap[stats.labels]
        elif hasattr(self, "labels_"):
            del self.labels_
        return remap

    def predict(self, X: Any) -> Any:
        """Cell (nearest centroid) of each row; numpy in, numpy out; dask in, lazy dask out.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features_in_)

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples,)
            int64 cell numbers.
        """
        check_is_fitted(self, "cell_centroids_")
        x, _ = check_input(self, X, reset=False)
        return voronoi_labels(x, self.cell_centroids_)

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit the cells, then give every row's cell (``labels_`` when kept, else
        :meth:`predict`, lazy for dask input).

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        ndarray or dask.array.Array of shape (n_samples,)
        """
        self.fit(X)
        labels = getattr(self, "labels_", None)
        return labels if labels is not None else self.predict(X)

    def neighbors_of(self, cell: int) -> np.ndarray:
        """Cells that share a populated Voronoi face with ``cell``."""
        check_is_fitted(self, "neighbor_indptr_")
        return self.neighbor_indices_[self.neighbor_indptr_[cell]:self.neighbor_indptr_[cell + 1]]
