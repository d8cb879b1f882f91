"""The SVD solvers behind ``SVDEmbedding(solver=...)``: one fixed table, and the ``"auto"`` rule.

Every entry is a plain function of the data with its own explicit keyword arguments (there is no
registry to fill and no setting read off an estimator): the estimator passes the keywords it
owns, and a caller may use any solver directly.

===============  ===========================================================  ==============
name             function                                                     passes
===============  ===========================================================  ==============
``"gram"``       :func:`~veob_dask.svd.gram.gram_svd` (exact, d ≤ 4096)       1 (+ refining)
``"tsqr"``       :func:`~veob_dask.svd.tsqr.tsqr_svd` (exact, no squaring)    1 (+1 centred)
``"randomized"`` :func:`~veob_dask.svd.randomized.randomized_svd`             ``n_iter + 1``
``"incremental"``:func:`~veob_dask.svd.incremental_solver.incremental_svd`    2
===============  ===========================================================  ==============
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import dask.array as da

from ._passes import has_sparse_blocks
from .gram import gram_svd
from .incremental_solver import incremental_svd
from .kernels import EXACT_MAX_FEATURES
from .randomized import randomized_svd
from .result import SVDResult
from .tsqr import tsqr_svd

__all__ = ["SOLVERS", "choose_solver"]

#: Solver name -> function(x, *, center, ...) -> SVDResult (read-only).
SOLVERS: Mapping[str, Callable[..., SVDResult]] = MappingProxyType({
    "gram": gram_svd,
    "tsqr": tsqr_svd,
    "randomized": randomized_svd,
    "incremental": incremental_svd,
})


def choose_solver(x: da.Array, solver: str) -> tuple[str, str]:
    """Resolve ``solver="auto"`` for ``x``; return (solver, reason).

    Data (dense or sparse) with at most :data:`~veob_dask.svd.kernels.EXACT_MAX_FEATURES`
    features takes the exact one-pass Gram route (a d x d Gram matrix of CSR blocks is cheap,
    exact and one pass, where the randomized route needs ``n_iter + 1`` passes for an
    approximation); wider data the randomized block Krylov range finder.
    """
    if solver != "auto":
        return solver, "chosen by the caller"
    d = x.shape[1]
    kind = "sparse" if has_sparse_blocks(x) else "dense"
    if d <= EXACT_MAX_FEATURES:
        return "gram", (f"{kind} with {d} <= {EXACT_MAX_FEATURES} features: exact one-pass "
                        "Gram route")
    return "randomized", (f"{kind} with {d} > {EXACT_MAX_FEATURES} features: randomized "
                          "block Krylov range finder")
