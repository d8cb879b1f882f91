"""A merge tree over row-chunk summaries, as one dask graph (one pass over the data).

Each row chunk becomes a summary on the worker that reads it (:func:`summarize_block`); the
summaries then merge ``split_every`` at a time, level by level, so the tree has
``ceil(log_split_every(n_chunks))`` levels and no task ever holds more than ``split_every``
summaries of ``r (d + 1)`` floats each. Only the final summary reaches the client.

Merges keep the chunk order (left subtree = earlier rows), which is what makes ``decay`` mean the
same thing as in a sequential stream; without truncation the result does not depend on the tree
shape at all (Brand's append is exact), with truncation it does, slightly.
"""

from __future__ import annotations

import math
from functools import partial

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed

from .._parallelism import single_blas_thread
from .._reduce import tree_reduce
from ..errors import InvalidParameterError
from .incremental import SVDSummary, merge_many, reorthogonalize, summarize_block
from .kernels import EXACT_MAX_FEATURES

__all__ = ["auto_chunks_per_leaf", "compute_summary", "merge_tree", "single_blas_thread",
           "tree_summary"]


def compute_summary(tree: Delayed) -> SVDSummary:
    """Compute a delayed summary with one BLAS thread in this process (see above)."""
    with single_blas_thread():
        (out,) = dask.compute(tree)
    return out  # type: ignore[no-any-return]


def _final(summary: SVDSummary) -> SVDSummary:
    return reorthogonalize(summary)


def merge_tree(leaves: list[Delayed], *, max_rank: int, split_every: int = 2, decay: float = 1.0,
               reorth_every: int = 50, name: str = "veob-isvd") -> Delayed:
    """Merge delayed summaries pairwise (fan-in ``split_every``) up a tree, keeping their order.

    Returns a delayed :class:`SVDSummary`, re-orthogonalised, truncated to ``max_rank``.
    """
    if not leaves:
        raise InvalidParameterError("the merge tree needs at least one leaf.")
    kernel = partial(merge_many, max_rank=max_rank, decay=decay, reorth_every=reorth_every)
    token = tokenize(*(leaf.key for leaf in leaves), max_rank, split_every, decay, reorth_every)
    root = tree_reduce(leaves, kernel, split_every=int(split_every), name=f"{name}-merge",
                       token=token)
    out: Delayed = dask.delayed(_final, pure=True)(root, dask_key_name=f"{name}-final-{token}")
    return out


#: Input bytes one leaf task may hold when it groups chunks (one chunk is always allowed).
LEAF_BYTES = 64 * 2**20


def auto_chunks_per_leaf(x: da.Array, *, decay: float = 1.0, chunk_solver: str = "auto") -> int:
    """Consecutive row chunks per leaf so that a leaf has at least ``8 d`` rows (Gram leaves).

    Below that, the d x d ``eigh`` of a leaf costs as much as forming its Gram matrix; summing
    the exact Gram matrices of a few chunks first halves the ``eigh`` work and removes
    truncations. A leaf holds its chunks at once, so groups stop at 64 MiB of input. Sparse,
    randomized (wide) or decayed fits keep one chunk per leaf.
    """
    d = x.shape[1]
    meta = getattr(x, "_meta", None)
    sparse = meta is not None and not isinstance(meta, np.ndarray)
    if decay != 1.0 or sparse or chunk_solver == "randomized" or d > EXACT_MAX_FEATURES:
        return 1
    rows = max(1, int(np.median(x.chunks[0])))
    chunk_bytes = rows * d * np.dtype(x.dtype).itemsize
    cap = max(1, LEAF_BYTES // max(1, chunk_bytes))  # a leaf task holds its chunks at once
    return max(1, min(x.numblocks[0], math.ceil(8 * d / rows), cap))


def tree_summary(x: da.Array, *, max_rank: int, center: bool = False, split_every: int = 2,
                 decay: float = 1.0, chunk_solver: str = "auto", n_iter: int = 2, seed: int = 0,
                 reorth_every: int = 50, chunks_per_leaf: int | None = None) -> Delayed:
    """Lazy summary of every row of ``x`` by a merge tree over its row chunks.

    Parameters
    ----------
    x : dask.array.Array of shape (n_samples, n_features)
        One column chunk; blocks dense or sparse.
    max_rank : int
        Working rank ``r = k + p`` kept at every node.
    center, chunk_solver, n_iter : see :func:`~veob_dask.svd.incremental.summarize_block`.
    split_every : int, default=2
        Fan-in of the tree.
    decay : float, default=1.0
        Per-chunk forgetting factor on singular values (see :mod:`~veob_dask.svd.incremental`).
    seed : int, default=0
        Chunk ``i`` uses ``seed + i`` in the randomized local solver.
    reorth_every : int, default=50
        Merges between re-orthogonalisations.
    chunks_per_leaf : int, optional
        Consecutive row chunks summarised exactly together in one leaf; default
        :func:`auto_chunks_per_leaf` (at least ``8 d`` rows per dense Gram leaf).

    Returns
    -------
    dask.delayed.Delayed
        Evaluates to an :class:`~veob_dask.svd.incremental.SVDSummary`.

    Notes
    -----
    Laziness: builds a graph only. Memory: one chunk, or ``split_every`` summaries, per task.
    Determinism: the same chunks, parameters and seed give the same summary (key names are
    tokenized from the input graph).
    """
    if len(x.chunks[1]) != 1:
        x = x.rechunk({1: -1})
    blocks = x.to_delayed(optimize_graph=True).ravel().tolist()
    group = chunks_per_leaf if chunks_per_leaf is not None else auto_chunks_per_leaf(
        x, decay=decay, chunk_solver=chunk_solver)
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise InvalidParameterError(f"chunks_per_leaf must be an int >= 1; got {group!r}.")
    if group > 1 and decay != 1.0:
        raise InvalidParameterError("chunks_per_leaf > 1 needs decay=1 (decay is per chunk).")
    leaf = partial(summarize_block, max_rank=max_rank, center=center, chunk_solver=chunk_solver,
                   n_iter=n_iter)
    token = tokenize(x.name, max_rank, center, chunk_solver, n_iter, seed, group)
    leaves = [
        dask.delayed(leaf, pure=True)(blocks[i:i + group] if group > 1 else blocks[i],
                                      seed=seed + i // group,
                                      dask_key_name=f"veob-isvd-leaf-{token}-{i // group}")
        for i in range(0, len(blocks), group)
    ]
    return merge_tree(leaves, max_rank=max_rank, split_every=split_every, decay=decay,
                      reorth_every=reorth_every)
