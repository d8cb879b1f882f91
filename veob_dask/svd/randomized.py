"""Randomized truncated SVD for wide or sparse row-chunked data (one data pass per iteration).

The range finder works on the right (feature) side. Every pass over the data computes, for a
d x l panel ``Q`` held by the client, the product with the normal matrix

    W = Xᵀ X Q = Σ_b X_bᵀ (X_b Q)

block by block and summed as a tree (:mod:`veob_dask.svd._passes`). Only the d x l panel goes
to the workers and only d x l partial products come back: the tall n x l sample-side panel
``X Q`` is never formed, so a power step costs one read of the data instead of the two of the
textbook scheme (Halko, Martinsson & Tropp 2011, Alg. 4.4). The panel is re-orthonormalised
(two rounds of Gram–Schmidt against earlier panels) after every pass.

Start. ``"gaussian"``: a Gaussian d x l panel. ``"sketch"``: ``Q₀ = orth(Xᵀ Ω)`` for an n x l
random sign matrix Ω drawn inside the tasks, which costs one extra read but only one product
per block (and no panel to send) and starts half a power step ahead: on the 80,000 x 160,000
benchmark matrix it cut the k = 50 singular value error at ``n_iter=2`` from 4e-3–1.2e-2 to
3e-4–9e-4 (five seeds). ``"auto"`` takes the sketch for sparse blocks (where that extra read
is cheap) and the Gaussian panel for dense ones (where a read is the cost).

Two iterations are offered:

``"krylov"`` (default)
    Block Krylov (block Lanczos with full re-orthogonalisation; Musco & Musco 2015): the panels
    of all passes are kept and the Rayleigh–Ritz step uses the whole Krylov space
    ``[Q, AQ, …, A^q Q]``. The projected matrix ``Qᵀ A Q`` comes for free from the
    orthogonalisation coefficients, so no extra pass is needed. More accurate per pass than
    subspace iteration on flat spectra, at the cost of keeping ``q + 1`` panels.
``"subspace"``
    Subspace (power) iteration with a QR after every pass; the Rayleigh–Ritz step uses the last
    panel only (``Qᵀ A Q`` comes from the last pass). Keeps two panels.

Both make ``n_iter + 1`` power passes over the data, plus the start pass of a sketch.

Precision. The products run in the data's precision (float32 data: float32 products and
panels, as scikit-learn's ``randomized_svd`` and ARPACK do; ``compute_dtype`` overrides it);
statistics, the projected core and its eigendecomposition are float64.
"""

from __future__ import annotations

import numbers
from typing import Any

import dask.array as da
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from .._validation import as_dask_2d, parse_seed
from ..errors import InvalidParameterError
from . import _rowpar as rowpar
from ._passes import (
    compute_all,
    gram_product,
    has_sparse_blocks,
    normal_product,
    resolve_compute_dtype,
    sketch_product,
)
from ._signs import flip_signs
from .result import SVDResult

__all__ = ["METHODS", "STARTS", "randomized_svd"]

METHODS = ("krylov", "subspace")
STARTS = ("auto", "sketch", "gaussian")

def _project_out(w: np.ndarray, basis: list[np.ndarray],
                 coeffs: list[np.ndarray] | None = None) -> None:
    """One round of block classical Gram–Schmidt of ``w`` against ``basis`` (in place)."""
    for i, b in enumerate(basis):
        c = rowpar.tmatmul(b, w)
        rowpar.sub_matmul(w, b, c)
        if coeffs is not None:
            coeffs[i] += c


def _gram_orth(w: np.ndarray, rel_tol: float, *, refine: bool = False) -> np.ndarray:
    """Orthonormal basis of the well-resolved part of ``span(w)`` via ``eigh(wᵀw)``.

    Like Cholesky QR (all BLAS-3, much faster than Householder QR on a tall panel), but
    directions with ``σ ≤ rel_tol · σ_max`` are dropped instead of breaking the factorisation.
    The Gram matrix is formed in float64 even for a float32 panel (its small eigenvalues are
    the point), except with ``refine=True``: the second round on an already nearly
    orthonormal panel, where the panel's own dtype is accurate enough.
    """
    g = rowpar.gram(w, None if refine else np.float64)
    lam, u = scipy.linalg.eigh((g + g.T) / 2)
    keep = lam > max(float(lam[-1]) if lam.size else 0.0, 0.0) * rel_tol**2
    keep &= lam > 0
    return rowpar.matmul(w, (u[:, keep] / np.sqrt(lam[keep])).astype(w.dtype))


