"""The one tree reduction: fan-in, depth, order, deterministic keys, errors."""

from __future__ import annotations

import dask
import pytest

from veob_dask._reduce import tree_depth, tree_reduce
from veob_dask.errors import InvalidParameterError


def _concat(parts: list[list[int]]) -> list[int]:
    return [v for p in parts for v in p]


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 64, 65])
@pytest.mark.parametrize("split_every", [2, 3, 8])
def test_order_fan_in_and_depth(n, split_every):
    leaves = [dask.delayed([i], name=f"leaf-{i}") for i in range(n)]
    root = tree_reduce(leaves, _concat, split_every=split_every, name="t")
    assert root.compute() == list(range(n))  # left subtrees hold earlier parts
    graph = dict(root.__dask_graph__())
    combines = [key for key in graph if str(key).startswith("t-")]
    assert all(len(dask.core.get_dependencies(graph, key)) <= split_every for key in combines)
    assert len({str(key).rsplit("-", 2)[-2] for key in combines}) == tree_depth(n, split_every)


def test_keys_are_deterministic():
    def build():
        return tree_reduce([dask.delayed([i], name=f"leaf-{i}") for i in range(5)], _concat,
                           split_every=2)

    assert build().key == build().key


def test_errors():
    with pytest.raises(InvalidParameterError, match="at least one"):
        tree_reduce([], _concat)
    with pytest.raises(InvalidParameterError, match="split_every"):
        tree_reduce([dask.delayed([1])], _concat, split_every=1)
