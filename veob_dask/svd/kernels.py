"""The data kernels every solver shares: the augmented Gram matrix and the normal product of a block.

Both take one block of rows (dense ndarray, scipy.sparse or pydata ``sparse``) and return float64
numpy arrays; they are what a task does with a chunk, whoever arranges the tasks
(:mod:`veob_dask.svd.gram`, :mod:`veob_dask.svd._passes`, :mod:`veob_dask.svd.incremental`,
:mod:`veob_dask.subdomain`).

``augmented_gram(X)``     ``[X, 1]ᵀ [X, 1]``, (d+1) x (d+1): the Gram matrix, the column sums and
                          the row count from one product;
``normal_block(X, q)``    ``Xᵀ (X q)``, d x l: one power step of a range finder.

Dense blocks are converted to the compute dtype a cache-sized sub-block at a time and the
sub-block products are summed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_block_finite

__all__ = ["SUBBLOCK_ELEMENTS", "augmented_gram", "normal_block", "subblock_rows"]

#: Elements of one dense sub-block a kernel converts at a time (bounds task memory; a
#: 1024 x 785 float64 buffer stays in cache for its BLAS ``syrk``, where converting a whole chunk
#: first is several times slower: benchmarks/README.md, "Measurements behind choices in the
#: code").
SUBBLOCK_ELEMENTS = 1 << 20


#: Elements of one dense sub-block of :func:`normal_block` (two products per sub-block).
_NORMAL_SUBBLOCK = 1 << 19


def subblock_rows(d: int, limit: int = 1024) -> int:
    """Rows of a dense sub-block of at most :data:`SUBBLOCK_ELEMENTS` values and ``limit`` rows."""
    return max(1, min(limit, SUBBLOCK_ELEMENTS // max(1, d)))


def _as_csr(block: Any, dtype: Any) -> Any:
    """scipy CSR for scipy.sparse and pydata ``sparse`` blocks; None for dense blocks."""
    if type(block).__module__.startswith("sparse"):  # pydata sparse
        block = block.tocsr()
    if sp.issparse(block):
        return sp.csr_matrix(block, dtype=dtype)
    return None


def augmented_gram(block: Any, *, dtype: Any = np.float64,
                   block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Augmented Gram matrix ``[X, 1]ᵀ [X, 1]`` of one block of rows, float64 (d+1, d+1).

    Parameters
    ----------
    block : ndarray, scipy.sparse matrix or pydata ``sparse`` array of shape (n, d)
        Rows are samples.
    dtype : {float64, float32}, default=float64
        Dtype of the products of dense sub-blocks (their sum is float64); sparse blocks are
        multiplied in float64.
    block_id : tuple of int, optional
        Named in the error when the block holds NaN or inf.

    Returns
    -------
    ndarray of shape (d+1, d+1)
        ``[:d, :d]`` the Gram matrix, ``[:d, d]`` the column sums, ``[d, d]`` the row count.

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
    errors average out over the many sub-blocks of a large matrix. NaN/inf make the diagonal
    or the column sums non-finite, so those O(d) numbers stand in for a scan of the block.

    Examples
    --------
    >>> import numpy as np
    >>> g = augmented_gram(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> g.tolist()
    [[10.0, 14.0, 4.0], [14.0, 20.0, 6.0], [4.0, 6.0, 2.0]]
    """
    n, d = block.shape
    csr = _as_csr(block, np.float64)
    out = np.zeros((d + 1, d + 1))
    if csr is not None:
        check_block_finite(csr, block_id)
        out[:d, :d] = (csr.T @ csr).toarray()
        sums = np.asarray(csr.sum(axis=0)).ravel()
        out[:d, d] = sums
        out[d, :d] = sums
        out[d, d] = n
        return out
    step = subblock_rows(d + 1)
    buf = np.empty((min(step, max(n, 1)), d + 1), dtype=dtype)
    buf[:, d] = 1.0
    for start in range(0, n, step):
        part = block[start:start + step]
        b = buf[:part.shape[0]]
        b[:, :d] = part  # the conversion to the compute dtype happens here, in cache
        out += b.T @ b
    if not np.all(np.isfinite(np.diagonal(out))) or not np.all(np.isfinite(out[d])):
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
    csr = _as_csr(block, q.dtype)
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
