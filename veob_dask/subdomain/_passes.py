"""Many subdomains in one pass: per-chunk results sparse over keys, a tree reduction, a memory plan.

A pass reads every row chunk once. The task of a chunk sorts its rows by subdomain and builds an
*accumulator* for each subdomain present in it, and only for those (a dict ``code -> accumulator``,
so a chunk holding two subdomains out of a thousand costs two accumulators). Partial dicts are
merged ``split_every`` at a time up a tree; only the merged dict of the pass reaches the client,
where each subdomain's accumulator is turned into its basis and dropped.

Accumulators, per subdomain with ``d`` features and working rank ``r``:

``gram``         the augmented Gram matrix ``[X_j, 1]ᵀ [X_j, 1]``, (d+1)² floats: exact, one pass;
``incremental``  a rank-``r`` :class:`~veob_dask.svd.incremental.SVDSummary` (Brand merges),
                 ``r (d + 1)`` floats: one pass, truncated to ``r`` at every merge;
``randomized``   ``X_jᵀ X_j Q_j`` for a d x r panel ``Q_j`` plus the column sums, ``(d+1)(r+1)``
                 floats: subspace iteration, ``n_iter + 1`` passes, sparse-friendly.

How many accumulators exist at once is bounded by the tree: with ``T`` tasks running and fan-in
``s``, at most about ``T (s + 1) + (s - 1) depth`` (an upper bound of what the threaded scheduler
keeps: benchmarks/README.md, "Measurements behind choices in the code"). :func:`plan_fit`
divides the memory budget by
that count to get how many subdomains one pass may carry, and groups the subdomains into passes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from threadpoolctl import threadpool_limits

from .._reduce import tree_depth, tree_reduce
from ..errors import InvalidParameterError
from ..svd.incremental import merge, reorthogonalize, summarize_block
from ..svd.kernels import (
    EXACT_MAX_FEATURES,
    SUBBLOCK_ELEMENTS,
    as_csr,
    augmented_gram,
    block_stats,
    normal_block,
)

__all__ = ["SOLVERS", "Plan", "live_accumulators", "parse_memory", "plan_fit", "run_pass"]

SOLVERS = ("auto", "gram", "incremental", "randomized")

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_memory(value: Any) -> int | None:
    """Bytes from an int, or a string such as ``"1GB"``, ``"512MiB"``, ``"2e9"``; None stays None.

    Examples
    --------
    >>> parse_memory("1.5GB"), parse_memory("512MiB"), parse_memory(None)
    (1500000000, 536870912, None)
    """
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS:
            try:
                n = float(m.group(1)) * _UNITS[m.group(2).lower()]
            except ValueError:
                n = 0.0
            if n >= 1:
                return int(n)
    raise InvalidParameterError(
        f"memory_budget must be a positive number of bytes or a string such as '1GB' or "
        f"'512MiB'; got {value!r}.")


def live_accumulators(n_leaves: int, split_every: int, threads: int) -> int:
    """Upper estimate of the partial results alive at once in one pass (see module notes)."""
    return min(n_leaves + tree_depth(n_leaves, split_every) + 1,
               threads * (split_every + 1) + (split_every - 1) * tree_depth(n_leaves, split_every))


@dataclass(frozen=True)
class Plan:
    """How a fit runs: solver, subdomains per pass, and the memory it is expected to take."""

    solver: str
    reason: str
    rank: int
    group_size: int
    n_groups: int
    passes: int
    per_key_bytes: int
    live: int
    estimate_bytes: int


def _per_key_bytes(solver: str, d: int, rank: int) -> int:
    if solver == "gram":
        return 8 * (d + 1) ** 2
    if solver == "incremental":
        return 8 * (rank * (d + 1) + d + 8)
    return 8 * (d + 1) * (rank + 1) + 8 * d * rank  # the accumulator, and the key's panel


def _task_bytes(solver: str, d: int, rank: int, chunk_bytes: int, chunk_rows: int) -> int:
    """Memory one running task needs besides its accumulators: its chunk, the chunk's rows
    sorted by subdomain, and the solver's temporaries for one subdomain at a time."""
    base = 2 * chunk_bytes + 8 * (d + 1) * min(chunk_rows, SUBBLOCK_ELEMENTS // (d + 1) + 1)
    if solver == "gram":
        return base + 8 * (d + 1) ** 2
    if solver == "incremental":
        return base + 8 * (min(d, EXACT_MAX_FEATURES) ** 2 + 4 * (2 * rank + 1) * d)
    return base + 8 * 2 * d * rank


def _layout(solver: str, n_keys: int, d: int, rank: int, budget: int | None, threads: int,
            split_every: int, n_leaves: int, chunk_bytes: int, chunk_rows: int,
            out_bytes: int, passes_per_group: int) -> Plan | None:
    per_key = _per_key_bytes(solver, d, rank)
    live = live_accumulators(n_leaves, split_every, threads)
    fixed = out_bytes + threads * _task_bytes(solver, d, rank, chunk_bytes, chunk_rows)
    if budget is None:
        group = n_keys
    else:
        group = min(n_keys, (budget - fixed) // max(1, live * per_key))
        if group < 1:
            return None
    n_groups = math.ceil(n_keys / group)
    group = math.ceil(n_keys / n_groups)  # balanced groups
    return Plan(solver, "", rank, int(group), n_groups, n_groups * passes_per_group, per_key,
                live, fixed + live * group * per_key)


def plan_fit(n_keys: int, d: int, *, solver: str, rank: int, n_iter: int, budget: int | None,
             threads: int, split_every: int, n_leaves: int, chunk_bytes: int, chunk_rows: int,
             out_bytes: int, sparse: bool) -> Plan:
    """Choose the solver (for ``"auto"``) and the subdomains per pass under ``budget`` bytes.

    ``"auto"`` takes the exact Gram route when every subdomain's (d+1)² matrix fits in one
    pass, else the incremental route (one pass, rank-``rank`` summaries); wide data (more than
    4,096 features) always goes incremental with randomized local summaries.

    Raises
    ------
    InvalidParameterError
        When not even one subdomain per pass fits the budget.
    """
    if budget is not None and out_bytes > budget:
        raise InvalidParameterError(
            f"the fitted bases alone ({n_keys} subdomains x {out_bytes // max(1, n_keys * 8 * d)}"
            f" components x {d} features = {out_bytes / 2**20:.0f} MiB) exceed memory_budget "
            f"({budget / 2**20:.0f} MiB); raise memory_budget or lower n_components.")
    rand_passes = n_iter + 1
    if solver == "auto":
        candidates = [("incremental", 1)] if d > EXACT_MAX_FEATURES else [("gram", 1),
                                                                          ("incremental", 1)]
    else:
        candidates = [(solver, rand_passes if solver == "randomized" else 1)]
    plans = [p for s, n in candidates
             if (p := _layout(s, n_keys, d, rank, budget, threads, split_every, n_leaves,
                              chunk_bytes, chunk_rows, out_bytes, n)) is not None]
    if not plans:
        need = _task_bytes(candidates[-1][0], d, rank, chunk_bytes, chunk_rows) * threads + out_bytes + \
            live_accumulators(n_leaves, split_every, threads) * _per_key_bytes(
                candidates[-1][0], d, rank)
        raise InvalidParameterError(
            f"memory_budget {budget / 2**20:.0f} MiB cannot hold one subdomain per pass with "
            f"solver={candidates[-1][0]!r} (about {need / 2**20:.0f} MiB needed with {threads} "
            "tasks at once); raise memory_budget, use smaller row chunks, or use "
            "solver='incremental' with a lower n_components.")
    one_pass = [p for p in plans if p.n_groups == 1]
    plan = one_pass[0] if one_pass else min(plans, key=lambda p: (p.passes, p.estimate_bytes))
    if solver != "auto":
        why = "chosen by the caller"
    elif plan.solver == "gram":
        why = f"exact: every subdomain's {d + 1}² Gram matrix fits the budget in one pass"
    elif d > EXACT_MAX_FEATURES:
        why = f"{d} > {EXACT_MAX_FEATURES} features: rank-{rank} summaries, randomized locally"
    else:
        why = (f"{n_keys} Gram matrices of {d + 1}² do not fit the budget in one pass: rank-{rank}"
               " summaries (Brand merges)")
    if sparse and plan.solver == "gram" and d > EXACT_MAX_FEATURES:
        why += "; sparse blocks"
    return Plan(plan.solver, why, rank, plan.group_size, plan.n_groups, plan.passes,
                plan.per_key_bytes, plan.live, plan.estimate_bytes)


# -- kernels --------------------------------------------------------------------------------------
def _as_rows(block: Any) -> Any:
    """scipy CSR for sparse blocks, an ndarray otherwise (rows can then be gathered)."""
    csr = as_csr(block)
    return np.asarray(block) if csr is None else csr


def _segments(codes: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the group's subdomains sorted by code: (order, codes present, segment bounds)."""
    rows = np.flatnonzero((codes >= lo) & (codes < hi))
    order = rows[np.argsort(codes[rows], kind="stable")]
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if order.size \
        else np.zeros(0, dtype=np.int64)
    bounds = np.r_[starts, order.size].astype(np.int64)
    return order, sorted_codes[starts], bounds


def _randomized_acc(xs: Any, q: np.ndarray) -> np.ndarray:
    """``[[Xᵀ X q, Xᵀ 1], [‖X‖², n]]`` of one subdomain's rows, (d+1, l+1) float64."""
    d, l = q.shape
    out = np.zeros((d + 1, l + 1))
    out[:d, :l] = normal_block(xs, q)
    stats = block_stats(xs)
    out[:d, l], out[d, 0], out[d, 1] = stats[:d], stats[d], stats[d + 1]
    return out


def _add(a: Any, b: Any, solver: str, opts: dict[str, Any]) -> Any:
    if solver == "incremental":
        return merge(a, b, max_rank=opts["rank"])
    return a + b


def _leaf(blocks: list[Any], key_blocks: list[np.ndarray], domains: np.ndarray, lo: int, hi: int,
          solver: str, opts: dict[str, Any], panels: np.ndarray | None) -> dict[int, Any]:
    """Kernel: accumulators of the subdomains ``lo <= code < hi`` present in these chunks."""
    out: dict[int, Any] = {}
    for block, keys in zip(blocks, key_blocks, strict=True):
        x = _as_rows(block)
        codes = np.searchsorted(domains, np.asarray(keys).ravel())
        order, present, bounds = _segments(codes, lo, hi)
        if order.size == 0:
            continue
        xs_all = x[order]
        for j, code in enumerate(present.tolist()):
            xs = xs_all[bounds[j]:bounds[j + 1]]
            if solver == "gram":
                acc = augmented_gram(xs)
            elif solver == "incremental":
                acc = summarize_block(xs, max_rank=opts["rank"], center=opts["center"],
                                      n_iter=opts["n_iter"], seed=opts["seed"] + code)
            else:
                assert panels is not None
                acc = _randomized_acc(xs, panels if panels.ndim == 2 else panels[code - lo])
            out[code] = acc if code not in out else _add(out[code], acc, solver, opts)
    return out


def _combine(parts: list[dict[int, Any]], solver: str, opts: dict[str, Any]) -> dict[int, Any]:
    """Kernel: merge partial dicts (inputs are not modified)."""
    out = dict(parts[0])
    for part in parts[1:]:
        for code, acc in part.items():
            out[code] = acc if code not in out else _add(out[code], acc, solver, opts)
    return out


def _finish(parts: dict[int, Any], solver: str) -> dict[int, Any]:
    if solver == "incremental":
        return {code: reorthogonalize(s) for code, s in parts.items()}
    return parts


def keyed_tree(x: da.Array, keys: da.Array, domains: np.ndarray, lo: int, hi: int, *,
               solver: str, opts: dict[str, Any], panels: np.ndarray | None = None,
               split_every: int = 2) -> Delayed:
    """Lazy dict ``code -> accumulator`` for the subdomains ``lo <= code < hi`` (one pass).

    ``keys`` must have the row chunks of ``x``; ``domains`` is the sorted array of all keys
    (``code`` is a position in it).
    """
    xb = x.to_delayed(optimize_graph=True).ravel().tolist()
    kb = keys.to_delayed(optimize_graph=True).ravel().tolist()
    fp = None if panels is None else (panels.shape, float(panels.sum()), panels.ravel()[:64])
    token = tokenize(x.name, keys.name, lo, hi, solver, sorted(opts.items()), fp, split_every)
    dom = dask.delayed(domains, pure=True, name=f"veob-domains-{tokenize(domains)}")
    pan = None if panels is None else dask.delayed(panels, pure=True,
                                                   name=f"veob-panels-{token}")
    leaves = [dask.delayed(_leaf, pure=True)([xb[i]], [kb[i]], dom, lo, hi, solver, opts, pan,
                                             dask_key_name=f"veob-subdomain-leaf-{token}-{i}")
              for i in range(len(xb))]
    root = tree_reduce(leaves, partial(_combine, solver=solver, opts=opts),
                       split_every=split_every, name="veob-subdomain-merge", token=token)
    out: Delayed = dask.delayed(_finish, pure=True)(
        root, solver, dask_key_name=f"veob-subdomain-final-{token}")
    return out


def run_pass(x: da.Array, keys: da.Array, domains: np.ndarray, lo: int, hi: int, *,
             solver: str, opts: dict[str, Any], panels: np.ndarray | None = None,
             split_every: int = 2) -> dict[int, Any]:
    """Compute one pass (:func:`keyed_tree`) with one BLAS thread per task."""
    tree = keyed_tree(x, keys, domains, lo, hi, solver=solver, opts=opts, panels=panels,
                      split_every=split_every)
    with threadpool_limits(1, user_api="blas"):
        (out,) = dask.compute(tree)
    return dict(out)
