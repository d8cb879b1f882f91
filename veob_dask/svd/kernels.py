"""The block kernels every solver shares: one numpy function per operation on a block of rows.

Each takes one block of rows (dense ndarray, scipy.sparse or pydata ``sparse``) and returns numpy
arrays; they are what a task does with a chunk, whoever arranges the tasks
(:mod:`veob_dask.svd.gram`, :mod:`veob_dask.svd._passes`, :mod:`veob_dask.svd.incremental`,
:mod:`veob_dask.subdomain`, :mod:`veob_dask.partition`), and :func:`choose_k` is the one rule
that turns a spectrum into a number of components.

``augmented_gram(X, basis, shift=)``  ``[Y, 1]ᵀ [Y, 1]`` with ``Y = (X − shift) basis`` (``Y = X``
                                      by default), (r+1)²: the Gram matrix, the column sums and
                                      the row count from one product;
``normal_block(X, q)``                ``Xᵀ (X q)``, d x l: one power step of a range finder;
``block_stats(X)``                    column sums, sum of squares and row count, float64;
``project_block(X, V, mean)``         ``(X − mean) Vᵀ``: the embedding of a block;
``choose_k(s, total, n_components)``  components kept for an int or an energy fraction.

Dense blocks are converted to the compute dtype a cache-sized sub-block at a time and the
sub-block products are summed in float64.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_block_finite

__all__ = ["EXACT_MAX_FEATURES", "SUBBLOCK_ELEMENTS", "as_csr", "augmented_gram", "block_stats",
           "choose_k", "cumulative_energy", "normal_block", "project_block", "subblock_rows"]

#: Widest data the exact routes take under ``"auto"`` (a d x d Gram matrix per fit, per chunk
#: summary or per subdomain); wider data goes to the randomized range finders.
EXACT_MAX_FEATURES = 4096

#: Elements of one dense sub-block a kernel converts at a time (bounds task memory; a
#: 1024 x 785 float64 buffer stays in cache for its BLAS ``syrk``, where converting a whole chunk
#: first is several times slower: benchmarks/README.md, "Measurements behind choices in the
#: code").
SUBBLOCK_ELEMENTS = 1 << 20

#: Elements of one dense sub-block of :func:`normal_block` and :func:`block_stats`.
_NORMAL_SUBBLOCK = 1 << 19


def subblock_rows(d: int, limit: int = 1024) -> int:
    """Rows of a dense sub-block of at most :data:`SUBBLOCK_ELEMENTS` values and ``limit`` rows."""
    return max(1, min(limit, SUBBLOCK_ELEMENTS // max(1, d)))


def as_csr(block: Any, dtype: Any = None) -> Any:
    """scipy CSR (of ``dtype``, default its own) for scipy.sparse and pydata ``sparse``
    blocks; None for dense blocks."""
    if type(block).__module__.startswith("sparse"):  # pydata sparse
        block = block.tocsr()
    if sp.issparse(block):
        return sp.csr_matrix(block, dtype=dtype)
    return None


def _sparse_gram(csr: Any) -> np.ndarray:
    n, d = csr.shape
    out = np.zeros((d + 1, d + 1))
    out[:d, :d] = (csr.T @ csr).toarray()
    sums = np.asarray(csr.sum(axis=0)).ravel()
    out[:d, d] = sums
    out[d, :d] = sums
    out[d, d] = n
    return out


def augmented_gram(block: Any, basis: np.ndarray | None = None, *,
                   shift: np.ndarray | None = None, dtype: Any = np.float64,
                   block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Augmented Gram matrix ``[Y, 1]ᵀ [Y, 1]`` of ``Y = (X − shift) basis``, float64.

    Parameters
    ----------
    block : ndarray, scipy.sparse matrix or pydata ``sparse`` array of shape (n, d)
        Rows are samples.
    basis : ndarray of shape (d, r), optional
        Project the rows first (None: ``Y = X − shift``, r = d).
    shift : ndarray of shape (d,), optional
        Subtracted from every row, in ``dtype``, before anything else.
    dtype : {float64, float32}, default=float64
        Dtype the rows are converted to (and of the products with ``basis``; sparse blocks with
        a basis too). Without a basis the Gram products of dense sub-blocks run in it, with a
        basis in float64 (the r-wide products are cheap next to the projection); all sums are
        float64.
    block_id : tuple of int, optional
        Named in the error when the block holds NaN or inf.

    Returns
    -------
    ndarray of shape (r+1, r+1)
        ``[:r, :r]`` the Gram matrix, ``[:r, r]`` the column sums, ``[r, r]`` the row count.

    Raises
    ------
    DataError
        If the block holds NaN or inf.

    Notes
    -----
    The ones column rides along in the buffer, so the column sums and the row count come out
    of the same product. numpy dispatches ``bᵀ b`` to BLAS ``syrk`` and releases the GIL while
    it runs (scipy's f2py ``dsyrk`` wrapper holds it, which serialised the threaded scheduler).
    With float32 products the rounding of a ≤ 1024-row product is about 1e-6 of it, and those
    errors average out over the many sub-blocks of a large matrix. Subtracting a large common
    offset (``shift``) before the product makes it cancel exactly instead of inside the product.
    NaN/inf make the diagonal or the column sums non-finite, so those O(d) numbers stand in for
    a scan of the block.

    Examples
    --------
    >>> import numpy as np
    >>> g = augmented_gram(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> g.tolist()
    [[10.0, 14.0, 4.0], [14.0, 20.0, 6.0], [4.0, 6.0, 2.0]]
    """
    n, d = block.shape
    plain = basis is None and shift is None
    csr = as_csr(block, np.float64 if basis is None else dtype)
    if csr is not None:
        check_block_finite(csr, block_id)
        if plain:
            return _sparse_gram(csr)
        y = csr.toarray() if basis is None else np.asarray(csr @ basis, dtype=np.float64)
        if shift is not None:
            y -= shift if basis is None else shift @ basis
        return augmented_gram(y)
    r = d if basis is None else basis.shape[1]
    step = subblock_rows(d + 1 + (0 if plain else r))
    buf = np.empty((min(step, max(n, 1)), r + 1), dtype=dtype if basis is None else np.float64)
    buf[:, r] = 1.0
    out = np.zeros((r + 1, r + 1))
    for start in range(0, n, step):
        part = block[start:start + step]
        b = buf[:part.shape[0]]
        if plain:
            b[:, :d] = part  # the conversion to the compute dtype happens here, in cache
        else:
            part = np.array(part, dtype=dtype)
            if shift is not None:
                part -= shift
            b[:, :r] = part if basis is None else part @ basis
        out += b.T @ b
    if not np.all(np.isfinite(np.diagonal(out))) or not np.all(np.isfinite(out[r])):
        check_block_finite(np.asarray(block), block_id)
    return out


