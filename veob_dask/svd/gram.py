"""Exact SVD of tall-and-skinny data through the float64 Gram matrix, refined where needed.

Pass 1: each row chunk contributes ``[X_b, 1]ᵀ [X_b, 1]`` (the Gram matrix, the column sums and
the row count in one (d+1)x(d+1) float64 product); the contributions are summed as a tree
reduction and ``eigh`` of the d x d result gives the right singular vectors and ``σ²`` as
eigenvalues.

Accuracy (ALGORITHMS.md §1.6). The Gram matrix squares the condition number: an eigenvalue
``λᵢ = σᵢ²`` comes out with an absolute error ``εᵢ`` set by the rounding of the accumulation and
of ``eigh``, all at the scale of the whole matrix, so ``σᵢ`` has the relative error
``≈ εᵢ / (2 λᵢ)``, large when ``σᵢ/σ₁`` is small. :func:`gram_error` estimates ``εᵢ`` for every
eigenvalue (the model is in its docstring). Every kept ``σᵢ`` with ``σᵢ/σ₁ >= ACCURACY_FLOOR``
is delivered to ``SV_RTOL`` relative: when the estimate says the first pass did not, the
leading directions that are accurate are kept and one more pass computes the Gram matrix of the
data in the basis of all the other eigenvectors, shifted by the column means
(:func:`projected_gram`; a Rayleigh–Ritz step on the complement of the accurate directions).
The largest eigenvalue of that matrix is the first unresolved ``λᵢ``, not ``λ₁``, so its
eigenvalues are accurate relative to themselves. The check repeats after each pass (at most
``MAX_REFINEMENTS`` extra passes; a :class:`~veob_dask.errors.NumericalWarning` names what is
still unresolved after that). Well-conditioned data keeps the one-pass route.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ..errors import NumericalWarning
from ._passes import has_sparse_blocks, resolve_compute_dtype
from ._signs import flip_signs
from .kernels import augmented_gram, choose_k, subblock_rows
from .result import SVDResult

__all__ = ["ACCURACY_FLOOR", "MAX_REFINEMENTS", "SV_RTOL", "first_unresolved", "graded_eigh",
           "gram_error", "gram_matrix", "gram_svd", "projected_gram", "spectrum_from_gram",
           "value_groups"]

#: Relative accuracy promised for every kept singular value with σᵢ/σ₁ >= ACCURACY_FLOOR.
SV_RTOL = 1e-6
#: Singular values below this fraction of σ₁ carry no accuracy promise (float64 cannot give it).
ACCURACY_FLOOR = 1e-6
#: Extra passes the Gram route may make before it warns.
MAX_REFINEMENTS = 3
#: Safety factors of the error model: on random rounding errors, and on errors that repeat from
#: one sub-block product to the next (a common offset makes them do so).
_SAFETY = 32.0
_SAFETY_SYSTEMATIC = 4.0
#: Unit roundoff of float64.
_U64 = float(np.finfo(np.float64).eps) / 2


def _gram_step(width: int) -> int:
    """Rows per dense sub-block for a buffer ``width`` columns wide: the sub-blocking of
    :func:`~veob_dask.svd.kernels.augmented_gram` (the error model counts its products)."""
    return subblock_rows(width + 1)


def _gram_block(block: Any, dtype: Any = np.float64,
                block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Kernel: :func:`~veob_dask.svd.kernels.augmented_gram` of one row block, (1, d+1, d+1)."""
    return augmented_gram(block, dtype=dtype, block_id=block_id)[None]


def gram_matrix(x: da.Array, *, split_every: int | None = None,
                compute_dtype: Any = np.float64) -> da.Array:
    """Lazy augmented Gram matrix ``[X, 1]ᵀ[X, 1]`` of shape (d+1, d+1), float64.

    ``compute_dtype`` is the dtype of the products of dense sub-blocks (their sum is always
    float64); sparse blocks are multiplied in float64.

    Notes
    -----
    Laziness: builds a graph only. Chunks: ``x`` must have one column chunk.
    Memory: one row chunk plus a (d+1)² float64 matrix per task; the tree reduction combines
    ``split_every`` partial matrices at a time, never all blocks in one task.
    """
    d = x.shape[1]
    dt = np.dtype(compute_dtype)
    parts = da.map_blocks(_gram_block, x, dt, dtype=np.float64, new_axis=2,
                          chunks=((1,) * x.numblocks[0], (d + 1,), (d + 1,)),
                          name="veob-gram-" + da.core.tokenize(x.name, str(dt)))
    total: da.Array = parts.sum(axis=0, split_every=split_every)
    return total


