"""Fit one basis per subdomain: run the planned passes and turn each accumulator into a basis.

:func:`fit_bases` is what :class:`~veob_dask.subdomain.SubdomainEmbedding` calls. It plans the
passes (:func:`~veob_dask.subdomain._passes.plan_fit`), runs them group by group, and keeps
per subdomain only its top components, so the client never holds more than one group's
accumulators besides the fitted bases.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from ..svd import choose_k, flip_signs
from ._passes import Plan, plan_fit, run_pass

__all__ = ["DomainBases", "fit_bases"]

#: Singular values below this fraction of a subdomain's largest are numerical zeros.
RTOL = 1e-10


@dataclass
class DomainBases:
    """Fitted bases of every subdomain (rows of ``components`` past ``ranks`` are zero)."""

    components: np.ndarray  # (m, k, d)
    singular_values: np.ndarray  # (m, k)
    ranks: np.ndarray  # (m,)
    means: np.ndarray  # (m, d), zeros when not centered
    n_samples: np.ndarray  # (m,)
    energy: np.ndarray  # (m,) squared Frobenius norm of each (centered) subdomain
    plan: Plan


def _from_gram(acc: np.ndarray, center: bool, n_top: int) -> tuple[np.ndarray, np.ndarray, float,
                                                                      int, np.ndarray | None]:
    """Top ``n_top`` right singular pairs from an augmented Gram matrix (partial ``eigh``: the
    MRRR driver computes only the wanted pairs; benchmarks/README.md, "Measurements behind
    choices in the code")."""
    d = acc.shape[0] - 1
    n = round(float(acc[d, d]))
    g = acc[:d, :d]
    mean = None
    if center:
        mean = acc[:d, d] / max(n, 1)
        g = g - n * np.outer(mean, mean)
    g = (g + g.T) / 2
    if n_top < d // 2:
        lam, vec = scipy.linalg.eigh(g, subset_by_index=[d - n_top, d - 1], driver="evr")
    else:
        lam, vec = scipy.linalg.eigh(g, driver="evd")
    order = np.argsort(lam)[::-1][:n_top]
    s = np.sqrt(np.clip(lam[order], 0.0, None))
    return s, flip_signs(vec[:, order].T), float(np.trace(g)), n, mean


def _finish_all(accs: dict[int, Any], func: Any, threads: int) -> dict[int, Any]:
    """``func`` over every accumulator, ``threads`` at a time with one BLAS thread each
    (multithreaded BLAS inside concurrent ``eigh`` calls oversubscribes the cores; see
    benchmarks/README.md, "Measurements behind choices in the code")."""
    with threadpool_limits(1, user_api="blas"):
        if threads <= 1 or len(accs) <= 1:
            return {c: func(a) for c, a in accs.items()}
        with ThreadPoolExecutor(threads) as pool:
            done = dict(zip(accs, pool.map(func, accs.values()), strict=True))
    return done


def _from_summary(summ: Any) -> tuple[np.ndarray, np.ndarray, float, int, np.ndarray | None]:
    return summ.singular_values, summ.components, summ.energy, summ.n_samples, summ.mean


def _randomized_step(acc: np.ndarray, q: np.ndarray, center: bool, last: bool) -> Any:
    """One subspace-iteration step from ``[[Xᵀ X q, Xᵀ 1], [‖X‖², n]]``: the next panel, or
    (last) the Rayleigh–Ritz basis on ``span(q)``."""
    d, l = q.shape
    y, sums, sumsq, n = acc[:d, :l], acc[:d, l], float(acc[d, 0]), round(float(acc[d, 1]))
    mean = sums / max(n, 1) if center else None
    if mean is not None:
        y = y - n * np.outer(mean, mean @ q)  # (X - 1 mᵀ)ᵀ (X - 1 mᵀ) q
        sumsq = max(0.0, sumsq - n * float(mean @ mean))
    if not last:
        return np.linalg.qr(y)[0]
    t = q.T @ y
    lam, vec = np.linalg.eigh((t + t.T) / 2)
    order = np.argsort(lam)[::-1]
    s = np.sqrt(np.clip(lam[order], 0.0, None))
    return s, flip_signs((q @ vec[:, order]).T), sumsq, n, mean


def _run_group(x: da.Array, keys: da.Array, domains: np.ndarray, lo: int, hi: int, plan: Plan,
               *, center: bool, n_iter: int, seed: int, split_every: int, n_top: int,
               threads: int) -> dict[int, Any]:
    """Per subdomain of the group: (singular values, components, energy, n, mean)."""
    d = x.shape[1]
    opts = {"rank": plan.rank, "center": center, "n_iter": n_iter, "seed": seed}
    if plan.solver == "gram":
        accs = run_pass(x, keys, domains, lo, hi, solver="gram", opts=opts,
                        split_every=split_every)
        return _finish_all(accs, partial(_from_gram, center=center, n_top=n_top), threads)
    if plan.solver == "incremental":
        accs = run_pass(x, keys, domains, lo, hi, solver="incremental", opts=opts,
                        split_every=split_every)
        return {c: _from_summary(s) for c, s in accs.items()}  # already decomposed
    panels = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, plan.rank)))[0]
    out: dict[int, Any] = {}
    for step in range(n_iter + 1):
        accs = run_pass(x, keys, domains, lo, hi, solver="randomized", opts=opts,
                        panels=panels, split_every=split_every)
        last = step == n_iter
        nxt = None if last else np.empty((hi - lo, d, plan.rank))
        with threadpool_limits(1, user_api="blas"):
            steps = {c: _randomized_step(a, panels if panels.ndim == 2 else panels[c - lo],
                                         center, last) for c, a in accs.items()}
        for c, res in steps.items():
            if last:
                out[c] = res
            else:
                assert nxt is not None
                nxt[c - lo] = res
        if nxt is not None:
            panels = nxt
    return out