def normal_block(block: Any, q: np.ndarray) -> np.ndarray:
    """``Xᵀ (X q)`` of one block of rows, shape (d, l), float64 for dense blocks.

    Parameters
    ----------
    block : ndarray, scipy.sparse matrix or pydata ``sparse`` array of shape (n, d)
    q : ndarray of shape (d, l)
        The panel, in the compute dtype (sparse blocks are multiplied in it too, and their
        product comes back in it).

    Returns
    -------
    ndarray of shape (d, l)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(3, 2)
    >>> bool(np.allclose(normal_block(x, np.eye(2)), x.T @ x))
    True
    """
    csr = as_csr(block, q.dtype)
    if csr is not None:
        return np.asarray(csr.T @ (csr @ q))
    xb = np.asarray(block)
    n_rows, d = xb.shape
    out = np.zeros((d, q.shape[1]))
    step = max(1, _NORMAL_SUBBLOCK // max(1, d))
    buf = np.empty((min(n_rows, step), d), dtype=q.dtype)
    for start in range(0, n_rows, step):
        part = xb[start:start + step]
        xs = buf[:part.shape[0]]
        xs[...] = part  # conversion to the compute dtype into a cache-sized buffer
        out += xs.T @ (xs @ q)
    return out


def block_stats(block: Any, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Column sums, sum of squares and row count of one block: float64 of shape (d + 2,).

    Raises :class:`~veob_dask.errors.DataError` when the block holds NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> block_stats(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [4.0, 6.0, 30.0, 2.0]
    """
    n, d = block.shape
    out = np.zeros(d + 2)
    out[d + 1] = n
    csr = as_csr(block)
    if csr is not None:
        check_block_finite(csr, block_id)
        out[:d] = np.asarray(csr.sum(axis=0, dtype=np.float64)).ravel()
        if csr.has_canonical_format:
            values = csr.data.astype(np.float64, copy=False)
            out[d] = float(np.dot(values, values))
        else:
            out[d] = float(csr.multiply(csr).sum(dtype=np.float64))
        return out
    step = max(1, _NORMAL_SUBBLOCK // max(1, d))
    for start in range(0, n, step):
        part = np.asarray(block[start:start + step], dtype=np.float64)
        out[:d] += part.sum(axis=0)
        flat = part.ravel()
        out[d] += float(flat @ flat)
    # NaN/inf make the sum of squares or a column sum non-finite: scan only then.
    if not (np.isfinite(out[d]) and np.all(np.isfinite(out[:d]))):
        check_block_finite(np.asarray(block), block_id)
    return out


def project_block(block: Any, components: np.ndarray, mean: np.ndarray | None = None, *,
                  dtype: Any = np.float64,
                  block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """``(X − mean) componentsᵀ`` of one block of rows, (n, k) in ``dtype``.

    Dense rows are shifted by the mean before the product (a mean far from zero then cancels
    exactly); sparse blocks stay sparse and get the mean folded in afterwards,
    ``X Vᵀ − (mean Vᵀ)``. Raises :class:`~veob_dask.errors.DataError` on NaN or inf. A NaN or
    inf in a row makes its output row non-finite, so the block itself is scanned only when the
    (k-wide, smaller) output is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> project_block(np.array([[3.0, 4.0]]), np.array([[0.6, 0.8]])).tolist()
    [[5.0]]
    """
    comps_t = np.asarray(components).T.astype(dtype, copy=False)
    csr = as_csr(block)
    with np.errstate(invalid="ignore"):  # NaN/inf input: found below, named by its block
        if csr is not None:
            out = np.asarray(csr @ comps_t, dtype=dtype)
            if mean is not None:
                out -= (mean @ components.T).astype(dtype)
        else:
            xb = np.asarray(block, dtype=dtype)
            if mean is not None:
                xb = xb - mean.astype(dtype)
            out = np.asarray(xb @ comps_t, dtype=dtype)
    if not np.all(np.isfinite(out)):
        check_block_finite(block, block_id)
    return out


def cumulative_energy(singular_values: Any, total_energy: float | None = None) -> np.ndarray:
    """Share of the energy held by the first ``j`` singular values, ``j = 1 .. n``:
    ``Σ_{i≤j} σᵢ² / total_energy``.

    Without ``total_energy`` (None or 0), a share of the energy of the values given; a spectrum
    with no energy gives zeros.

    Examples
    --------
    >>> cumulative_energy([3.0, 2.0, 1.0], 28.0).tolist()  # energies 9, 4, 1 of 28
    [0.32142857142857145, 0.4642857142857143, 0.5]
    >>> cumulative_energy([2.0, 0.0]).tolist()
    [1.0, 1.0]
    """
    e = np.cumsum(np.asarray(singular_values, dtype=np.float64) ** 2)
    total = total_energy or (e[-1] if e.size else 1.0)
    return e / (total if total > 0 else 1.0)


def choose_k(singular_values: np.ndarray, total_energy: float, n_components: Any, *,
             rtol: float = 0.0) -> int:
    """Components kept from a descending spectrum: ``n_components`` (int), or the fewest whose
    energy ``Σ σᵢ²`` reaches the fraction ``n_components`` of ``total_energy`` (float).

    Never more than the values given, nor, with ``rtol > 0``, than those above
    ``rtol · σ₁`` (the numerical rank). A fraction of 1 or more, or None, keeps them all; a
    spectrum with no energy keeps at most one.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([3.0, 2.0, 1.0])  # energies 9, 4, 1 of 14
    >>> choose_k(s, 14.0, 2), choose_k(s, 14.0, 0.9), choose_k(s, 14.0, 0.95)
    (2, 2, 3)
    """
    s = np.asarray(singular_values, dtype=np.float64)
    n = int(s.size)
    if rtol > 0:
        n = int(np.count_nonzero(s > rtol * s[0])) if n and s[0] > 0 else 0
    if n_components is None or isinstance(n_components, bool):
        return n
    if isinstance(n_components, numbers.Integral):
        return min(int(n_components), n)
    if n_components >= 1.0:
        return n
    if total_energy <= 0:
        return min(1, n)
    cum = cumulative_energy(s[:n], total_energy)
    return min(n, int(np.searchsorted(cum, n_components - 1e-12)) + 1)
