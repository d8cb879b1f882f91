"""The §5 partition tree: recursive splits through the centroid along the top principal direction.

The tree is grown breadth first, one pass over the (lazy, out-of-core) embedding per level. A
pass routes every row down the tree built so far and accumulates, for each node of the new level,
its count, the sum of its rows and the Gram matrix of its rows (both taken relative to the
parent's centroid, which keeps the float64 cancellation small). The split direction of a node is
then the top eigenvector of its covariance (a d x d eigenproblem on the client): the exact first
right singular vector of the node's centred rows, which the paper approximates by a rank-1
randomized SVD. A row goes left when its projection on that direction is at most the centroid's.

A node is a leaf when its depth reaches ``max_depth``, when it holds at most ``min_samples`` rows,
when its rows have (numerically) no spread, or when one side of its split would be empty; so the
build stops on any input, including duplicates and a single row. Descent is bounded by the depth,
unlike the author's ``find_leaf`` (ALGORITHMS.md §5.1). After the build, the leaf centroids are
the cell generators and every row is assigned to its nearest one (§5's separate pass).

Cost: ``max_depth + 1`` passes over the rows (all of them, or a sample), each moving every row
one level down (``O(n d)``, the node of each row is kept between passes) and accumulating Gram
matrices (``O(n d^2)``): ``O(n d^2 log n)`` for ``max_depth ~ log2 sqrt(n)``, the paper's
``O(n log n)``. The assignment pass compares each row with every cell centroid, ``O(n cells d)``:
linear in n for a fixed ``max_depth``, ``O(n^1.5 d)`` when the cells grow as ``sqrt(n)`` (the
default). A tree-guided assignment (descend, then check only centroids within twice the distance
to the leaf's centroid) was tried: exact, but in 30 dimensions the triangle-inequality bound keeps
so many candidates that it was slower than the blocked brute force (benchmarks/README.md,
"Measurements behind choices in the code"), so it is not used.
``benchmarks/bench_search.py`` measures the build at n/8 .. n.
"""

from __future__ import annotations

import math
from typing import Any

import dask
import dask.array as da
import numpy as np
from threadpoolctl import threadpool_limits

from .._reduce import tree_reduce
from .._validation import check_block_finite
from ..errors import InvalidParameterError
from .base import (
    VoronoiCellsMixin,
    as_rows,
    check_max_samples,
    fit_rows,
    keeps_labels,
    sample_rows,
)
from .cells import group_sums

__all__ = ["PartitionTree", "descend"]

#: Largest number of float64 Gram entries accumulated per task and pass.
_GRAM_BUDGET = 1 << 23


def descend(x: np.ndarray, directions: np.ndarray, thresholds: np.ndarray,
            children: np.ndarray) -> np.ndarray:
    """Leaf node of each row of ``x``: left when ``x . direction <= threshold``.

    Terminates after at most ``depth`` steps on any input, since each step moves every still
    internal row one level down and the tree is finite.
    """
    n = x.shape[0]
    node = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for _ in range(children.shape[0]):
        if active.size == 0:
            break
        nd = node[active]
        inner = children[nd, 0] >= 0
        active, nd = active[inner], nd[inner]
        if active.size == 0:
            break
        proj = np.einsum("ij,ij->i", x[active], directions[nd])
        node[active] = children[nd, (proj > thresholds[nd]).astype(np.int64)]
    return node


def _step_block(block: np.ndarray, prev: np.ndarray | None, redirect: np.ndarray,
                directions: np.ndarray, thresholds: np.ndarray, children: np.ndarray
                ) -> np.ndarray:
    """Node of each row after one more level: rows at a node split since the last pass move down.

    ``redirect`` sends rows of children removed since the last pass back to their parent.
    """
    check_block_finite(block)
    if prev is None:
        return np.zeros(block.shape[0], dtype=np.int32)
    node = redirect[prev].astype(np.int64)
    inner = np.flatnonzero(children[node, 0] >= 0)
    if inner.size:
        nd = node[inner]
        x = np.asarray(block[inner], dtype=np.float64)
        proj = np.einsum("ij,ij->i", x, directions[nd])
        node[inner] = children[nd, (proj > thresholds[nd]).astype(np.int64)]
    return node.astype(np.int32)