def fit_bases(x: da.Array, keys: da.Array, domains: np.ndarray, *, n_components: float,
              solver: str, center: bool, n_oversamples: int, n_iter: int, max_components: int,
              memory_budget: int | None, split_every: int, seed: int,
              threads: int) -> DomainBases:
    """Fit every subdomain's basis in as few passes as the memory budget allows.

    Parameters
    ----------
    x : dask.array.Array of shape (n, d)
        One column chunk.
    keys : dask.array.Array of shape (n,)
        Subdomain key of each row, with the row chunks of ``x``; every key is in ``domains``.
    domains : ndarray of shape (m,)
        Sorted distinct keys.
    n_components : int or float
        Components per subdomain, or the energy fraction each subdomain keeps.
    solver, center, n_oversamples, n_iter, max_components, memory_budget, split_every, seed
        See :class:`~veob_dask.subdomain.SubdomainEmbedding`.
    threads : int
        Tasks that run at once (for the memory plan).

    Returns
    -------
    DomainBases
    """
    m, d = domains.size, x.shape[1]
    k_cap = n_components if isinstance(n_components, int) else min(d, max_components)
    rank = min(d, k_cap + n_oversamples)
    chunk_bytes = max(x.chunks[0]) * d * np.dtype(x.dtype).itemsize
    sparse = not isinstance(getattr(x, "_meta", None), np.ndarray)
    plan = plan_fit(m, d, solver=solver, rank=rank, n_iter=n_iter, budget=memory_budget,
                    threads=threads, split_every=split_every, n_leaves=x.numblocks[0],
                    chunk_bytes=0 if sparse else chunk_bytes,
                    chunk_rows=max(x.chunks[0]), out_bytes=8 * m * k_cap * d,
                    sparse=sparse)
    kept: list[np.ndarray] = [np.zeros((0, d))] * m
    svals: list[np.ndarray] = [np.zeros(0)] * m
    means, energy, counts = np.zeros((m, d)), np.zeros(m), np.zeros(m, dtype=np.int64)
    for lo in range(0, m, plan.group_size):
        hi = min(m, lo + plan.group_size)
        for c, (s, w, e, n, mu) in _run_group(x, keys, domains, lo, hi, plan, center=center,
                                              n_iter=n_iter, seed=seed,
                                              split_every=split_every, n_top=k_cap,
                                              threads=threads).items():
            k = choose_k(s, e, n_components, rtol=RTOL)
            kept[c], svals[c] = np.array(w[:k]), np.array(s[:k])
            energy[c], counts[c] = e, n
            if mu is not None:
                means[c] = mu
    ranks = np.array([s.size for s in svals], dtype=np.int64)
    k_out = n_components if isinstance(n_components, int) else max(1, int(ranks.max()))
    comps = np.zeros((m, k_out, d))
    sv = np.zeros((m, k_out))
    for c in range(m):
        comps[c, :ranks[c]] = kept[c]
        sv[c, :ranks[c]] = svals[c]
        kept[c] = svals[c] = np.zeros(0)  # release as we go
    return DomainBases(comps, sv, ranks, means, counts, energy, plan)
