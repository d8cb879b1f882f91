"""The common result every SVD solver returns to the estimators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SVDResult"]


@dataclass(frozen=True)
class SVDResult:
    """Top right singular vectors of a (possibly centered) data matrix.

    Attributes
    ----------
    singular_values : ndarray of shape (r,)
        Descending, float64. ``r`` may exceed the number of components finally kept.
    components : ndarray of shape (r, n_features)
        Orthonormal rows (right singular vectors), float64, signs per ``svd._signs``.
    total_energy : float
        Squared Frobenius norm of the (centered) data: the denominator of explained energy.
    n_samples : int
        Rows seen.
    mean : ndarray of shape (n_features,) or None
        Column means subtracted before the decomposition, when centering was asked for.
    passes : int
        Passes over the data the solver made.
    note : str
        What the solver did beyond its usual route (a refinement, a fallback), for
        ``solver_reason_``; empty when nothing.
    """

    singular_values: np.ndarray
    components: np.ndarray
    total_energy: float
    n_samples: int
    mean: np.ndarray | None = None
    passes: int = 1
    note: str = ""
