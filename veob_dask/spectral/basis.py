"""Cosine bases for the spectral transform (§4 of the paper).

Two bases map a sequence of ``N`` vectors ``x_1..x_N`` to spectral vectors ``f_m = Σ_k S[m, k] x_k``:

``"paper"``
    The paper's ``s(N, m, k) = cos(π/(N-1) · (N-m) · (k-1))`` for ``1 <= m, k <= N``, kept as
    written: unnormalised, with harmonic ``m = 1`` the highest frequency ``N-1`` and ``m = N`` the
    constant. Keeping ``m = 1..M`` keeps the M highest frequencies, the paper's "short span" filter.
``"dct2"``
    The orthonormal DCT-II, ``C[m, k] = sqrt(2/N) c_m cos(π (2k+1) m / (2N))`` with
    ``c_0 = 1/sqrt(2)``, ``m, k = 0..N-1``: energy preserving, equal to
    ``scipy.fft.dct(x, type=2, norm="ortho")``. Rows are ordered low to high frequency.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["BASES", "cosine_basis", "cosine_weights", "paper_cos"]

BASES = ("dct2", "paper")


def paper_cos(n: int, m: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """The paper's ``s(N, m, k)`` with 1-based ``m`` and ``k`` (vectorised)."""
    m = np.asarray(m, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if n < 2:
        return np.ones(np.broadcast(m, k).shape)
    return np.cos(np.pi / (n - 1) * (n - m) * (k - 1))


def cosine_weights(n: int, kind: str, keep: int, width: int) -> np.ndarray:
    """The first ``keep`` harmonics of the N-point basis ``kind`` at positions ``0..width-1``.

    The one formula of both bases: columns ``0..n-1`` are :func:`cosine_basis`; later columns
    continue the same cosines past N (a sequence longer than the grid, ``long="extend"``).
    Returns a new float64 array of shape ``(keep, width)``.
    """
    if kind == "paper":
        return paper_cos(n, np.arange(1, keep + 1)[:, None], np.arange(1, width + 1)[None, :])
    m = np.arange(keep)[:, None]
    k = np.arange(width)[None, :]
    out = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k + 1) * m / (2 * n))
    out[0] /= np.sqrt(2.0)
    return out


@lru_cache(maxsize=64)
def _basis(n: int, kind: str, keep: int) -> np.ndarray:
    out = cosine_weights(n, kind, keep, n)
    out.setflags(write=False)
    return out


def cosine_basis(n: int, kind: str = "dct2", keep: int | None = None) -> np.ndarray:
    """Return the ``(keep, n)`` float64 matrix whose row ``m`` is harmonic ``m`` of the basis.

    Parameters
    ----------
    n : int
        Sequence length N (>= 1).
    kind : {"dct2", "paper"}, default="dct2"
        Which basis; see the module docstring.
    keep : int, optional
        Number of harmonics kept (the paper's ``1 <= m <= keep``); all ``n`` by default.

    Returns
    -------
    numpy.ndarray of shape (keep, n)
        Read-only; cached per arguments.

    Examples
    --------
    >>> import numpy as np, scipy.fft
    >>> x = np.arange(5.0)
    >>> bool(np.allclose(cosine_basis(5) @ x, scipy.fft.dct(x, norm="ortho")))
    True
    """
    if kind not in BASES:
        raise InvalidParameterError(f"basis must be one of {BASES}; got {kind!r}.")
    if int(n) < 1:
        raise InvalidParameterError(f"sequence length N must be >= 1; got {n}.")
    keep = int(n) if keep is None else int(keep)
    if not 1 <= keep <= n:
        raise InvalidParameterError(f"keep must be in [1, N={n}]; got {keep}.")
    return _basis(int(n), kind, keep)
