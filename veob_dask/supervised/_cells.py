"""Cell hierarchies for the §8 maps: build on an in-memory sample, route rows by their x-part.

A *hierarchy* is a rooted tree of cells stored as flat arrays, nodes numbered breadth first so
that the children of a node are consecutive and every parent comes before its children:

``parent`` (-1 for the root), ``first_child`` (-1 for a leaf), ``n_children``, ``depth``, and
``centroid`` — the node's centroid in the space the rows are *routed* in, the input embedding
``P_x``. Cells are placed in the joint embedding ``P_z`` (or in ``P_x`` when ``α = 0``), but a query
has no ``y``, so it can only be routed by its ``P_x``; the map of a cell is therefore fitted on the
rows that the same x-only routing sends to it (fitting on the joint-space membership and routing
by ``P_x`` was measured worse: Fashion-MNIST, 256 cells, 0.79 against 0.85).

Two builders: hierarchical k-means (``cells="kmeans"``: ``n_cells`` cells at the first level, then
``branching`` children per cell and level) and the §5 principal-direction tree (``cells="tree"``,
binary, through :class:`~veob_dask.partition.PartitionTree`). Two x-only routes: ``"nearest"``
(the nearest leaf centroid, §5's Voronoi cells) and ``"descend"`` (the nearest child centroid at
each level). Several hierarchies (``n_partitions``) are concatenated with node offsets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..partition import PartitionTree, kmeans_centroids, nearest_centroids
from ..partition.cells import group_sums

#: Rows per distance tile (tile x leaves float32 distances).
_ROW_TILE = 2048

__all__ = ["Hierarchy", "build_kmeans_tree", "build_pca_tree", "concat", "route"]


@dataclass
class Hierarchy:
    """Flat arrays of one or more cell trees (see the module docstring)."""

    parent: np.ndarray  # int64 (n_nodes,)
    first_child: np.ndarray  # int64 (n_nodes,)
    n_children: np.ndarray  # int64 (n_nodes,)
    depth: np.ndarray  # int64 (n_nodes,)
    centroid: np.ndarray  # float64 (n_nodes, d) in the routing space
    roots: np.ndarray  # int64 (n_partitions,)

    @property
    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.first_child < 0)


def _from_children(children: list[list[int]], centroid: list[np.ndarray],
                   depth: list[int]) -> Hierarchy:
    """Arrays of one tree given in breadth-first order (children consecutive)."""
    n = len(children)
    parent = np.full(n, -1, dtype=np.int64)
    first = np.full(n, -1, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    for v, kids in enumerate(children):
        if kids:
            if kids != list(range(kids[0], kids[0] + len(kids))):
                raise AssertionError("children must be consecutive")  # pragma: no cover
            first[v], count[v] = kids[0], len(kids)
            parent[kids] = v
    return Hierarchy(parent, first, count, np.asarray(depth, dtype=np.int64),
                     np.asarray(centroid, dtype=np.float64), np.zeros(1, dtype=np.int64))


def _batched_kmeans(z: np.ndarray, gid: np.ndarray, n_groups: int, k: int, seed: int,
                    n_iter: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means run inside every group at once: ``k`` centroids per group.

    Starts from ``k`` distinct random rows of each group. Returns ``(labels, centroids)`` with
    ``centroids`` of shape (n_groups, k, d); slots that end up empty hold NaN. One call does a
    whole tree level, where :func:`~veob_dask.partition.kmeans_centroids` would need one call per cell
    (``benchmarks/README.md``, "Measurements behind choices in the code").
    """
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(gid.size), gid))
    sizes = np.bincount(gid, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(gid.size) - starts[gid[order]]
    first = order[rank < k]
    cent = np.full((n_groups, k, z.shape[1]), np.nan)
    cent[gid[first], rank[rank < k]] = z[first]
    labels = np.zeros(gid.size, dtype=np.int64)
    for _ in range(n_iter):
        dist = np.stack([np.sum((z - cent[gid, j]) ** 2, axis=1) for j in range(k)], axis=1)
        new = np.argmin(np.where(np.isnan(dist), np.inf, dist), axis=1)
        if _ > 0 and np.array_equal(new, labels):
            break
        labels = new
        key = gid * k + labels
        counts = np.bincount(key, minlength=n_groups * k).reshape(n_groups, k)
        sums = group_sums(z, key, n_groups * k)
        full = counts > 0
        cent[full] = sums.reshape(n_groups, k, -1)[full] / counts[full][:, None]
        cent[~full] = np.nan
    return labels, cent


def build_kmeans_tree(z: np.ndarray, to_route: np.ndarray, *, n_cells: int, max_depth: int,
                      branching: int, min_rows: float, scale: float, seed: int) -> Hierarchy:
    """Hierarchical k-means on the sample ``z`` (rows in the cell space).

    ``n_cells`` cells under the root (skipped when 1), then up to ``max_depth`` more levels of
    ``branching`` children for every cell whose rows (times ``scale``, the population a sample
    row stands for) are at least ``branching * min_rows``. Centroids are returned in the routing
    space: ``to_route`` maps a cell-space point to its x-part (identity when cells live in x).
    """
    children: list[list[int]] = [[]]
    centroid = [z.mean(axis=0)]
    depth = [0]
    node_of_row = np.zeros(z.shape[0], dtype=np.int64)
    frontier = [0]
    for level in range(max_depth + (n_cells > 1)):
        first = level == 0 and n_cells > 1
        k = n_cells if first else branching
        counts = np.bincount(node_of_row[node_of_row >= 0], minlength=len(children))
        split = [v for v in frontier if counts[v] >= 2 and (
            first or counts[v] * scale >= branching * min_rows)]
        if not split:
            break
        pos = np.full(len(children), -1, dtype=np.int64)
        pos[split] = np.arange(len(split))
        rows = np.flatnonzero((node_of_row >= 0) & (pos[np.maximum(node_of_row, 0)] >= 0))
        if first:
            cents, _ = kmeans_centroids(z, min(k, z.shape[0]), max_iter=20, random_state=seed)
            cents = cents[None]
            labels = nearest_centroids(z, cents[0])[0]
        else:
            labels, cents = _batched_kmeans(z[rows], pos[node_of_row[rows]], len(split), k,
                                            seed + 7919 * level)
        gid = pos[node_of_row[rows]]
        used = np.bincount(gid * k + labels, minlength=len(split) * k).reshape(len(split), k)
        frontier = []
        node_of_row[:] = -1
        for g, v in enumerate(split):
            slots = np.flatnonzero(used[g] > 0)
            if slots.size < 2:
                continue
            start = len(children)
            children[v] = list(range(start, start + slots.size))
            for j, slot in enumerate(slots):
                children.append([])
                centroid.append(cents[g, slot])
                depth.append(level + 1)
                node_of_row[rows[(gid == g) & (labels == slot)]] = start + j
                frontier.append(start + j)
    h = _from_children(children, centroid, depth)
    h.centroid = h.centroid @ to_route
    return h


def build_pca_tree(z: np.ndarray, to_route: np.ndarray, *, n_cells: int, max_depth: int,
                   min_rows: float, scale: float, seed: int) -> Hierarchy:
    """The §5 tree (splits through the centroid along the top principal direction) on ``z``.

    Binary, ``log2(n_cells) + max_depth`` levels; nodes with at most ``min_rows`` rows (in
    population terms) stay leaves.
    """
    levels = max(0, math.ceil(math.log2(max(1, n_cells)))) + max_depth
    # PartitionTree splits nodes of more than min_samples rows; ours, of at least 2 * min_rows.
    tree = PartitionTree(levels, min_samples=max(1, math.ceil(2 * min_rows / scale) - 1),
                         max_samples=None, random_state=seed).fit(z)
    kids = [[int(c) for c in row] if row[0] >= 0 else [] for row in tree.children_]
    h = _from_children(kids, list(tree.node_centroids_), list(tree.node_depth_))
    h.centroid = h.centroid @ to_route
    return h


def concat(trees: list[Hierarchy]) -> Hierarchy:
    """One set of arrays for several trees (node numbers offset, roots recorded)."""
    offsets = np.cumsum([0] + [t.parent.size for t in trees])
    shift = [np.where(t.parent >= 0, t.parent + o, -1) for t, o in zip(trees, offsets, strict=False)]
    first = [np.where(t.first_child >= 0, t.first_child + o, -1)
             for t, o in zip(trees, offsets, strict=False)]
    return Hierarchy(np.concatenate(shift), np.concatenate(first),
                     np.concatenate([t.n_children for t in trees]),
                     np.concatenate([t.depth for t in trees]),
                     np.concatenate([t.centroid for t in trees]),
                     offsets[:-1].astype(np.int64))


def _nearest_of(px: np.ndarray, cand: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """For each row, the nearest of its own candidate nodes ``cand[i]`` (-1 pads)."""
    out = np.empty(px.shape[0], dtype=np.int64)
    step = max(1, (1 << 19) // max(1, cand.shape[1] * px.shape[1]))
    for a in range(0, px.shape[0], step):
        c = cand[a:a + step]
        diff = centroid[np.maximum(c, 0)] - px[a:a + step, None, :]
        dist = np.einsum("njd,njd->nj", diff, diff)
        dist[c < 0] = np.inf
        out[a:a + step] = c[np.arange(c.shape[0]), np.argmin(dist, axis=1)]
    return out


def _children_table(nodes: np.ndarray, first_child: np.ndarray,
                    n_children: np.ndarray) -> np.ndarray:
    """Children of each of ``nodes`` as rows padded with -1."""
    width = int(n_children[nodes].max())
    j = np.arange(width)
    return np.where(j < n_children[nodes][:, None], first_child[nodes][:, None] + j, -1)


def _descend(px: np.ndarray, root: int, first_child: np.ndarray, n_children: np.ndarray,
             centroid: np.ndarray) -> np.ndarray:
    """Leaf reached from ``root`` taking the nearest child centroid at every level."""
    node = np.full(px.shape[0], root, dtype=np.int64)
    if first_child[root] < 0:
        return node
    kids = first_child[root] + np.arange(n_children[root])
    node = kids[_nearest_per_tree(px, centroid[kids], np.array([0, kids.size]))[:, 0]]
    while True:
        rows = np.flatnonzero(first_child[node] >= 0)
        if rows.size == 0:
            return node
        node[rows] = _nearest_of(px[rows], _children_table(node[rows], first_child,
                                                           n_children), centroid)


def _nearest_per_tree(px: np.ndarray, cents: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Column ``t``: the row of ``cents[bounds[t]:bounds[t+1]]`` nearest to each row of ``px``
    (as an index into ``cents``).

    All trees in one float32 product per tile of rows: ``[x, 1] · [−2c, ‖c‖²]`` is the squared
    distance less ``‖x‖²`` (the same for every centroid), taken about the centroids' mean, which
    keeps the float32 cancellation small; ties go to the lower index. Tiles of about 4 MB of
    distances stay in cache for the arg-min.
    """
    shift = cents.mean(axis=0)
    c = cents - shift
    d = c.shape[1]
    caug = np.empty((c.shape[0], d + 1), dtype=np.float32)
    caug[:, :d] = -2.0 * c
    caug[:, d] = np.einsum("ij,ij->i", c, c)
    caug_t = np.ascontiguousarray(caug.T)
    out = np.empty((px.shape[0], bounds.size - 1), dtype=np.int64)
    tile = max(64, min(_ROW_TILE, (1 << 20) // max(1, c.shape[0])))
    xa = np.ones((min(tile, px.shape[0]), d + 1), dtype=np.float32)
    for a in range(0, px.shape[0], tile):
        m = min(tile, px.shape[0] - a)
        xa[:m, :d] = px[a:a + m] - shift
        dist = xa[:m] @ caug_t
        for t in range(bounds.size - 1):
            out[a:a + m, t] = bounds[t] + np.argmin(dist[:, bounds[t]:bounds[t + 1]], axis=1)
    return out


def route(px: np.ndarray, first_child: np.ndarray, n_children: np.ndarray,
          centroid: np.ndarray, roots: np.ndarray, how: str) -> np.ndarray:
    """Leaf node of every row in every tree, shape (n, n_trees), by x-only routing ``how``.

    ``"nearest"``: the nearest leaf centroid of the tree (§5's Voronoi cells of the leaves), all
    trees in one product per tile of rows; ``"descend"``: the nearest child centroid level by
    level (fewer comparisons, but gathers instead of one product, and less accurate). Rows are
    ``P_x``; ties go to the lower node number.
    """
    px = np.asarray(px, dtype=np.float64)
    if how == "descend":
        out = np.empty((px.shape[0], roots.size), dtype=np.int64)
        for t, r in enumerate(roots):
            out[:, t] = _descend(px, int(r), first_child, n_children, centroid)
        return out
    leaves = np.flatnonzero(first_child < 0)  # increasing, so grouped by tree
    bounds = np.searchsorted(leaves, np.append(roots, first_child.size))
    return leaves[_nearest_per_tree(px, centroid[leaves], bounds)]