def _level_block(block: np.ndarray, node: np.ndarray, frontier: np.ndarray, shifts: np.ndarray,
                 n_nodes: int, want_gram: bool) -> dict[str, np.ndarray]:
    """Count, shifted sum and (optionally) shifted Gram matrix of each frontier node in a block."""
    pos = np.full(n_nodes, -1, dtype=np.int64)
    pos[frontier] = np.arange(frontier.size)
    p = pos[node]
    sel = np.flatnonzero(p >= 0)
    p = p[sel]
    xs = np.asarray(block[sel], dtype=np.float64) - shifts[p]
    m, d = frontier.size, block.shape[1]
    out = {"counts": np.bincount(p, minlength=m).astype(np.int64), "sums": group_sums(xs, p, m)}
    if want_gram:
        gram = np.zeros((m, d, d))
        order = np.argsort(p, kind="stable")
        xs, ps = xs[order], p[order]
        starts = np.flatnonzero(np.diff(ps, prepend=-1))
        ends = np.append(starts[1:], ps.size)
        for a, b in zip(starts, ends, strict=True):
            seg = xs[a:b]
            gram[ps[a]] = seg.T @ seg
        out["gram"] = gram
    return out


def _head_shift(block: np.ndarray) -> np.ndarray:
    """The mean of a block's first 1024 rows, as a (1, d) float64 shift."""
    return np.asarray(block[:1024], dtype=np.float64).mean(axis=0)[None, :]


def _sum_parts(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: sum(p[key] for p in parts[1:]) + parts[0][key] for key in parts[0]}


def _split_direction(gram_shifted: np.ndarray, count: int, *, node_shift: np.ndarray,
                     centroid: np.ndarray) -> np.ndarray | None:
    """Top eigenvector of a node's covariance, or None when its rows have no spread."""
    delta = centroid - node_shift  # node mean relative to the accumulation shift
    cov = gram_shifted / count - np.outer(delta, delta)
    cov = (cov + cov.T) / 2
    vals, vecs = np.linalg.eigh(cov)
    scale = max(float(np.trace(gram_shifted)) / count, float(centroid @ centroid), 1e-300)
    if vals[-1] <= 1e-12 * scale:
        return None
    v = vecs[:, -1]
    i = int(np.argmax(np.abs(v)))
    return v if v[i] >= 0 else -v


