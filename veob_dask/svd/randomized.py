"""Randomized truncated SVD for wide or sparse row-chunked data (one data pass per iteration).

The range finder works on the right (feature) side. Every pass over the data computes, for a
d x l panel ``Q`` held by the client, the product with the normal matrix

    W = Xᵀ X Q = Σ_b X_bᵀ (X_b Q)

block by block, accumulated in float64 and summed as a tree. Only the d x l panel goes to the
workers and only d x l partial products come back: the tall n x l sample-side panel ``X Q`` is
never formed, so a power step costs one read of the data instead of the two of the textbook
scheme (Halko, Martinsson & Tropp 2011, Alg. 4.4). The panel is re-orthonormalised (QR, with
two rounds of Gram–Schmidt against earlier panels) after every pass.

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

Both make ``n_iter + 1`` passes over the data.
"""

from __future__ import annotations

import numbers
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .._validation import as_dask_2d, check_block_finite, parse_seed
from ..errors import InvalidParameterError
from ._signs import flip_signs
from .embedding import register_solver
from .result import SVDResult

__all__ = ["METHODS", "normal_product", "randomized_svd"]

METHODS = ("krylov", "subspace")

#: Elements of one float64 sub-block a dense kernel converts at a time (bounds task memory).
_SUBBLOCK_ELEMENTS = 1 << 19


def _as_scipy(block: Any) -> Any:
    """Return ``block`` as a float64 ndarray or scipy CSR matrix (pydata ``sparse`` converted)."""
    if sp.issparse(block):
        return sp.csr_matrix(block, dtype=np.float64)
    if type(block).__module__.startswith("sparse"):
        return sp.csr_matrix(block.tocsr(), dtype=np.float64)
    return block