def _orthonormalize(w: np.ndarray, basis: list[np.ndarray], tol: float, rel_tol: float = 1e-7
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Project ``w`` off ``basis`` and orthonormalise what is left (block CGS2).

    Returns (Q, coefficients of ``w`` on each basis panel and, last, on Q). Residual directions
    of norm at most ``tol`` (the Krylov space is exhausted there) are dropped, so Q may be
    narrower than ``w`` or empty.
    """
    coeffs = [np.zeros((b.shape[1], w.shape[1])) for b in basis]
    _project_out(w, basis, coeffs)
    norm = float(np.linalg.norm(w)) if w.size else 0.0
    if norm <= tol:
        return np.zeros((w.shape[0], 0)), [*coeffs, np.zeros((0, w.shape[1]))]
    q = _gram_orth(w, max(rel_tol, tol / norm))
    # Second projection and orthonormalisation ("twice is enough"): restores orthogonality to
    # working precision; the coefficients it would add are at rounding level.
    _project_out(q, basis)
    q = _gram_orth(q, rel_tol, refine=True)
    return q, [*coeffs, rowpar.tmatmul(q, w)]


#: Per compute dtype: the relative singular value below which ``_gram_orth`` drops a direction
#: (about the square root of the Gram matrix's rounding level), and the residual norm,
#: relative to ``‖X‖²_F``, at which the Krylov space counts as exhausted.
_TOLERANCES = {"d": (1e-7, 1e-12), "f": (1e-7, 1e-6)}


def randomized_svd(x: Any, n_components: int, *, n_oversamples: int = 20, n_iter: int = 4,
                   center: bool = False, random_state: Any = 0, method: str = "krylov",
                   split_every: int | None = None, compute_dtype: Any = None,
                   start: str = "auto") -> SVDResult:
    """Top right singular vectors of ``x`` by a randomized range finder over row chunks.

    Parameters
    ----------
    x : dask.array.Array, ndarray or scipy.sparse matrix of shape (n_samples, n_features)
        Row-chunked data; blocks may be dense NumPy, scipy.sparse or pydata ``sparse``.
    n_components : int
        Number of singular triplets to return, ``1 <= n_components <= min(n_samples,
        n_features)``.
    n_oversamples : int, default=20
        Extra random directions: the panel width is ``l = n_components + n_oversamples``
        (at most ``n_features``).
    n_iter : int, default=4
        Power or Krylov steps ``q``; the data is read ``q + 1`` times (``q + 2`` with a
        sketch start).
    center : bool, default=False
        Decompose ``X - mean`` (PCA) implicitly: the mean is folded into each product as a
        rank-one correction, so sparse data is never densified and no extra pass is made.
    random_state : int, Generator, RandomState or None, default=0
        Seed of the starting panel.
    method : {"krylov", "subspace"}, default="krylov"
        Block Krylov (all panels kept, Rayleigh–Ritz on their span) or subspace iteration.
    split_every : int, optional
        Fan-in of the tree reductions.
    compute_dtype : {None, "float32", "float64"}, default=None
        Precision of the data products and panels. None: float32 for float32 (or float16)
        data, float64 otherwise. float32 halves the time of the products and of the
        client-side orthogonalisation; singular values are then accurate to about 1e-6
        relative instead of 1e-12.
    start : {"auto", "sketch", "gaussian"}, default="auto"
        Starting panel: ``orth(Xᵀ Ω)`` from a start pass (``"sketch"``), or a Gaussian
        panel (``"gaussian"``). ``"auto"``: the sketch for sparse blocks, Gaussian for dense.

    Returns
    -------
    SVDResult
        ``n_components`` singular values (descending) and right singular vectors; the exact
        total energy ``‖X‖²_F`` (centered if asked) from the first pass.

    Raises
    ------
    InvalidParameterError
        For ``n_components`` outside ``[1, min(n_samples, n_features)]``, a negative
        ``n_oversamples`` or ``n_iter``, or an unknown ``method``, ``start`` or
        ``compute_dtype``.
    DataError
        For NaN/inf in the data (found inside the first pass).

    Notes
    -----
    Laziness: computes ``n_iter + 1`` passes (one more for a sketch start), each one
    ``dask.compute`` of a tree reduction; the data is re-read from its source every pass,
    never persisted.
    Memory: workers hold one row sub-block (about 4 MiB in float64, or the sparse block) and
    one d x l partial product per task; the client holds the panels (``(n_iter + 1) · d · l``
    for ``"krylov"``, ``2 · d · l`` for ``"subspace"``, in the compute dtype) and an
    l(q+1)-square core.
    Accuracy: working on ``XᵀX`` squares the condition number, so directions with singular
    values below about ``1e-7 · σ₁`` (float64) are not resolved (they never are by a top-k
    solver in practice).
    Threads: BLAS is held at one thread (dask already runs one task per core; OpenBLAS
    threads on top oversubscribe them: benchmarks/README.md, "Measurements behind choices in
    the code"); between passes the client splits its panel products by rows over the cores.
    Determinism: the starting panel depends only on the seed and the shape (a sketch's Ω is
    drawn by global row, whatever the chunking), and the tree reductions have a fixed order,
    so the same seed and chunking give the same result on any scheduler. Signs follow
    :mod:`veob_dask.svd._signs`.
    """
    with threadpool_limits(1, user_api="blas"):
        return _randomized_svd(x, n_components, n_oversamples=n_oversamples, n_iter=n_iter,
                               center=center, random_state=random_state, method=method,
                               split_every=split_every, compute_dtype=compute_dtype,
                               start=start)


def _randomized_svd(x: Any, n_components: int, *, n_oversamples: int, n_iter: int,
                    center: bool, random_state: Any, method: str,
                    split_every: int | None, compute_dtype: Any, start: str) -> SVDResult:
    xd = as_dask_2d(x)
    k = _check_args(xd, n_components, n_oversamples, n_iter, method, start)
    finder = _RangeFinder(xd, width=min(k + int(n_oversamples), xd.shape[1]), center=center,
                          method=method, seed=parse_seed(random_state),
                          dtype=resolve_compute_dtype(compute_dtype, xd.dtype),
                          split_every=split_every)
    if start == "auto":
        start = "sketch" if has_sparse_blocks(xd) else "gaussian"
    finder.iterate(finder.start_panel(start), int(n_iter), with_stats=start == "gaussian")
    return finder.result(k)


def _check_args(xd: da.Array, n_components: Any, n_oversamples: Any, n_iter: Any, method: str,
                start: str) -> int:
    """The number of components, once every argument is checked (one-line errors)."""
    n, d = xd.shape
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise InvalidParameterError(
            f"n_components must be an int for the randomized solver; got {n_components!r}.")
    k = int(n_components)
    if not 1 <= k <= min(n, d):
        raise InvalidParameterError(
            f"n_components must be in [1, min(n_samples, n_features) = {min(n, d)}]; got {k}.")
    for name, value in (("n_oversamples", n_oversamples), ("n_iter", n_iter)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise InvalidParameterError(f"{name} must be an int >= 0; got {value!r}.")
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {METHODS}; got {method!r}.")
    if start not in STARTS:
        raise InvalidParameterError(f"start must be one of {STARTS}; got {start!r}.")
    return k


class _RangeFinder:
    """One randomized solve: the data, its statistics (row count, mean, energy) and the panels.

    Panels live in the compute dtype: in float32, the client-side orthogonalisation costs half
    as much; the projected core and its eigendecomposition are always float64.
    """

    def __init__(self, x: da.Array, *, width: int, center: bool, method: str, seed: int,
                 dtype: np.dtype, split_every: int | None) -> None:
        self.x, self.d, self.width = x, int(x.shape[1]), width
        self.center, self.method, self.seed = center, method, seed
        self.rng = np.random.default_rng(seed)
        self.dtype, self.split_every = dtype, split_every
        self.rel_tol, self.exhausted = _TOLERANCES[dtype.char]
        self.mean: np.ndarray | None = None
        self.n_seen, self.total = 0, 0.0
        self.panels: list[np.ndarray] = []
        self.coef_cols: list[list[np.ndarray]] = []
        self.diag: np.ndarray | None = None  # qᵀ A q of the last panel, from the last pass
        self.passes = 0  # products over the data computed so far

    def take_stats(self, stats: np.ndarray, l_omega: int) -> None:
        """Row count, mean and total energy from a :class:`WithStats` statistics vector."""
        d = self.d
        self.n_seen = int(stats[d + l_omega + 1] + 0.5)
        self.total = float(stats[d + l_omega])
        if self.center:
            self.mean = stats[:d] / self.n_seen
            self.total -= self.n_seen * float(self.mean @ self.mean)

    def _orth(self, w: np.ndarray, width: int) -> np.ndarray:
        """Two rounds of :func:`_gram_orth`, widened to ``width`` columns."""
        q = _gram_orth(_gram_orth(w, self.rel_tol), self.rel_tol, refine=True)
        return _fill_panel(q, width, self.rng, self.rel_tol)

    def start_panel(self, start: str) -> np.ndarray:
        """``orth(Xᵀ Ω)`` from a start pass (``"sketch"``) or a Gaussian panel."""
        d, l = self.d, self.width
        if start == "sketch":
            l_omega = l if self.center else 0
            self.passes += 1
            (first,) = compute_all(sketch_product(self.x, self.seed, l, dtype=self.dtype,
                                                  l_omega=l_omega,
                                                  split_every=self.split_every))
            self.take_stats(first.stats, l_omega)
            z = first.product.astype(self.dtype)
            if self.mean is not None:  # (X - 1 meanᵀ)ᵀ Ω = Xᵀ Ω - mean (1ᵀ Ω)
                z -= np.outer(self.mean, first.stats[d:d + l_omega]).astype(self.dtype)
            return self._orth(z, l)
        q = _gram_orth(self.rng.standard_normal((d, l), dtype=self.dtype), self.rel_tol)
        if 2 * l > d:  # a nearly square Gaussian panel is ill-conditioned: a second round
            q = _gram_orth(q, self.rel_tol, refine=True)
        return q

    def _pass(self, product: Any, q: np.ndarray, with_stats: bool) -> np.ndarray:
        self.passes += 1
        (out,) = compute_all(product(self.x, q.astype(self.dtype, copy=False),
                                     with_stats=with_stats, split_every=self.split_every))
        if with_stats:
            self.take_stats(out.stats, 0)
            out = out.product
        return np.asarray(out)

    def iterate(self, q: np.ndarray, n_iter: int, *, with_stats: bool) -> None:
        """``n_iter + 1`` passes from the panel ``q`` (statistics from the first if asked)."""
        self.panels = [q]
        for step in range(n_iter + 1):
            first = with_stats and step == 0
            if step == n_iter or (self.method == "krylov" and
                                  sum(p.shape[1] for p in self.panels) >= self.d):
                self._last_pass(q, first)
                return
            w = self._pass(normal_product, q, first).astype(self.dtype, copy=False)
            if self.mean is not None:
                w = w - (self.n_seen * np.outer(self.mean, self.mean @ q)).astype(self.dtype)
            if self.method == "subspace":
                q = self.panels[0] = self._orth(w, q.shape[1])
                continue
            q_new = self._krylov_step(w)
            if q_new is None:
                return  # invariant subspace found: the Krylov space holds it exactly
            q = q_new

    def _last_pass(self, q: np.ndarray, with_stats: bool) -> None:
        """Of A q only qᵀ A q is new (the Krylov blocks above it are the coefficients of the
        previous orthogonalisation, by symmetry), and qᵀ A q is the Gram matrix of X q: one
        product per block, an l x l result."""
        g = self._pass(gram_product, q, with_stats)
        if self.mean is not None:  # (Xq - 1 mᵀ)ᵀ(Xq - 1 mᵀ) = (Xq)ᵀXq - n m mᵀ, m = qᵀ mean
            m = q.T.astype(np.float64) @ self.mean
            g = g - self.n_seen * np.outer(m, m)
        self.diag = g

    def _krylov_step(self, w: np.ndarray) -> np.ndarray | None:
        """Orthogonalise ``w`` against the panels (a column of the projected matrix); the new
        panel, or None when the Krylov space is exhausted."""
        width = sum(p.shape[1] for p in self.panels)
        scale = max(self.total, np.finfo(float).tiny)
        q_new, coeffs = _orthonormalize(w, self.panels, tol=self.exhausted * scale,
                                        rel_tol=self.rel_tol)
        room = self.d - width
        if q_new.shape[1] > room:
            q_new, coeffs[-1] = q_new[:, :room], coeffs[-1][:room]
        self.coef_cols.append(coeffs)
        if q_new.shape[1] == 0:
            return None
        self.panels.append(q_new)
        return q_new

    def result(self, k: int) -> SVDResult:
        """Rayleigh–Ritz on the span of the kept panels: the top ``k`` triplets."""
        if self.method == "krylov":
            core = _assemble_core(self.coef_cols, [p.shape[1] for p in self.panels], self.diag)
        else:
            core = self.diag
        core = np.asarray(core, dtype=np.float64)
        evals, evecs = scipy.linalg.eigh((core + core.T) / 2)
        order = np.argsort(evals)[::-1][:k]
        s = np.sqrt(np.clip(evals[order], 0.0, None))
        # components = (basis @ evecs)ᵀ: a tall d x k product without stacking the panels,
        # split by rows over the cores (acc -= p (-c) adds p c exactly)
        acc: np.ndarray | None = None
        offset = 0
        for p in self.panels:
            c = evecs[offset:offset + p.shape[1], order].astype(self.dtype)
            if acc is None:
                acc = rowpar.matmul(p, c)
            else:
                rowpar.sub_matmul(acc, p, -c)
            offset += p.shape[1]
        if acc is None:
            acc = np.zeros((self.d, order.size), dtype=self.dtype)
        comps = np.ascontiguousarray(flip_signs(acc.T), dtype=np.float64)
        return SVDResult(s, comps, float(self.total), self.n_seen, self.mean,
                         passes=self.passes)


def _fill_panel(q: np.ndarray, width: int, rng: np.random.Generator,
                rel_tol: float) -> np.ndarray:
    """Widen an orthonormal panel to ``width`` columns with random directions orthogonal to
    it (when rank(X) < l the range finder returns fewer directions than asked)."""
    d, have = q.shape
    if have >= width:
        return q
    extra = rng.standard_normal((d, width - have), dtype=q.dtype)
    extra -= q @ (q.T @ extra)
    extra = _gram_orth(_gram_orth(extra, rel_tol), rel_tol, refine=True)
    extra -= q @ (q.T @ extra)
    return np.hstack([q, _gram_orth(extra, rel_tol)])


def _assemble_core(cols: list[list[np.ndarray]], widths: list[int],
                   diag: np.ndarray | None) -> np.ndarray:
    """The projected matrix ``Qᵀ A Q`` from the orthogonalisation coefficients.

    Column block ``j`` holds the coefficients of ``A Q_j`` on panels ``0..j+1``. The last
    panel's column, when it was not orthogonalised (``diag`` given, from the Gram pass), is
    filled by symmetry: ``Q_{q-1}ᵀ A Q_q`` is the transpose of the block below the diagonal
    (the other blocks vanish in a Krylov basis) and ``Q_qᵀ A Q_q = diag``.
    """
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    m = int(offsets[-1])
    core = np.zeros((m, m))
    for j, col in enumerate(cols):
        for i, block in enumerate(col):
            if i >= len(widths):
                break  # the empty residual panel of an exhausted Krylov space
            core[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]] = block
    if diag is not None:
        q = len(widths) - 1
        last = slice(offsets[q], offsets[q + 1])
        core[last, last] = diag
        if q > 0:
            prev = slice(offsets[q - 1], offsets[q])
            core[prev, last] = core[last, prev].T
    return core