class _TreeBuilder:
    """The state of one tree build: node tables growing level by level, each row's node.

    ``x`` holds the rows the tree grows on (all of them, or a sample standing for ``scale``
    times as many: a node splits while it stands for more than ``min_samples`` rows).

    ``dirs``, ``thr``, ``children``, ``depth``, ``counts`` and ``centroids`` are per node (in
    creation order); ``tables`` are the arrays the passes descend with; ``nodes`` holds the
    persisted node of every row, one array per row block, and ``redirect`` sends rows of
    children removed since the last pass back to their parent.
    """

    def __init__(self, x: da.Array, *, scale: float, min_samples: int) -> None:
        d = x.shape[1]
        self.x, self.d, self.scale, self.min_samples = x, d, scale, min_samples
        self.dirs: list[np.ndarray] = [np.zeros(d)]
        self.thr: list[float] = [0.0]
        self.children: list[list[int]] = [[-1, -1]]
        self.depth: list[int] = [0]
        self.counts: list[int] = [0]
        self.centroids: list[np.ndarray] = [np.zeros(d)]
        self.grams: dict[int, np.ndarray | None] = {}
        self.shift_of: dict[int, np.ndarray] = {}
        self.tables = (np.zeros((1, d)), np.zeros(1), np.full((1, 2), -1, dtype=np.int64))
        self.nodes: list[Any] = []
        self.redirect = np.zeros(1, dtype=np.int64)
        self.passes = 0  # level passes made over x

    def level_stats(self, frontier: np.ndarray, shifts: np.ndarray | None,
                    want_gram: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One pass: move every row one level down, then accumulate the frontier's statistics.

        ``shifts=None`` (the root) shifts by the mean of the first chunk's first rows, read in
        the same pass; the shifts used are returned. Node numbers and statistics come from one
        graph, so each row chunk is read once.
        """
        d = self.d
        # Unoptimised blocks: an optimised graph inlines each chunk's read into every task
        # that uses it, and a chunk feeds two tasks here (its node numbers and its statistics).
        blocks = self.x.to_delayed(optimize_graph=False).ravel()
        prev = self.nodes or [None] * len(blocks)
        if shifts is None:
            shifts = dask.delayed(_head_shift)(blocks[0])
        nodes = [dask.delayed(_step_block)(b, p, self.redirect, *self.tables)
                 for b, p in zip(blocks, prev, strict=True)]
        group = max(1, _GRAM_BUDGET // (d * d)) if want_gram else max(1, frontier.size)
        n_nodes = self.tables[2].shape[0]
        results = []
        for g in range(0, frontier.size, group):
            fr, sh = frontier[g:g + group], shifts[g:g + group]
            parts = [dask.delayed(_level_block)(b, nd, fr, sh, n_nodes, want_gram)
                     for b, nd in zip(blocks, nodes, strict=True)]
            results.append(tree_reduce(parts, _sum_parts, name="veob-tree-level"))
        # Persisting the node numbers (kept for the next pass) together with the statistics
        # makes one graph: every row chunk is read once per level.
        done = dask.persist(*nodes, *results, shifts)
        self.nodes = list(done[:len(nodes)])
        computed = dask.compute(*done[len(nodes):])
        self.passes += 1
        stats = {key: np.concatenate([r[key] for r in computed[:-1]]) for key in computed[0]}
        return stats, np.asarray(computed[-1], dtype=np.float64)

    def grow(self, depth_limit: int) -> None:
        """Split breadth first until ``depth_limit`` levels or no node can split."""
        # The root's shift (a mean of the first rows, against float64 cancellation in its Gram
        # matrix) is read in the root's own pass.
        self._record([0], None, depth_limit > 0)
        frontier = [0]
        for level in range(depth_limit):
            parents = self._split(frontier, level)
            if not parents:
                return
            self.tables = (np.array(self.dirs), np.array(self.thr),
                           np.array(self.children, dtype=np.int64))
            self.redirect = np.concatenate([self.redirect, np.arange(len(self.redirect),
                                                                     len(self.dirs))])
            new_nodes = [c for p in parents for c in self.children[p]]
            shifts = np.repeat(np.array([self.centroids[p] for p in parents]), 2, axis=0)
            self._record(new_nodes, shifts, level + 1 < depth_limit)
            frontier = self._keep_splits(parents)

    def _record(self, nodes: list[int], shifts: np.ndarray | None, want_gram: bool) -> None:
        """The pass over a new level: counts, centroids and (to split them) Gram matrices."""
        stats, shifts = self.level_stats(np.array(nodes), shifts, want_gram)
        for i, node in enumerate(nodes):
            self.counts[node] = int(stats["counts"][i])
            self.centroids[node] = shifts[i] + stats["sums"][i] / max(1, self.counts[node])
            self.shift_of[node] = shifts[i]
            self.grams[node] = stats["gram"][i] if want_gram else None

    def _split(self, frontier: list[int], level: int) -> list[int]:
        """Give every splittable frontier node a direction and two (empty) children."""
        parents = []
        for node in frontier:
            c, gram = self.counts[node], self.grams.pop(node, None)
            if c * self.scale <= self.min_samples or c < 2 or gram is None:
                continue
            direction = _split_direction(gram, c, node_shift=self.shift_of[node],
                                         centroid=self.centroids[node])
            if direction is None:
                continue
            self.dirs[node] = direction
            self.thr[node] = float(self.centroids[node] @ direction)
            self.children[node] = [len(self.dirs), len(self.dirs) + 1]
            for _ in range(2):
                self.dirs.append(np.zeros(self.d))
                self.thr.append(0.0)
                self.children.append([-1, -1])
                self.depth.append(level + 1)
                self.counts.append(0)
                self.centroids.append(np.zeros(self.d))
            parents.append(node)
        return parents

    def _keep_splits(self, parents: list[int]) -> list[int]:
        """Undo splits with an empty side (the parent stays a leaf); the next frontier."""
        frontier = []
        for p in parents:
            left, right = self.children[p]
            if self.counts[left] == 0 or self.counts[right] == 0:
                self.children[p] = [-1, -1]
                self.redirect[[left, right]] = p
                self.dirs[p] = np.zeros(self.d)
                self.thr[p] = 0.0
                self.grams.pop(left, None)
                self.grams.pop(right, None)
            else:
                frontier += [left, right]
        return frontier

    def breadth_first(self) -> list[int]:
        """The nodes reachable from the root, breadth first."""
        order, queue = [], [0]
        while queue:
            node = queue.pop(0)
            order.append(node)
            if self.children[node][0] >= 0:
                queue += self.children[node]
        return order


class PartitionTree(VoronoiCellsMixin):
    """Voronoi cells from the §5 partition tree, built out of core over a (lazy) embedding.

    Parameters
    ----------
    max_depth : int, optional
        Split levels (at most ``2**max_depth`` cells). Default: ``round(log2(sqrt(n)))``, about
        ``sqrt(n)`` cells (the paper's examples use 8 or 9 levels, i.e. 256-512 cells).
    min_samples : int, default=100
        Nodes with at most this many rows are not split (the author's ``min_samples``).
    max_samples : int, "auto" or None, default="auto"
        Grow the tree on a uniform random sample of this many rows (held in memory), like faiss
        trains its IVF quantizer on a sample; ``"auto"`` is ``256 * 2**max_depth`` rows (256 per
        possible cell), ``None`` grows it on every row, out of core (one pass per level). The
        assignment pass always covers every row, so every row lands in exactly one cell.
    random_state : int or None, default=0
        Seed of the sample.
    keep_labels : bool or "auto", default="auto"
        Keep every row's cell in ``labels_`` (``n`` int64 values in memory); ``"auto"``: for
        in-memory input (as scikit-learn's clusterers do), not for dask input.

    Attributes
    ----------
    directions_ : ndarray of shape (n_nodes, n_features)
        Unit split direction of each node (zeros for leaves).
    thresholds_ : ndarray of shape (n_nodes,)
        Projection of the node centroid on its direction: rows with ``x . v <= t`` go left.
    children_ : ndarray of shape (n_nodes, 2)
        Left and right child node numbers, ``-1`` for leaves (nodes in breadth-first order).
    node_counts_, node_centroids_, node_depth_ : ndarrays
        Rows, centroid and depth of each node, as routed by the tree.
    cell_node_ : ndarray of shape (n_cells,)
        Leaf node whose centroid generates each cell.
    cell_centroids_, cell_counts_, cell_means_, cell_r2max_ : ndarrays
        Voronoi cells after the assignment pass (empty cells dropped); ``cell_r2max_`` is the
        largest squared distance of a member to its centroid.
    neighbor_indptr_, neighbor_indices_ : ndarrays
        CSR lists of neighbouring cells (cells sharing a populated Voronoi face).
    labels_ : ndarray of shape (n_samples,)
        Cell of every row, when kept (see ``keep_labels``).
    n_samples_seen_, n_features_in_, n_cells_ : int
    n_passes_ : int
        Passes over the data ``fit`` made: the sample's (or, with ``max_samples=None``, one per
        tree level), then the assignment pass.

    Notes
    -----
    Laziness: ``fit`` computes (one pass to draw the sample, then the tree levels on the sample,
    or ``max_depth + 1`` passes over all rows when ``max_samples=None``, then the assignment pass;
    current scheduler); ``predict`` on a
    dask array is lazy. Memory: one row chunk per task plus ``O(nodes * d^2)`` statistics.
    Determinism: no randomness; results do not depend on chunking up to float64 rounding.
    """

    def __init__(self, max_depth: int | None = None, *, min_samples: int = 100,
                 max_samples: int | str | None = "auto", keep_labels: bool | str = "auto",
                 random_state: int | None = 0) -> None:
        self.max_depth = max_depth
        self.min_samples = min_samples
        self.max_samples = max_samples
        self.keep_labels = keep_labels
        self.random_state = random_state

    def _check_params(self, n: int) -> int:
        if self.max_depth is None:
            depth = max(1, round(math.log2(math.sqrt(n)))) if n > 1 else 1
        elif isinstance(self.max_depth, bool) or not isinstance(self.max_depth, int) \
                or not 0 <= self.max_depth <= 30:
            raise InvalidParameterError(
                f"max_depth must be an int in [0, 30] or None; got {self.max_depth!r}.")
        else:
            depth = self.max_depth
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) \
                or self.min_samples < 1:
            raise InvalidParameterError(
                f"min_samples must be a positive int; got {self.min_samples!r}.")
        return depth

    def fit(self, X: Any, y: Any = None) -> PartitionTree:
        """Grow the tree level by level, then assign every row to its nearest leaf centroid."""
        # Dask threads give the parallelism; BLAS threads on top only oversubscribe the cores.
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X)

    def _fit(self, X: Any) -> PartitionTree:
        x_all, in_memory = fit_rows(self, X)
        keep_labels = keeps_labels(self.keep_labels, in_memory)
        n = x_all.shape[0]
        depth_limit = self._check_params(n)
        m = n if self.max_samples is None else (
            min(n, 256 << depth_limit) if self.max_samples == "auto"
            else check_max_samples(self.max_samples, n))
        x = as_rows(sample_rows(x_all, m, self.random_state)) if m < n else x_all
        # node counts on a sample stand for n / m times as many rows
        builder = _TreeBuilder(x, scale=n / m, min_samples=self.min_samples)
        builder.grow(depth_limit)
        order = builder.breadth_first()
        self.directions_ = np.array([builder.dirs[o] for o in order])
        self.thresholds_ = np.array([builder.thr[o] for o in order])
        new = {old: i for i, old in enumerate(order)}
        self.children_ = np.array([[new[c] for c in builder.children[o]]
                                   if builder.children[o][0] >= 0 else [-1, -1]
                                   for o in order], dtype=np.int64).reshape(-1, 2)
        self.node_depth_ = np.array([builder.depth[o] for o in order], dtype=np.int64)
        self.node_counts_ = np.array([builder.counts[o] for o in order], dtype=np.int64)
        self.node_centroids_ = np.array([builder.centroids[o] for o in order])
        leaves = np.flatnonzero(self.children_[:, 0] < 0)
        remap = self._set_cells(x_all, self.node_centroids_[leaves], keep_labels)
        self.cell_node_ = leaves[remap >= 0]
        # the sample's pass (its levels read no data) or one per level, and the assignment pass
        self.n_passes_ = (1 if m < n else builder.passes) + 1
        return self

    def apply(self, X: Any) -> Any:
        """Leaf node reached by each row when descending the tree (numpy or lazy dask)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "children_")
        if isinstance(X, da.Array):
            return da.map_blocks(descend, X.astype(np.float64), self.directions_,
                                 self.thresholds_, self.children_, drop_axis=1, dtype=np.int64)
        return descend(np.asarray(X, dtype=np.float64), self.directions_, self.thresholds_,
                       self.children_)
