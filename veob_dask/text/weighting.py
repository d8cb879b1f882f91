"""Count weighting shared by the text models: positive pointwise mutual information (PPMI).

For a non-negative count matrix ``C`` (rows: words, columns: contexts or features) with total
``N = Σ C``, row sums ``n(w)`` and column sums ``n(c)``,

    PPMI(w, c) = max(0, log(C(w, c) · N / (n(w) · n_α(c)))),   n_α(c) = N · n(c)^α / Σ n(c')^α,

where ``α`` smooths the context distribution (``α = 0.75`` in Levy, Goldberg & Dagan, "Improving
Distributional Similarity with Lessons Learned from Word Embeddings", TACL 2015, §3.1–3.2; ``α =
1`` is plain PMI). Only stored (non-zero) cells are weighted, so the result keeps the sparsity of
``C`` (cells with PMI ≤ 0 are dropped).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import DataError, InvalidParameterError

__all__ = ["ppmi"]


def ppmi(counts: Any, *, alpha: float = 0.75) -> sp.csr_matrix:
    """Positive PMI of a sparse count matrix (see the module docstring).

    Parameters
    ----------
    counts : scipy.sparse matrix of shape (n_rows, n_cols)
        Non-negative counts or weights.
    alpha : float, default=0.75
        Context-distribution smoothing, in (0, 1].

    Returns
    -------
    scipy.sparse.csr_matrix of float64, same shape; non-positive PMI cells removed.

    Raises
    ------
    InvalidParameterError
        If ``alpha`` is outside (0, 1].
    DataError
        If ``counts`` holds a negative value.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> c = sp.csr_matrix([[4.0, 0.0], [1.0, 1.0]])
    >>> ppmi(c, alpha=1.0).toarray().round(3)
    array([[0.182, 0.   ],
           [0.   , 1.099]])
    """
    if not 0 < alpha <= 1:
        raise InvalidParameterError(f"alpha must be in (0, 1]; got {alpha!r}.")
    c = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    c.sum_duplicates()
    c.eliminate_zeros()
    if c.nnz and c.data.min() < 0:
        raise DataError(f"PPMI needs non-negative counts; got a minimum of {c.data.min():g}.")
    if c.nnz == 0:
        return c
    total = c.data.sum()
    row_sum = np.asarray(c.sum(axis=1)).ravel()
    smooth = np.asarray(c.sum(axis=0)).ravel() ** alpha
    p_ctx = smooth / smooth.sum()
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    pmi = np.log(c.data / total) - np.log(row_sum[rows] / total) - np.log(p_ctx[c.indices])
    c.data = np.maximum(pmi, 0.0)
    c.eliminate_zeros()
    return c