def _normal_block(block: Any, q: np.ndarray, with_stats: bool) -> np.ndarray:
    """Kernel: ``X_bᵀ X_b q`` of one row block, packed with the block statistics.

    Returns an array of shape (1, d + 2, l + 1): ``[:d, :l]`` the product, ``[:d, l]`` the
    column sums, ``[d, 0]`` the sum of squares, ``[d + 1, 0]`` the row count (statistics only
    when ``with_stats``; they cost one extra cheap reduction, no extra read).
    """
    d, l = q.shape
    xb = _as_scipy(block)
    n_rows = xb.shape[0]
    if sp.issparse(xb):
        if with_stats:
            check_block_finite(xb)
        prod = xb.T @ (xb @ q)
        out = np.empty((1, d + 2, l + 1))
        out[0, :d, :l] = prod
        out[0, :, l] = 0.0
        out[0, d:, :] = 0.0
        if with_stats:
            out[0, :d, l] = np.asarray(xb.sum(axis=0)).ravel()
            out[0, d, 0] = float(np.dot(xb.data, xb.data))
    else:
        out = np.zeros((1, d + 2, l + 1))
        acc = out[0, :d, :l]
        xb = np.asarray(xb)
        step = max(1, _SUBBLOCK_ELEMENTS // max(1, d))
        buf = np.empty((min(step, max(1, n_rows)), d))
        ones = np.ones(buf.shape[0])
        for start in range(0, n_rows, step):
            part = xb[start:start + step]
            xs = buf[:part.shape[0]]
            xs[...] = part  # float64 conversion into a cache-sized buffer
            acc += xs.T @ (xs @ q)
            if with_stats:
                out[0, :d, l] += ones[:part.shape[0]] @ xs
                flat = xs.ravel()
                out[0, d, 0] += float(flat @ flat)
        # NaN/inf make the sum of squares or a column sum non-finite: scan only then.
        if with_stats and not (np.isfinite(out[0, d, 0]) and np.all(np.isfinite(out[0, :d, l]))):
            check_block_finite(block)
    out[0, d + 1, 0] = n_rows
    return out


def _fingerprint(q: np.ndarray) -> str:
    """Deterministic name token of a panel without hashing all of it (hashing a 90 MB panel
    cost more than a second per fit): shape, a strided sample and the column sums."""
    sample = q.ravel()[:: max(1, q.size // 4096)]
    return str(da.core.tokenize(q.shape, str(q.dtype), sample, q.sum(axis=0)))


def normal_product(x: da.Array, q: np.ndarray, *, with_stats: bool = False,
                   split_every: int | None = None) -> da.Array:
    """Lazy ``Xᵀ X q`` (and block statistics) as one (d + 2, l + 1) float64 array.

    Parameters
    ----------
    x : dask.array.Array of shape (n, d)
        One column chunk; dense, scipy.sparse or pydata ``sparse`` blocks.
    q : ndarray of shape (d, l)
        The panel; it is an argument of every task (fused with the chunk read).
    with_stats : bool
        Also check blocks for NaN/inf and collect column sums and the sum of squares.
    split_every : int, optional
        Fan-in of the tree reduction.

    Notes
    -----
    Laziness: builds a graph only. Memory: one row sub-block in float64 plus a d x l partial
    product per task; partial products are summed ``split_every`` at a time.
    """
    d, l = q.shape
    # The panel goes in as a plain argument: with a single array input, dask fuses the read of
    # each chunk with this kernel into one task, so no chunk ever travels between workers.
    parts = da.blockwise(
        _normal_block, "iab", x, "ij", q, None, with_stats, None,
        new_axes={"a": d + 2, "b": l + 1}, adjust_chunks={"i": 1}, concatenate=True,
        dtype=np.float64, meta=np.empty((0, 0, 0)),
        name="veob-normal-" + da.core.tokenize(x.name, _fingerprint(q), with_stats),
    )
    # A tree of in-place additions: no concatenation of the d x l partial products.
    total: da.Array = da.reduction(
        parts, _identity, _sum_aggregate, combine=_sum_combine, axis=0, keepdims=False,
        dtype=np.float64, split_every=split_every, concatenate=False,
        meta=np.empty((0, 0)), name="veob-normal-sum")
    return total


def _identity(x: np.ndarray, axis: Any = None, keepdims: Any = None) -> np.ndarray:
    return x


def _flatten(parts: Any) -> list[np.ndarray]:
    if isinstance(parts, (list, tuple)):
        return [a for p in parts for a in _flatten(p)]
    return [parts]


def _sum_combine(parts: Any, axis: Any = None, keepdims: Any = None) -> np.ndarray:
    """Sum partial products (each of shape (1, a, b)) into a fresh array, in place."""
    flat = _flatten(parts)
    acc = np.array(flat[0], dtype=np.float64, copy=True)
    for p in flat[1:]:
        acc += p
    return acc


def _sum_aggregate(parts: Any, axis: Any = None, keepdims: Any = None) -> np.ndarray:
    return _sum_combine(parts)[0]


def _project_out(w: np.ndarray, basis: list[np.ndarray],
                 coeffs: list[np.ndarray] | None = None) -> None:
    """One round of block classical Gram–Schmidt of ``w`` against ``basis`` (in place)."""
    for i, b in enumerate(basis):
        c = b.T @ w
        w -= b @ c
        if coeffs is not None:
            coeffs[i] += c


def _gram_orth(w: np.ndarray, rel_tol: float) -> np.ndarray:
    """Orthonormal basis of the well-resolved part of ``span(w)`` via ``eigh(wᵀw)``.

    Like Cholesky QR (all BLAS-3, much faster than Householder QR on a tall panel), but
    directions with ``σ ≤ rel_tol · σ_max`` are dropped instead of breaking the factorisation.
    """
    g = w.T @ w
    lam, u = scipy.linalg.eigh((g + g.T) / 2)
    keep = lam > max(float(lam[-1]) if lam.size else 0.0, 0.0) * rel_tol**2
    keep &= lam > 0
    return w @ (u[:, keep] / np.sqrt(lam[keep]))


def _orthonormalize(w: np.ndarray, basis: list[np.ndarray], tol: float
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Project ``w`` off ``basis`` and orthonormalise what is left (block CGS2).

    Returns (Q, coefficients of ``w`` on each basis panel and, last, on Q). Residual directions
    of norm at most ``tol`` (the Krylov space is exhausted there) are dropped, so Q may be
    narrower than ``w`` or empty.
    """
    coeffs = [np.zeros((b.shape[1], w.shape[1])) for b in basis]
    w = np.array(w, order="C")  # a private contiguous copy (w may view the pass output)
    _project_out(w, basis, coeffs)
    norm = float(np.linalg.norm(w)) if w.size else 0.0
    if norm <= tol:
        return np.zeros((w.shape[0], 0)), [*coeffs, np.zeros((0, w.shape[1]))]
    q = _gram_orth(w, max(1e-7, tol / norm))
    # Second projection and orthonormalisation ("twice is enough"): restores orthogonality to
    # working precision; the coefficients it would add are at rounding level.
    _project_out(q, basis)
    q = _gram_orth(q, 1e-7)
    return q, [*coeffs, q.T @ w]


def _pass(x: da.Array, q: np.ndarray, *, with_stats: bool,
          split_every: int | None) -> np.ndarray:
    (out,) = dask.compute(normal_product(x, q, with_stats=with_stats, split_every=split_every))
    return np.asarray(out)


def randomized_svd(
    x: Any,
    n_components: int,
    *,
    n_oversamples: int = 20,
    n_iter: int = 4,
    center: bool = False,
    random_state: Any = 0,
    method: str = "krylov",
    split_every: int | None = None,
) -> SVDResult:
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
        Power or Krylov steps ``q``; the data is read ``q + 1`` times.
    center : bool, default=False
        Decompose ``X - mean`` (PCA) implicitly: the mean is folded into each product as a
        rank-one correction, so sparse data is never densified and no extra pass is made.
    random_state : int, Generator, RandomState or None, default=0
        Seed of the starting panel.
    method : {"krylov", "subspace"}, default="krylov"
        Block Krylov (all panels kept, Rayleigh–Ritz on their span) or subspace iteration.
    split_every : int, optional
        Fan-in of the tree reductions.

    Returns
    -------
    SVDResult
        ``n_components`` singular values (descending) and right singular vectors; the exact
        total energy ``‖X‖²_F`` (centered if asked) from the first pass.

    Raises
    ------
    InvalidParameterError
        For ``n_components`` outside ``[1, min(n_samples, n_features)]``, a negative
        ``n_oversamples`` or ``n_iter``, or an unknown ``method``.
    DataError
        For NaN/inf in the data (found inside the first pass).

    Notes
    -----
    Laziness: computes ``n_iter + 1`` passes, each one ``dask.compute`` of a tree reduction;
    the data is re-read from its source every pass, never persisted.
    Memory: workers hold one row sub-block (about 4 MiB in float64) and one d x l partial
    product per task; the client holds the panels (``(n_iter + 1) · d · l`` float64 for
    ``"krylov"``, ``2 · d · l`` for ``"subspace"``) and an l(q+1)-square core.
    Accuracy: products are accumulated in float64 whatever the input dtype; working on
    ``XᵀX`` squares the condition number, so directions with singular values below about
    ``1e-7 · σ₁`` are not resolved (they never are by a top-k solver in practice).
    Threads: BLAS is held at one thread for the whole call (tasks already use every core).
    Determinism: the starting panel depends only on the seed and ``n_features``, and the tree
    reductions have a fixed order, so the same seed and chunking give the same result on any
    scheduler. Signs follow :mod:`veob_dask.svd._signs`.
    """
    # Dask runs one task per core, so BLAS threads on top only oversubscribe the cores; on a
    # shared 2-core machine, spinning OpenBLAS threads made this solver 3x slower (measured).
    with threadpool_limits(1, user_api="blas"):
        return _randomized_svd(x, n_components, n_oversamples=n_oversamples, n_iter=n_iter,
                               center=center, random_state=random_state, method=method,
                               split_every=split_every)


def _randomized_svd(x: Any, n_components: int, *, n_oversamples: int, n_iter: int,
                    center: bool, random_state: Any, method: str,
                    split_every: int | None) -> SVDResult:
    xd = as_dask_2d(x)
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
    rng = np.random.default_rng(parse_seed(random_state))
    l = min(k + int(n_oversamples), d)
    q = _gram_orth(rng.standard_normal((d, l)), 1e-7)
    if 2 * l > d:  # a nearly square Gaussian panel is ill-conditioned: a second round
        q = _gram_orth(q, 1e-7)
    panels: list[np.ndarray] = [q]
    coef_cols: list[list[np.ndarray]] = []
    mean: np.ndarray | None = None
    total = 0.0
    scale = 0.0
    for step in range(int(n_iter) + 1):
        out = _pass(xd, q, with_stats=step == 0, split_every=split_every)
        lq = q.shape[1]
        w = out[:d, :lq]
        if step == 0:
            n_seen = int(out[d + 1, 0] + 0.5)
            sums, sumsq = out[:d, lq], float(out[d, 0])
            if center:
                mean = sums / n_seen
                total = sumsq - n_seen * float(mean @ mean)
            else:
                total = sumsq
            scale = max(total, np.finfo(float).tiny)
        if mean is not None:
            w = w - n_seen * np.outer(mean, mean @ q)
        last = step == int(n_iter)
        if method == "subspace":
            if last:
                core = q.T @ w
                basis = q
                break
            q = _gram_orth(_gram_orth(w, 1e-7), 1e-7)
            if q.shape[1] < lq:  # rank(X) < l: refill with random directions orthogonal to q
                extra = rng.standard_normal((d, lq - q.shape[1]))
                extra -= q @ (q.T @ extra)
                q = np.hstack([q, _gram_orth(_gram_orth(extra, 1e-7), 1e-7)])
            continue
        # Block Krylov: column `step` of the projected matrix comes from orthogonalising w.
        width = sum(p.shape[1] for p in panels)
        room = d - width
        if last or room <= 0:
            col = [p.T @ w for p in panels]
            coef_cols.append(col)
            break
        q_new, coeffs = _orthonormalize(w, panels, tol=1e-12 * scale)
        if q_new.shape[1] > room:
            q_new, coeffs[-1] = q_new[:, :room], coeffs[-1][:room]
        coef_cols.append(coeffs)
        if q_new.shape[1] == 0:
            break  # invariant subspace found: the Krylov space holds it exactly
        panels.append(q_new)
        q = q_new
    if method == "krylov":
        kept = panels[:len(coef_cols)]
        core = _assemble_core(coef_cols, [p.shape[1] for p in kept])
    else:
        kept = [basis]
    evals, evecs = scipy.linalg.eigh((core + core.T) / 2)
    order = np.argsort(evals)[::-1][:k]
    s = np.sqrt(np.clip(evals[order], 0.0, None))
    vecs = np.zeros((d, order.size))
    offset = 0
    for p in kept:  # basis @ evecs without stacking the panels
        vecs += p @ evecs[offset:offset + p.shape[1], order]
        offset += p.shape[1]
    comps = flip_signs(vecs.T)
    return SVDResult(s, comps, float(total), n_seen, mean)


def _assemble_core(cols: list[list[np.ndarray]], widths: list[int]) -> np.ndarray:
    """Stack the per-pass coefficient blocks into the projected matrix ``Qᵀ A Q``."""
    offsets = np.concatenate([[0], np.cumsum(widths)])
    m = int(offsets[-1])
    core = np.zeros((m, m))
    for j, col in enumerate(cols):
        for i, block in enumerate(col):
            if i >= len(widths):
                break  # the residual panel beyond the kept basis
            core[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]] = block
    return core


def _solver(x: da.Array, *, n_components: float, center: bool, estimator: Any) -> SVDResult:
    """Registry adapter: reads ``n_oversamples``, ``n_iter``, ``random_state`` and, when
    ``n_components`` is an energy fraction, computes ``max_components`` directions."""
    n, d = x.shape
    if isinstance(n_components, numbers.Integral):
        k = int(n_components)
    else:
        k = min(int(getattr(estimator, "max_components", 256)), n, d)
    return randomized_svd(
        x, k, n_oversamples=getattr(estimator, "n_oversamples", 20),
        n_iter=getattr(estimator, "n_iter", 4), center=center,
        random_state=getattr(estimator, "random_state", 0),
        method=getattr(estimator, "randomized_method", "krylov"),
    )


register_solver("randomized", _solver)