def spectrum_from_gram(g_aug: np.ndarray, *, center: bool) -> SVDResult:
    """Eigendecompose an augmented Gram matrix into an :class:`SVDResult` (all d directions)."""
    d = g_aug.shape[0] - 1
    n = round(float(g_aug[d, d]))
    g = g_aug[:d, :d]
    mean = None
    if center:
        mean = g_aug[:d, d] / n
        g = g - n * np.outer(mean, mean)
    evals, evecs = np.linalg.eigh((g + g.T) / 2)
    order = np.argsort(evals)[::-1]
    evals = np.clip(evals[order], 0.0, None)
    comps = flip_signs(evecs[:, order].T)
    total = float(np.trace(g))
    return SVDResult(np.sqrt(evals), comps, total, n, mean)


def _projected_gram_block(block: Any, basis: np.ndarray | None, shift: np.ndarray | None,
                          weights: np.ndarray | None,
                          block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Kernel: ``w² [Y, 1]ᵀ [Y, 1]`` with ``Y = (X_b − shift) basis``, shape (1, r+1, r+1).

    :func:`~veob_dask.svd.kernels.augmented_gram` in float64 (the shift cancels a large common
    offset exactly); ``basis`` None is the identity; ``w`` is ``weights[i]`` for row chunk ``i``.
    """
    out = augmented_gram(block, basis, shift=shift, block_id=block_id)[None]
    if weights is not None:
        out *= float(weights[block_id[0] if block_id else 0]) ** 2
    return out


def projected_gram(x: da.Array, basis: np.ndarray | None, *, shift: np.ndarray | None = None,
                   weights: np.ndarray | None = None,
                   split_every: int | None = None) -> da.Array:
    """Lazy augmented Gram matrix ``[Y, 1]ᵀ[Y, 1]`` of ``Y = (X − shift) basis``, float64.

    The Rayleigh–Ritz pass: with orthonormal columns in ``basis`` (d, r), the eigenvalues of the
    centered r x r block are the squared singular values of the data restricted to their span.

    Parameters
    ----------
    x : dask.array.Array of shape (n, d)
        One column chunk; dense or sparse blocks.
    basis : ndarray of shape (d, r) or None
        The subspace (None: the identity, no product).
    shift : ndarray of shape (d,), optional
        Subtracted from every row before the product (the column means when centering: the
        residual mean, which the augmented row and column hold, is then tiny).
    weights : ndarray of shape (n_row_chunks,), optional
        Row chunk ``i`` counts with weight ``weights[i]`` (its rows scaled by it).
    split_every : int, optional
        Fan-in of the tree reduction.

    Notes
    -----
    Laziness: builds a graph only. Memory: one row chunk plus a float64 sub-block of about
    8 MiB and an (r+1)² matrix per task. Determinism: the graph name is a token of the input,
    the basis, the shift and the weights.
    """
    r = x.shape[1] if basis is None else basis.shape[1]
    parts = da.map_blocks(
        _projected_gram_block, x, basis, shift, weights, dtype=np.float64, new_axis=2,
        chunks=((1,) * x.numblocks[0], (r + 1,), (r + 1,)),
        name="veob-projected-gram-" + da.core.tokenize(x.name, basis, shift, weights))
    total: da.Array = parts.sum(axis=0, split_every=split_every)
    return total


def gram_error(g_acc: np.ndarray, vectors: np.ndarray, top: float, *, unit_roundoff: float,
               n_products: int) -> np.ndarray:
    """Estimated absolute error of each eigenvalue of an accumulated Gram matrix.

    ``εᵢ = u vᵢᵀ diag(G) vᵢ (4 + 32/√m) + 32 u₆₄ Λ``:

    - accumulation: each of the ``m`` sub-block products summed into ``G`` has entries wrong by
      a few ``u`` (the unit roundoff of the products' dtype) relative to ``√(G_aa G_bb)``; with
      random signs, ``vᵢᵀ E vᵢ`` is about ``u vᵢᵀ diag(G) vᵢ`` per product and the products add
      up like a random walk (the ``32/√m``); errors that repeat from product to product (a
      common offset, repeated rows) do not average out (the ``4``);
    - the eigensolver (and the subtraction of the mean): ``u₆₄`` times ``Λ``, the largest
      eigenvalue of the matrix that was accumulated (before centering).

    Checked against numpy's float64 SVD on 200 random matrices (float32 and float64, with and
    without offsets and centering, spectra falling to 1e-7): never below the actual error where
    the decision is taken (at most 2e-3 relative), at least 1.7 times it.
    Parameters
    ----------
    g_acc : ndarray of shape (d, d)
        The matrix as accumulated (uncentered).
    vectors : ndarray of shape (d, r)
        Its (or its centered version's) eigenvectors, as columns.
    top : float
        ``Λ``.
    unit_roundoff : float
        Of the sub-block products (2⁻²⁴ for float32, 2⁻⁵³ for float64).
    n_products : int
        Sub-block products summed.

    Returns
    -------
    ndarray of shape (r,)
    """
    w = np.einsum("ar,a,ar->r", vectors, np.clip(np.diagonal(g_acc), 0.0, None), vectors)
    acc = unit_roundoff * w * (_SAFETY_SYSTEMATIC + _SAFETY / math.sqrt(max(1, n_products)))
    return acc + _SAFETY * _U64 * max(float(top), 0.0)


def first_unresolved(singular_values: np.ndarray, errors: np.ndarray, k: int, *,
                     floor: float = ACCURACY_FLOOR,
                     irreducible: np.ndarray | None = None) -> int | None:
    """Index of the first of the leading ``k`` values whose estimated relative error exceeds
    :data:`SV_RTOL` while ``σᵢ/σ₁ >= floor`` (and, with ``irreducible``, whose error is more
    than twice the part no further pass can remove); None when there is none."""
    s = singular_values[:k]
    if s.size == 0 or s[0] <= 0:
        return None
    lam = s**2
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(lam > 0, errors[:k] / (2.0 * np.where(lam > 0, lam, 1.0)), np.inf)
    bad = (s >= floor * s[0]) & (rel > SV_RTOL)
    if irreducible is not None:
        bad &= errors[:k] > 2.0 * irreducible[:k]
    idx = np.flatnonzero(bad)
    return int(idx[0]) if idx.size else None


def _n_products(x: da.Array, width: int) -> int:
    """Sub-block products the dense kernels sum over ``x`` (one per chunk for sparse blocks)."""
    if has_sparse_blocks(x):
        return int(x.numblocks[0])
    step = _gram_step(width)
    return int(sum(math.ceil(c / step) for c in x.chunks[0] if c))


#: Largest λ_max/λ_min inside one group of resolved directions (``eigh`` of the group is then
#: accurate to about 1e4·u relative for all of them).
_GROUP_RANGE = 1e4


def value_groups(values: np.ndarray, i0: int) -> list[tuple[int, int]]:
    """Split the resolved leading ``i0`` values into runs of range <= _GROUP_RANGE; the rest
    (unresolved) is one last group."""
    out, lo = [], 0
    for i in range(1, i0):
        if values[i] ** 2 * _GROUP_RANGE < values[lo] ** 2:
            out.append((lo, i))
            lo = i
    if i0:
        out.append((lo, i0))
    if i0 < values.size:
        out.append((i0, values.size))
    return out


def graded_eigh(b: np.ndarray, groups: list[tuple[int, int]]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenpairs of a PSD ``b`` that is nearly diagonal across ``groups`` of coordinates of
    decreasing scale (block LDLᵀ elimination).

    Each group's block is taken after its coupling to the larger groups is removed by a Schur
    complement ``M₂₂ − M₂₁ M₁₁⁻¹ M₁₂`` (``M₁₁`` scaled to unit diagonal for the solve), so
    ``eigh`` sees only values of that group's scale: a small eigenvalue is resolved relative to
    its group, not to ``λ₁``. What is neglected, the coupling's effect on the eigenvalues, is
    second order in the coupling angle (returned per vector as ``δ²``). Returns (values,
    coordinates with the eigenvectors as orthonormal columns, δ²).
    """
    d = b.shape[0]
    values = np.empty(d)
    blocks: list[tuple[np.ndarray, np.ndarray | None]] = []
    m = b
    for lo, hi in groups:
        k = hi - lo
        lam, q = np.linalg.eigh((m[:k, :k] + m[:k, :k].T) / 2)
        values[lo:hi] = np.clip(lam[::-1], 0.0, None)
        coupling = None
        if hi < d:
            dsq = np.sqrt(np.clip(np.diagonal(m[:k, :k]), 1e-300, None))
            scaled = m[:k, :k] / np.outer(dsq, dsq)
            c = m[:k, k:] / dsq[:, None]
            sol = scipy.linalg.solve((scaled + scaled.T) / 2, c, assume_a="pos")
            coupling = -sol / dsq[:, None]  # later eigenvectors' part in this group: coupling @ z
            m = m[k:, k:] - c.T @ sol
        blocks.append((q[:, ::-1], coupling))
    lo = groups[-1][0]
    coords = blocks[-1][0]
    for (g_lo, g_hi), (q, coupling) in zip(groups[-2::-1], blocks[-2::-1], strict=True):
        later = coords
        coords = np.zeros((d - g_lo, d - g_lo))
        k = g_hi - g_lo
        coords[:k, :k] = q
        coords[:k, k:] = coupling @ later  # type: ignore[operator]
        coords[k:, k:] = later
    delta2 = np.sum(coords**2, axis=0) - 1.0  # the first-order coupling added to each vector
    orth, r = np.linalg.qr(coords)  # Gram–Schmidt in order: larger groups first
    return values, orth * np.where(np.diagonal(r) < 0, -1.0, 1.0), np.clip(delta2, 0.0, None)


def _refine(x: da.Array, res: SVDResult, i0: int, *, center: bool,
            split_every: int | None) -> tuple[SVDResult, np.ndarray, np.ndarray]:
    """One Rayleigh–Ritz pass: the Gram matrix of the data in the basis of all current
    directions (nearly diagonal there for the first ``i0``, resolved ones), decomposed by
    :func:`graded_eigh`.

    Returns the new result, the error estimates and their irreducible part (both in λ units).
    """
    d = res.components.shape[1]
    basis = None if i0 == 0 else np.ascontiguousarray(res.components.T)
    shift = res.mean if center else None
    with threadpool_limits(1, user_api="blas"):
        (b_aug,) = dask.compute(projected_gram(x, basis, shift=shift, split_every=split_every))
    b_aug = np.asarray(b_aug)
    n, b_acc, ysum = float(b_aug[d, d]), b_aug[:d, :d], b_aug[:d, d]
    resid = np.outer(ysum, ysum) / n if center and n > 0 else np.zeros((d, d))
    groups = value_groups(res.singular_values, i0)
    values, coords, delta2 = graded_eigh(b_acc - resid, groups)
    comps = coords.T if basis is None else coords.T @ res.components
    # Errors, per group at its own scale: accumulation and eigh in float64 and the neglected
    # coupling (δ² λ); plus the rounding of (X - shift) @ basis, a backward error of about
    # u·‖X - shift‖ on the data that no further pass removes.
    m = _n_products(x, 2 * d)
    shift_energy = float(np.trace(resid))
    errors = values * delta2
    for lo, hi in groups:
        errors[lo:hi] += gram_error(b_acc[lo:hi, lo:hi], coords[lo:hi, lo:hi],
                                    values[lo] + shift_energy, unit_roundoff=_U64,
                                    n_products=m)
    energy = max(float(np.trace(b_acc - resid)), 0.0)
    irreducible = 2.0 * np.sqrt(values) * _SAFETY * _U64 * math.sqrt(energy)
    errors += irreducible
    s = np.sqrt(values)
    order = np.argsort(-s, kind="stable")
    out = SVDResult(s[order], flip_signs(comps[order]), energy, res.n_samples, res.mean,
                    passes=res.passes + 1)
    return out, errors[order], irreducible[order]


def gram_svd(x: da.Array, *, center: bool = False, split_every: int | None = None,
             compute_dtype: Any = None, n_components: float | None = None,
             refine: bool = True) -> SVDResult:
    """Exact SVD of ``x`` through the float64 Gram matrix: one pass, more only when needed.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
        One column chunk; blocks may be dense or scipy.sparse. Integer and bool data are
        converted to float64 a sub-block at a time and accumulated in float64.
    center : bool, default=False
        Subtract column means (PCA) instead of the plain SVD the paper uses.
    split_every : int, optional
        Fan-in of the tree reduction.
    compute_dtype : {None, "float32", "float64"}, default=None
        Dtype of the sub-block products (summed in float64). None: float32 for float32 (or
        float16) data, float64 otherwise. float32 halves the product's cost (it is a third
        of an out-of-core fit's CPU time); the error model accounts for it.
    n_components : int, float or None, default=None
        The values the caller keeps (an int, an energy fraction, or None for all): only
        those decide whether the route refines.
    refine : bool, default=True
        Refine when the error estimate asks for it (False: always one pass, no promise).

    Returns
    -------
    SVDResult
        All ``n_features`` directions, descending; ``passes`` and ``note`` say whether and why
        the route refined.

    Notes
    -----
    Laziness: computes (this is a fit-time routine). Memory: O(chunk + d²) per task.
    Accuracy: every kept ``σᵢ`` with ``σᵢ/σ₁ >= 1e-6`` to ``1e-6`` relative (see the module
    docstring); below that floor no float64 method can promise relative accuracy.
    """
    dt = resolve_compute_dtype(compute_dtype, x.dtype)
    # One task per core already; BLAS threads on top of that only oversubscribe the cores.
    with threadpool_limits(1, user_api="blas"):
        (g_aug,) = dask.compute(gram_matrix(x, split_every=split_every, compute_dtype=dt))
    g_aug = np.asarray(g_aug)
    res = spectrum_from_gram(g_aug, center=center)
    if not refine:
        return res
    d = g_aug.shape[0] - 1
    unit = _U64 if has_sparse_blocks(x) else float(np.finfo(dt).eps) / 2
    shift_energy = float(g_aug[:d, d] @ g_aug[:d, d]) / max(g_aug[d, d], 1.0) if center else 0.0
    top = (res.singular_values[0] ** 2 if res.singular_values.size else 0.0) + shift_energy
    err = gram_error(g_aug[:d, :d], res.components.T, top, unit_roundoff=unit,
                     n_products=_n_products(x, d))
    def kept(r: SVDResult) -> int:
        return choose_k(r.singular_values, r.total_energy, n_components)

    # Refine while a kept value (any ratio) is short of SV_RTOL and a pass can still help;
    # promise (and warn about) only those with σᵢ/σ₁ >= ACCURACY_FLOOR.
    first = first_unresolved(res.singular_values, err, kept(res), floor=0.0)
    i0 = first
    while i0 is not None and res.passes <= MAX_REFINEMENTS:
        res, err, irr = _refine(x, res, i0, center=center, split_every=split_every)
        i0 = first_unresolved(res.singular_values, err, kept(res), floor=0.0,
                              irreducible=irr)
    if first is None:
        return res
    return _reported(res, err, first, kept(res))


def _reported(res: SVDResult, err: np.ndarray, first: int, k: int) -> SVDResult:
    """The refined result with its note; a NumericalWarning for a kept value still short of
    :data:`SV_RTOL` above :data:`ACCURACY_FLOOR`."""
    s = res.singular_values
    note = ""
    if res.passes > 1:
        note = (f"refined by {res.passes - 1} Rayleigh–Ritz pass(es): σ{first + 1}/σ₁ = "
                f"{s[first] / s[0]:.1e} was below the one-pass Gram route's accuracy")
    bad = first_unresolved(s, err, k)
    if bad is not None:
        warnings.warn(
            f"the Gram route could not resolve σ{bad + 1} (σ{bad + 1}/σ₁ = {s[bad] / s[0]:.1e}) "
            f"to {SV_RTOL:g} relative after {res.passes} passes (estimated error "
            f"{err[bad] / (2 * s[bad] ** 2):.1e}); use solver='tsqr'.",
            NumericalWarning, stacklevel=4)
    return SVDResult(s, res.components, res.total_energy, res.n_samples, res.mean,
                     passes=res.passes, note=note)
