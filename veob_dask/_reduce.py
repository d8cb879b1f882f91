"""The one tree reduction: combine delayed partial results ``split_every`` at a time.

Every pass that reduces per-chunk results (merge trees of SVD summaries, per-subdomain
accumulators, cell statistics, k-NN candidate lists, context counts) builds its tree here, so
the fan-in is one parameter with one meaning everywhere: no task combines more than
``split_every`` inputs, the tree has ``tree_depth(n, split_every)`` levels, and the inputs keep
their order (left subtrees hold earlier chunks), which order-sensitive merges rely on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import dask
from dask.base import tokenize
from dask.delayed import Delayed

from .errors import InvalidParameterError

__all__ = ["SPLIT_EVERY", "tree_depth", "tree_reduce"]

#: Fan-in of reductions whose combine step is a cheap sum (SVD merges default to 2).
SPLIT_EVERY = 8


def tree_depth(n_leaves: int, split_every: int) -> int:
    """Number of combine levels above ``n_leaves`` leaves with fan-in ``split_every``.

    Examples
    --------
    >>> tree_depth(1, 2), tree_depth(8, 2), tree_depth(9, 2), tree_depth(64, 8)
    (0, 3, 4, 2)
    """
    return 0 if n_leaves <= 1 else math.ceil(math.log(n_leaves) / math.log(split_every) - 1e-12)


def tree_reduce(parts: Sequence[Any], combine: Callable[[list[Any]], Any], *,
                split_every: int = SPLIT_EVERY, name: str = "veob-reduce",
                token: str | None = None) -> Delayed:
    """Combine delayed ``parts`` up a tree into one Delayed, keeping their order.

    Parameters
    ----------
    parts : sequence of Delayed
        The leaves, in order (at least one).
    combine : callable
        ``combine(list_of_results) -> result``; called on 2..``split_every`` consecutive
        results (a lone trailing result passes up a level unchanged). A module-level function
        or a :func:`functools.partial` of one, so process workers can unpickle it.
    split_every : int, default=8
        Fan-in, >= 2.
    name : str, default="veob-reduce"
        Prefix of the task keys.
    token : str, optional
        Deterministic part of the keys; default a token of the leaves' keys, ``combine`` and
        ``split_every``.

    Returns
    -------
    Delayed

    Raises
    ------
    InvalidParameterError
        For no parts or ``split_every < 2``.

    Examples
    --------
    >>> import dask
    >>> leaves = [dask.delayed(i) for i in range(10)]
    >>> tree_reduce(leaves, sum, split_every=3).compute()
    45
    """
    if not parts:
        raise InvalidParameterError("a tree reduction needs at least one part.")
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise InvalidParameterError(
            f"split_every (the fan-in of the tree) must be an int >= 2; got {split_every!r}.")
    if token is None:
        token = tokenize(*(getattr(p, "key", p) for p in parts), combine, split_every)
    level, depth = list(parts), 0
    while len(level) > 1:
        depth += 1
        level = [
            level[i] if i + 1 == len(level) else dask.delayed(combine, pure=True)(
                level[i:i + split_every], dask_key_name=f"{name}-{token}-{depth}-{i}")
            for i in range(0, len(level), split_every)
        ]
    out = level[0]
    return out if isinstance(out, Delayed) else dask.delayed(out)
