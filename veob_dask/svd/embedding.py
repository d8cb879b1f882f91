"""SVDEmbedding: the VEOB estimator (§3) — an orthonormal basis from the SVD, and projections on it."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._contract import LazyOutputMixin, check_input, finish
from .._validation import (
    as_dask_2d,
    check_fitted_count,
    check_n_features,
    parse_n_components,
    parse_seed,
)
from ..errors import InvalidParameterError, NumericalWarning
from .kernels import choose_k, project_block
from .result import SVDResult
from .solvers import SOLVERS, choose_solver

__all__ = ["SVDEmbedding", "check_svd_params", "project", "total_energy"]


def total_energy(est: Any) -> float | None:
    """The energy ``‖X‖²_F`` (``‖X − mean‖²_F`` when centred) of the data a fitted SVD estimator
    saw, from its ``total_energy_`` attribute or, failing that, from its kept energies and their
    shares (``explained_energy_`` / ``explained_energy_ratio_``); None when neither says it.

    Examples
    --------
    >>> import numpy as np
    >>> emb = SVDEmbedding(n_components=1).fit(np.diag([3.0, 1.0]))
    >>> round(total_energy(emb), 6)  # 3² + 1²
    10.0
    """
    total = getattr(est, "total_energy_", None)
    if total is not None:
        return float(total)
    ratio = np.asarray(getattr(est, "explained_energy_ratio_", []), dtype=np.float64)
    energy = np.asarray(getattr(est, "explained_energy_", []), dtype=np.float64)
    if ratio.size and ratio.sum() > 0:
        return float(energy.sum() / ratio.sum())
    return None


def _check_int(est: Any, name: str, low: int) -> None:
    value = getattr(est, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InvalidParameterError(f"{name} must be an int >= {low}; got {value!r}.")


def check_svd_params(est: Any) -> None:
    """Range-check the parameters of an :class:`SVDEmbedding` (one-line errors), whatever the
    solver: a value a solver ignores today is still refused if it is out of range."""
    if not isinstance(est.solver, str):
        raise InvalidParameterError(f"solver must be a str; got {est.solver!r}.")
    if not isinstance(est.center, bool | np.bool_):
        raise InvalidParameterError(f"center must be True or False; got {est.center!r}.")
    _check_int(est, "max_components", 1)
    _check_int(est, "n_oversamples", 0)
    _check_int(est, "n_iter", 0)
    parse_seed(est.random_state)


def project(x: da.Array, components: np.ndarray, mean: np.ndarray | None = None) -> da.Array:
    """Lazy embedding ``(x - mean) @ components.T`` keeping the row chunks of ``x``.

    float32 input gives float32 output, anything else float64.
    """
    dtype = np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)
    k = components.shape[0]
    out: da.Array = da.map_blocks(
        _project, x, components, mean, dtype, dtype=dtype, chunks=(x.chunks[0], (k,)),
        meta=np.empty((0, k), dtype=dtype),
        name="veob-project-" + da.core.tokenize(x.name, components, mean, str(dtype)),
    )
    return out


def _project(block: Any, components: np.ndarray, mean: np.ndarray | None, dtype: np.dtype,
             block_id: tuple[int, ...] | None = None) -> np.ndarray:
    return project_block(block, components, mean, dtype=dtype, block_id=block_id)


def _reconstruct_block(block: np.ndarray, comps: np.ndarray, mean: np.ndarray | None,
                       dtype: np.dtype) -> np.ndarray:
    out = np.asarray(block, dtype=dtype) @ comps.astype(dtype, copy=False)
    if mean is not None:
        out += mean.astype(dtype)
    return out


def _choose_k(s: np.ndarray, total: float, n_components: float) -> int:
    """:func:`~veob_dask.svd.kernels.choose_k`, warning when the computed spectrum holds less
    energy than the fraction asked for."""
    k = choose_k(s, total, n_components)
    if not isinstance(n_components, int) and n_components < 1.0 and total > 0 and s.size \
            and float(np.sum(s**2)) / total < n_components - 1e-12:
        warnings.warn(
            f"the {s.size} computed components explain {float(np.sum(s**2)) / total:.4f} of the "
            f"energy, less than n_components={n_components}; keeping all {s.size}. Raise "
            "max_components.", NumericalWarning, stacklevel=4)
    return k


class SVDEmbedding(LazyOutputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                   BaseEstimator):
    """Vector embedding on an orthonormal basis: the top right singular vectors of X.

    Rows of X are samples. ``fit`` finds the top-k right singular vectors (``components_``);
    ``transform`` projects on them, ``X @ components_.T`` — the paper's ``P = Uᵀ X`` with
    samples as rows. No centering unless ``center=True``: this is the SVD, not PCA.

    Parameters
    ----------
    n_components : int or float, default=0.9
        Number of components, or a fraction in (0, 1] of the energy (squared singular values)
        to keep, so that ``k`` comes from the spectrum.
    solver : {"auto", "gram", "tsqr", "randomized", ...}, default="auto"
        ``"gram"``: exact, float64 Gram matrix + ``eigh`` in one pass, plus a Rayleigh–Ritz
        pass when a kept singular value with σᵢ/σ₁ >= 1e-6 would otherwise miss 1e-6 relative
        accuracy (``solver_reason_`` then says so; see :mod:`veob_dask.svd.gram`).
        ``"tsqr"``: exact by tree QR. ``"randomized"``: range finder for wide or
        sparse data. ``"auto"`` picks ``"gram"`` for data (dense or sparse) with at most 4096
        features and ``"randomized"`` for wider data; ``solver_`` and ``solver_reason_``
        record the choice.
    center : bool, default=False
        Subtract the column means first (PCA).
    max_components : int, default=256
        Components computed by approximate solvers when ``n_components`` is a fraction.
    n_oversamples : int, default=20
        Extra random directions in the randomized range finder.
    n_iter : int, default=4
        Power (or block Krylov) passes of the randomized solver.
    random_state : int or None, default=0
        Seed of the randomized solver; same seed and chunks give the same result.

    Attributes
    ----------
    components_ : ndarray of shape (n_components_, n_features_in_)
        Orthonormal basis (rows), float64.
    singular_values_ : ndarray of shape (n_components_,)
        Descending singular values.
    spectrum_ : ndarray
        Every singular value the solver computed (at least ``n_components_``), for choosing k.
    explained_energy_ : ndarray of shape (n_components_,)
        Squared singular values.
    explained_energy_ratio_ : ndarray of shape (n_components_,)
        ``explained_energy_`` over the squared Frobenius norm of (centered) X.
    mean_ : ndarray of shape (n_features_in_,) or None
        Column means when ``center=True``.
    n_components_ : int
        Components kept.
    n_samples_seen_ : int
        Rows used in ``fit``.
    n_features_in_ : int
        Features seen in ``fit``.
    solver_ : str
        The solver used; ``solver_reason_`` says why.
    n_passes_ : int
        Passes over the data ``fit`` made (each reads every row chunk once).

    Notes
    -----
    Laziness: ``fit`` computes one pass (exact routes; the Gram route a second one when the
    spectrum needs it; the randomized solver ``n_iter + 1``) and stores only small numpy state;
    ``transform``/``inverse_transform`` of dask input return lazy dask arrays with the same row
    chunks, numpy input gives numpy. Memory: one row chunk plus a d x d matrix per task.
    Determinism: signs follow :mod:`veob_dask.svd._signs`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 10))
    >>> emb = SVDEmbedding(n_components=3).fit(X)
    >>> emb.transform(X).shape
    (200, 3)
    >>> bool(np.allclose(emb.components_ @ emb.components_.T, np.eye(3)))
    True
    """

    def __init__(self, n_components: float = 0.9, *, solver: str = "auto",
                 center: bool = False, max_components: int = 256, n_oversamples: int = 20,
                 n_iter: int = 4, random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.solver = solver
        self.center = center
        self.max_components = max_components
        self.n_oversamples = n_oversamples
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SVDEmbedding:
        """Fit the basis on X (numpy, scipy.sparse or dask). ``y`` is ignored.

        Raises
        ------
        DataError
            For empty, 1-D, non-numeric, or NaN/inf-holding input.
        InvalidParameterError
            For an unknown solver, ``n_components`` beyond ``min(n_samples, n_features)``, or
            any parameter out of range (``n_oversamples < 0``, ``n_iter < 0``...).
        """
        check_svd_params(self)
        x, _ = self._validated(X, reset=True)
        n, d = x.shape
        n_comp = parse_n_components(self.n_components, d)
        if isinstance(n_comp, int) and n_comp > min(n, d):
            raise InvalidParameterError(
                f"n_components={n_comp} exceeds the rank bound min(n_samples={n}, "
                f"n_features={d}) = {min(n, d)}; ask for at most {min(n, d)}."
            )
        solver, reason = choose_solver(x, self.solver)
        if solver not in SOLVERS:
            raise InvalidParameterError(
                f"solver must be 'auto' or one of {sorted(SOLVERS)}; got {self.solver!r}."
            )
        res = self._solve(x, solver, n_comp)
        self._set_state(res, n_comp, d)
        self.n_passes_ = int(res.passes)
        self.solver_ = solver
        self.solver_reason_ = f"{reason}; {res.note}" if res.note else reason
        return self

    def _solve(self, x: da.Array, solver: str, n_comp: float) -> SVDResult:
        """Run ``SOLVERS[solver]`` with the keyword arguments of this estimator it takes."""
        n, d = x.shape
        keywords: dict[str, dict[str, Any]] = {
            "gram": {"n_components": n_comp},
            "tsqr": {},
            # an energy fraction: compute max_components directions, choose k from them
            "randomized": {
                "n_components": n_comp if isinstance(n_comp, int)
                else min(int(self.max_components), n, d),
                "n_oversamples": self.n_oversamples, "n_iter": self.n_iter,
                "random_state": self.random_state},
            "incremental": {"n_components": n_comp, "n_oversamples": self.n_oversamples,
                            "max_components": self.max_components,
                            "random_state": self.random_state},
        }
        return SOLVERS[solver](x, center=bool(self.center), **keywords[solver])

    def _set_state(self, res: SVDResult, n_comp: float, d: int) -> None:
        k = _choose_k(res.singular_values, res.total_energy, n_comp)
        s = res.singular_values[:k]
        tiny = s <= max(res.singular_values[0], 1e-300) * 1e-10 if s.size else s.astype(bool)
        if np.any(tiny):
            warnings.warn(
                f"{int(tiny.sum())} of the {k} kept singular values are numerically zero: the "
                "data has lower rank than n_components; those directions are arbitrary.",
                NumericalWarning, stacklevel=3)
        self.components_ = res.components[:k]
        self.singular_values_ = s
        self.spectrum_ = res.singular_values
        self.explained_energy_ = s**2
        total = res.total_energy if res.total_energy > 0 else 1.0
        self.explained_energy_ratio_ = s**2 / total
        self.mean_ = res.mean
        self.n_components_ = k
        self.n_samples_seen_ = res.n_samples
        self.n_features_in_ = d

    def _validated(self, X: Any, *, reset: bool, what: str = "X") -> tuple[da.Array, bool]:
        """Type in, type out (see :mod:`veob_dask._contract`); returns the input as a dask
        array and whether it came as one."""
        if not reset:  # a damaged fitted count would make every width look wrong
            check_fitted_count(self.n_features_in_, "n_features_in_", type(self).__name__)
            check_fitted_count(self.n_components_, "n_components_", type(self).__name__)
        x, lazy = check_input(self, X, reset=reset, accept_sparse="csr", what=what,
                              check_fitted_width=what == "X")
        x = as_dask_2d(x, what=what)
        if what != "X":
            check_n_features(x.shape[1], self.n_components_, what, owner=type(self).__name__)
        return x, lazy

    def transform(self, X: Any) -> Any:
        """Project X on the basis: ``(X - mean_) @ components_.T``; dask in, lazy dask out."""
        check_is_fitted(self, "components_")
        x, lazy = self._validated(X, reset=False)
        return finish(project(x, self.components_, self.mean_), lazy)

    def inverse_transform(self, X: Any) -> Any:
        """Map embeddings back to feature space: ``Z @ components_ + mean_``."""
        check_is_fitted(self, "components_")
        z, lazy = self._validated(X, reset=False, what="Z")
        dtype = np.dtype(np.float32) if z.dtype == np.float32 else np.dtype(np.float64)
        out = da.map_blocks(_reconstruct_block, z, self.components_, self.mean_, dtype,
                            dtype=dtype, chunks=(z.chunks[0], (self.n_features_in_,)))
        return finish(out, lazy)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self) -> int:
        return int(self.n_components_)

