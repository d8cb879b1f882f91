"""Route rows by content: the subdomains whose bases hold the most of each row's energy.

For a row ``q`` and subdomain ``j`` with basis ``V_j`` (k x d, orthonormal rows) and mean ``μ_j``
(zero unless the model is centered), the energy captured by the basis and the residual are

    c_j = ‖V_j (q − μ_j)‖²,        e_j = ‖q − μ_j‖² − c_j  (≥ 0),

and the *share* is ``c_j / ‖q − μ_j‖²``. Rows go to the subdomains of smallest residual ``e_j``,
the squared distance from ``q`` to the subdomain's (affine) subspace. For an uncentered model the
denominator ``‖q‖²`` is the same for every subdomain, so this is also the order of the largest
share; for a centered model it is the classic subspace classifier's rule (nearest affine
subspace), which the share alone would not give.

All subdomains are scored with one matrix product against the stacked bases (m·k x d), a block
of rows at a time so the (rows x m·k) product stays near 32 MiB.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..svd.kernels import project_block

__all__ = ["RouteTables", "project_rows", "route_block"]

_PRODUCT_ELEMENTS = 1 << 22


class RouteTables:
    """What scoring needs from a fitted model, precomputed once (for ``codes`` subdomains).

    Parameters
    ----------
    components : ndarray (m, k, d)
    means : ndarray (m, d)
    codes : ndarray of int, optional
        Positions of the subdomains that may be chosen (default: all).
    """

    def __init__(self, components: np.ndarray, means: np.ndarray,
                 codes: np.ndarray | None = None) -> None:
        m, k, d = components.shape
        self.codes = np.arange(m) if codes is None else np.asarray(codes, dtype=np.int64)
        comps = components[self.codes]
        self.k = k
        self.flat_t = np.ascontiguousarray(comps.reshape(-1, d).T)  # (d, m' k)
        mu = means[self.codes]
        self.centered = bool(np.any(mu))
        self.means_t = np.ascontiguousarray(mu.T)  # (d, m')
        self.mean_proj = np.einsum("mkd,md->mk", comps, mu).reshape(-1)  # (m' k,)
        self.mean_sq = np.einsum("md,md->m", mu, mu)

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        from dask.base import tokenize

        return ("veob-route-tables", tokenize(self.flat_t, self.means_t))

    def scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(residual energy, squared norm about each mean), both (rows, m')."""
        proj = q @ self.flat_t
        if self.centered:
            proj -= self.mean_proj
        p = proj.reshape(q.shape[0], -1, self.k)
        captured = np.einsum("bmk,bmk->bm", p, p)
        norm2 = np.einsum("ij,ij->i", q, q)[:, None]
        if self.centered:
            norm2 = norm2 - 2.0 * (q @ self.means_t) + self.mean_sq
        norm2 = np.maximum(norm2, 0.0)
        return np.maximum(norm2 - captured, 0.0), norm2


def route_block(block: Any, tables: RouteTables, n_routes: int,
                dtype: Any = np.float64) -> np.ndarray:
    """Kernel: the ``n_routes`` best subdomains of each row and their shares.

    Returns
    -------
    ndarray of shape (rows, 3 * n_routes), float64
        Columns ``[0:r]`` the subdomain positions (codes), ``[r:2r]`` the shares of energy
        captured, ``[2r:3r]`` the residual energies, best first (ties to the lower code).
    """
    x = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
    rows = x.shape[0]
    r = n_routes
    out = np.empty((rows, 3 * r))
    m = tables.codes.size
    step = max(1, _PRODUCT_ELEMENTS // max(1, m * tables.k))
    for a in range(0, rows, step):
        q = np.asarray(x[a:a + step], dtype=np.float64)
        resid, norm2 = tables.scores(q)
        if r < m:
            best = np.argpartition(resid, r - 1, axis=1)[:, :r]
        else:
            best = np.broadcast_to(np.arange(m), resid.shape).copy()
        vals = np.take_along_axis(resid, best, 1)
        order = np.lexsort((best, vals), axis=1)
        best = np.take_along_axis(best, order, 1)
        vals = np.take_along_axis(vals, order, 1)
        nrm = np.take_along_axis(np.broadcast_to(norm2, resid.shape), best, 1)
        share = np.where(nrm > 0, 1.0 - vals / np.where(nrm > 0, nrm, 1.0), 1.0)
        out[a:a + q.shape[0], :r] = tables.codes[best]
        out[a:a + q.shape[0], r:2 * r] = np.clip(share, 0.0, 1.0)
        out[a:a + q.shape[0], 2 * r:] = vals
    return out


def project_rows(block: Any, codes: np.ndarray, components: np.ndarray, means: np.ndarray,
                 dtype: Any) -> np.ndarray:
    """Kernel: each row's coordinates in the basis of its own subdomain ``codes[i]``
    (:func:`~veob_dask.svd.kernels.project_block` per subdomain)."""
    x = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
    codes = np.asarray(codes).ravel().astype(np.int64)
    out = np.empty((x.shape[0], components.shape[1]), dtype=dtype)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    if codes.size == 0:
        return out
    cuts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1], True])
    for a, b in itertools.pairwise(cuts):
        j = int(sorted_codes[a])
        rows = order[a:b]
        out[rows] = project_block(x[rows], components[j], means[j], dtype=dtype)
    return out
