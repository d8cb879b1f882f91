"""Supervised learning with VEOB (§8): embeddings of x and y, cells, a linear map per cell.

Training, rows as samples (the paper writes samples as columns):

1. ``P_x = X V_xᵀ``, the SVD embedding of the inputs (or the inputs themselves when they are
   already an embedding, ``n_components=None``).
2. ``P_y``: the one-hot labels for classes; for multi-output targets the uncentred SVD of ``Y``,
   ``P_y = Y V_yᵀ`` (the paper's ``U_yᵀ Y``), or ``Y`` itself.
3. ``Z = [P_x, α P_y]`` with ``α = sqrt(‖P_x‖² / ‖P_y‖²)`` (``alpha="balanced"``, the paper's
   equal weights) or a given ``α``; its SVD gives ``P_z = Z V_zᵀ``, the joint embedding.
4. Cells are placed in ``P_z`` (k-means cells or the §5 tree; with ``α = 0``, ``P_z = P_x``), in
   ``n_partitions`` independent partitions, each a hierarchy: ``n_cells`` cells under a root,
   subdivided ``max_depth`` more levels.
5. Every cell of the hierarchy gets an affine map ``P_y ≈ [P_x, 1] A_c``, ridge-regularised toward
   its parent's map (see :mod:`veob_dask.supervised._maps`); the strength ``λ`` and which
   subdivisions to keep are chosen on held-out rows. With all ``P_z`` components kept, the paper's
   ``P_z = A_c P_x`` followed by the y-block of ``Z' = U_z P'_z`` over α is exactly this map.

Prediction routes ``P_x`` to a cell of each partition by ``P_x`` alone (a query has no y), applies
the cells' maps and averages over the partitions: class scores (whose arg-max is the class and
whose clipped, normalised values are ``predict_proba``) or ``P̂_y``, mapped back by ``V_y``. Routes:
``"nearest"`` leaf centroid, ``"descend"`` (nearest child centroid level by level), and the paper's
``"reconstruction"`` (§8.2: the cell whose ``P'_x`` in ``Z' = U_z P'_z`` is closest to ``P_x``).

Passes over the rows in ``fit``: the input SVD (when ``n_components`` is set), one joint Gram
matrix (when ``α > 0``, the reconstruction route or an SVD of ``Y`` needs it), one to draw the
sample the cells are built on, and one accumulating every cell's sums; never more, whatever the
depth or the number of cells.
"""

from __future__ import annotations

import itertools
import math
import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .._contract import as_array_input
from .._validation import as_dask_2d, check_n_features, parse_seed
from ..errors import DataError, DimensionMismatchError, InvalidParameterError
from ..partition.base import sample_rows
from ..svd import SVDEmbedding, gram_matrix
from ..svd.gram import spectrum_from_gram
from ._cells import Hierarchy, build_kmeans_tree, build_pca_tree, concat, route
from ._maps import fit_maps, leaf_sums_block, node_totals

__all__ = ["AUTO_ROWS_PER_CELL", "CellMapBase"]

#: Largest per-cell sums (bytes) one task may accumulate.
SUMS_BUDGET = 1 << 30

#: ``n_cells="auto"`` gives one first-level cell per this many training rows.
AUTO_ROWS_PER_CELL = 800

#: Fewest rows per thread when numpy input is predicted on several threads.
_MIN_THREAD_ROWS = 2048

_CELLS = ("kmeans", "tree")
_ROUTES = ("nearest", "descend", "reconstruction")
_LOCAL = ("linear", "constant")


def _embed(x: np.ndarray, components: np.ndarray | None) -> np.ndarray:
    """``P_x`` of a block in float64: ``x @ componentsᵀ`` or ``x`` itself."""
    x64 = np.asarray(x, dtype=np.float64)
    return x64 if components is None else x64 @ components.T


def _embed_block(x: np.ndarray, components: np.ndarray | None) -> np.ndarray:
    return _embed(x, components)


def _apply_maps(a: np.ndarray, cells: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """``Σ_t a[i] @ maps[cells[i, t]]`` over the columns ``t`` of ``cells``, for every row.

    One sparse product gathers and sums each row's maps (``n × n_maps`` with one entry per
    partition), one batched product applies them: no per-cell loop, no ``(n, T, k+1, k_y)``
    gather.
    """
    n, t = cells.shape
    k1, ky = maps.shape[1], maps.shape[2]
    pick = sp.csr_matrix((np.ones(n * t), cells.ravel(), np.arange(0, n * t + 1, t)),
                         shape=(n, maps.shape[0]))
    summed = np.asarray(pick @ maps.reshape(maps.shape[0], k1 * ky)).reshape(n, k1, ky)
    return np.einsum("nj,njk->nk", a, summed)


def _reconstruction_cells(px: np.ndarray, a: np.ndarray, cands: np.ndarray, maps: np.ndarray,
                          alpha: float, vz: np.ndarray) -> np.ndarray:
    """§8.2: for each row, the candidate cell whose ``P'_x`` (the x-block of ``Z' = U_z P'_z``,
    ``P'_z`` the cell's prediction) is closest to ``P_x``."""
    kx = px.shape[1]
    best = np.full(px.shape[0], np.inf)
    cell = np.full(px.shape[0], cands[0], dtype=np.int64)
    for c in cands:
        z = np.hstack([px, alpha * (a @ maps[c])])
        err = np.sum(((z @ vz.T) @ vz[:, :kx] - px) ** 2, axis=1)
        better = err < best
        best[better], cell[better] = err[better], c
    return cell


def _scores_block(x: np.ndarray, components: np.ndarray | None, first_child: np.ndarray,
                  n_children: np.ndarray, centroid: np.ndarray, roots: np.ndarray,
                  target: np.ndarray, maps: np.ndarray, how: str, alpha: float,
                  vz: np.ndarray | None) -> np.ndarray:
    """Kernel: ``P̂_y`` of a row block, averaged over the partitions (float64, (n, ky))."""
    px = _embed(x, components)
    a = np.hstack([px, np.ones((px.shape[0], 1))])
    if how == "reconstruction":
        ends = np.append(roots[1:], first_child.size)
        cells = np.empty((px.shape[0], roots.size), dtype=np.int64)
        for t, (r, e) in enumerate(zip(roots, ends, strict=True)):
            leaves = r + np.flatnonzero(first_child[r:e] < 0)
            cells[:, t] = _reconstruction_cells(px, a, np.unique(target[leaves]), maps, alpha,
                                                vz)
    else:
        cells = target[route(px, first_child, n_children, centroid, roots, how)]
    return _apply_maps(a, cells, maps) / roots.size


def _threaded_rows(kernel: Any, x: np.ndarray, args: tuple[Any, ...]) -> np.ndarray:
    """``kernel(x, *args)`` over row blocks, one thread per core, one BLAS thread each.

    The kernels spend their time in BLAS and numpy loops that release the GIL, so threads over
    rows use every core; BLAS's own threads on top oversubscribe a busy machine
    (``benchmarks/README.md``, "Measurements behind choices in the code").
    """
    n_threads = max(1, min(os.cpu_count() or 1, x.shape[0] // _MIN_THREAD_ROWS))
    with threadpool_limits(limits=1, user_api="blas"):
        if n_threads == 1:
            return kernel(x, *args)  # type: ignore[no-any-return]
        bounds = np.linspace(0, x.shape[0], n_threads + 1).astype(int)
        with ThreadPoolExecutor(n_threads) as pool:
            parts = list(pool.map(lambda ab: kernel(x[ab[0]:ab[1]], *args),
                                  itertools.pairwise(bounds)))
    return np.concatenate(parts)


def _choose_k(s: np.ndarray, k: float) -> int:
    """Components for an int ``k`` or an energy fraction in (0, 1]."""
    if isinstance(k, numbers.Integral):
        return int(k)
    cum = np.cumsum(s**2) / max(float(np.sum(s**2)), 1e-300)
    return int(min(s.size, np.searchsorted(cum, float(k) - 1e-12) + 1))


def _partition_groups(leaves_per_tree: np.ndarray, kx: int, ky: int) -> list[tuple[int, int]]:
    """Consecutive tree ranges ``(first, stop)`` whose per-leaf sums fit :data:`SUMS_BUDGET`
    each (one pass over the data per range); refuses a single tree that does not fit."""
    per_leaf = 2 * (kx + 1) * (kx + 2 + ky) * 8
    worst = int(leaves_per_tree.max()) * per_leaf
    if worst > SUMS_BUDGET:
        raise InvalidParameterError(
            f"the per-cell sums of one partition would take {worst / 2**30:.1f} GiB per task "
            f"({int(leaves_per_tree.max())} cells, {kx} input and {ky} target components; the "
            f"limit is {SUMS_BUDGET / 2**30:.0f} GiB). Embed the targets (n_components_y=30), "
            "or use fewer cells (n_cells, max_depth).")
    groups, start, size = [], 0, 0
    for t, count in enumerate(leaves_per_tree.tolist()):
        if size + count * per_leaf > SUMS_BUDGET:
            groups.append((start, t))
            start, size = t, 0
        size += count * per_leaf
    groups.append((start, leaves_per_tree.size))
    return groups


def _is_int(v: Any, low: int) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= low


class CellMapBase(BaseEstimator):
    """Shared fit and scoring of :class:`CellMapClassifier` and :class:`CellMapRegressor`."""

    _is_classifier = False

    def __init__(self, n_components: float | None = None, *,
                 n_cells: int | str = "auto", max_depth: int = 4, branching: int = 2,
                 min_samples: int = 50, cells: str = "kmeans", routing: str = "nearest",
                 alpha: float | str = 0.0, n_components_joint: int | None = None,
                 shrinkage: float | str = "auto", local_model: str = "linear",
                 n_partitions: int = 8, prune: bool = False, val_fraction: float = 0.2,
                 max_samples: int | str = "auto", random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.n_cells = n_cells
        self.max_depth = max_depth
        self.branching = branching
        self.min_samples = min_samples
        self.cells = cells
        self.routing = routing
        self.alpha = alpha
        self.n_components_joint = n_components_joint
        self.shrinkage = shrinkage
        self.local_model = local_model
        self.n_partitions = n_partitions
        self.prune = prune
        self.val_fraction = val_fraction
        self.max_samples = max_samples
        self.random_state = random_state

    # -- checks -------------------------------------------------------------------------------

    def _check_params(self, n: int) -> int:
        """Validate the parameters; return the resolved number of first-level cells."""
        checks = [
            (self.cells in _CELLS, "cells", f"one of {_CELLS}"),
            (self.routing in _ROUTES, "routing", f"one of {_ROUTES}"),
            (self.local_model in _LOCAL, "local_model", f"one of {_LOCAL}"),
            (self.n_cells == "auto" or _is_int(self.n_cells, 1), "n_cells",
             "'auto' or an int >= 1"),
            # the saved model's schema bounds the depth (a loaded file cannot claim more);
            # 62 levels is far beyond any tree data can fill
            (_is_int(self.max_depth, 0) and self.max_depth <= 62, "max_depth",
             "an int in [0, 62]"),
            (_is_int(self.branching, 2), "branching", "an int >= 2"),
            (_is_int(self.min_samples, 1), "min_samples", "an int >= 1"),
            (_is_int(self.n_partitions, 1), "n_partitions", "an int >= 1"),
            (self.max_samples == "auto" or _is_int(self.max_samples, 2), "max_samples",
             "'auto' or an int >= 2"),
            (self.alpha == "balanced" or (isinstance(self.alpha, numbers.Real)
                                          and not isinstance(self.alpha, bool)
                                          and 0 <= float(self.alpha) < math.inf),
             "alpha", "'balanced' or a float >= 0"),
            (self.shrinkage == "auto" or (isinstance(self.shrinkage, numbers.Real)
                                          and not isinstance(self.shrinkage, bool)
                                          and 0 < float(self.shrinkage) < math.inf),
             "shrinkage", "'auto' or a float > 0"),
            (isinstance(self.val_fraction, numbers.Real) and 0 < self.val_fraction < 1,
             "val_fraction", "a float in (0, 1)"),
            (isinstance(self.prune, (bool, np.bool_)), "prune", "True or False"),
            (self.n_components_joint is None or _is_int(self.n_components_joint, 1),
             "n_components_joint", "None or an int >= 1"),
        ]
        for ok, name, want in checks:
            if not ok:
                raise InvalidParameterError(
                    f"{name} must be {want}; got {getattr(self, name)!r}.")
        if self.routing == "reconstruction" and self.alpha == 0:
            raise InvalidParameterError(
                "routing='reconstruction' compares x-blocks of the joint embedding, which needs "
                "alpha > 0; got alpha=0. Pass alpha='balanced' or another routing.")
        if self.n_cells == "auto":
            return max(1, round(n / AUTO_ROWS_PER_CELL))
        return min(int(self.n_cells), n)

    def _validate_fit(self, X: Any, y: Any) -> tuple[da.Array, da.Array]:
        """Type in, type out: numpy through scikit-learn's checks, dask without computing."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        X = as_array_input(X)
        if not isinstance(X, da.Array):
            X, y = validate_data(self, X, y, dtype=[np.float64, np.float32],
                                 multi_output=not self._is_classifier,
                                 y_numeric=not self._is_classifier)
            y = self._check_y_numpy(y)
        x = as_dask_2d(X, what="X")
        if isinstance(X, da.Array):
            self.n_features_in_ = int(x.shape[1])
        yd = y if isinstance(y, da.Array) else da.from_array(np.asarray(y))
        if yd.ndim not in (1, 2) or yd.shape[0] != x.shape[0] or (
                self._is_classifier and yd.ndim != 1):
            raise DimensionMismatchError(
                f"y must have one {'label' if self._is_classifier else 'target row'} per row "
                f"of X ({x.shape[0]}); got shape {yd.shape}.")
        return x, yd.rechunk({0: x.chunks[0]})

    def _check_y_numpy(self, y: np.ndarray) -> np.ndarray:
        return y

    # -- fit ----------------------------------------------------------------------------------

    def _leaf_sums(self, pxy: da.Array, kx: int, hier: Any, seed: int
                   ) -> tuple[np.ndarray, int]:
        """Per-leaf sums of ``[P_x, P_y]`` (see :func:`leaf_sums_block`), one pass per group of
        partitions whose sums fit :data:`SUMS_BUDGET` (one pass unless the cells are many and
        the embeddings wide)."""
        ky = int(pxy.shape[1]) - kx
        how = "nearest" if self.routing == "reconstruction" else self.routing
        # leaves are numbered tree by tree: the leaves of trees [t0, t1) are one slice
        bounds = np.searchsorted(hier.leaves, np.append(hier.roots, hier.parent.size))
        groups = _partition_groups(np.diff(bounds), kx, ky)
        out = []
        for t0, t1 in groups:
            lo, hi = int(bounds[t0]), int(bounds[t1])
            leaf_index = np.full(hier.parent.size, -1, dtype=np.int64)
            leaf_index[hier.leaves[lo:hi]] = np.arange(hi - lo)
            parts = da.map_blocks(
                leaf_sums_block, pxy, kx, hier.first_child, hier.n_children, hier.centroid,
                hier.roots, leaf_index, how, seed, float(self.val_fraction), (t0, t1),
                dtype=np.float64, new_axis=[2, 3, 4],
                chunks=((1,) * pxy.numblocks[0], (hi - lo,), (2,), (kx + 1,), (kx + 2 + ky,)))
            out.append(dask.compute(parts.sum(axis=0, split_every=4))[0])
        return (out[0] if len(out) == 1 else np.concatenate(out)), len(out)

    def _fit(self, X: Any, y: Any) -> CellMapBase:
        x, yd = self._validate_fit(X, y)
        n = int(x.shape[0])
        n_cells = self._check_params(n)
        seed = parse_seed(self.random_state)
        with threadpool_limits(limits=1, user_api="blas"):
            comps, passes = None, 0
            if self.n_components is not None:
                svd = SVDEmbedding(self.n_components, random_state=seed).fit(x)
                comps, passes = svd.components_, int(svd.n_passes_)
            kx = int(x.shape[1] if comps is None else comps.shape[0])
            px = da.map_blocks(_embed_block, x, comps, dtype=np.float64,
                               chunks=(x.chunks[0], (kx,)))
            y_raw = self._encode_targets(yd)
            py = self._joint(px, y_raw)
            hier = self._build_cells(px, py, n_cells, seed)
            # the joint Gram pass (when P_z or the targets' SVD needs it), the sample pass
            passes += int(self.alpha == "balanced" or self.alpha_ > 0
                          or self.y_components_ is not None) + 1
            pxy = da.concatenate([px, py], axis=1).rechunk({1: -1})
            sums, sum_passes = self._leaf_sums(pxy, kx, hier, seed)
        totals = node_totals(sums, hier.leaves, hier.parent, hier.depth)
        res = fit_maps(totals, hier.parent, hier.depth, hier.first_child,
                       shrinkage=self.shrinkage, constant=self.local_model == "constant",
                       prune=bool(self.prune))
        self.x_components_ = comps
        self.node_parent_ = hier.parent
        self.node_first_child_ = hier.first_child
        self.node_n_children_ = hier.n_children
        self.node_depth_ = hier.depth
        self.node_centroids_ = hier.centroid
        self.node_counts_ = np.round(totals[:, :, kx, kx].sum(axis=1)).astype(np.int64)
        self.partition_roots_ = hier.roots
        self.node_maps_ = res["maps"]
        self.node_target_ = res["target"]
        self.shrinkage_ = float(res["lam"])
        self.shrinkage_scores_ = np.array(sorted(res["grid"].items()))
        self.n_cells_ = int(np.unique(res["target"][hier.leaves]).size)
        self.n_targets_ = int(sums.shape[-1]) - kx - 2
        self.n_passes_ = passes + sum_passes
        return self

    def _encode_targets(self, y: da.Array) -> da.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def _y_basis(self, g_yy: np.ndarray, s_y: np.ndarray, n: float) -> np.ndarray | None:
        """Rows of ``V_y`` for ``P_y = Y V_yᵀ`` (None: ``P_y = Y``); the regressor overrides."""
        return None

    def _joint(self, px: da.Array, y_raw: da.Array) -> da.Array:
        """One pass for the joint statistics when needed: ``V_y``, ``α`` and ``V_z``. Returns
        the lazy ``P_y``."""
        kx, m = int(px.shape[1]), int(y_raw.shape[1])
        self.y_components_ = None
        self.alpha_ = 0.0 if self.alpha == "balanced" else float(self.alpha)
        self.joint_components_ = None
        needs_y_basis = getattr(self, "n_components_y", None) is not None and m > 1
        if self.alpha == 0 and not needs_y_basis:
            return y_raw
        (g,) = dask.compute(gram_matrix(da.concatenate([px, y_raw], axis=1).rechunk({1: -1})))
        gxx, gxy, gyy = g[:kx, :kx], g[:kx, kx:kx + m], g[kx:kx + m, kx:kx + m]
        vy = self._y_basis(gyy, g[kx:kx + m, -1], float(g[-1, -1])) if needs_y_basis else None
        if vy is not None:
            self.y_components_ = vy
            gxy, gyy = gxy @ vy.T, vy @ gyy @ vy.T
            y_raw = da.map_blocks(_embed_block, y_raw, vy, dtype=np.float64,
                                  chunks=(y_raw.chunks[0], (vy.shape[0],)))
        if self.alpha == "balanced":
            self.alpha_ = float(np.sqrt(np.trace(gxx) / max(float(np.trace(gyy)), 1e-300)))
        if self.alpha_ > 0:
            ky = gyy.shape[0]
            a = self.alpha_
            joint = np.block([[gxx, a * gxy], [a * gxy.T, a * a * gyy]])
            aug = np.zeros((kx + ky + 1, kx + ky + 1))
            aug[:-1, :-1], aug[-1, -1] = joint, g[-1, -1]
            kz = self.n_components_joint or kx + ky
            if kz > kx + ky:
                raise InvalidParameterError(
                    f"n_components_joint must be in [1, {kx + ky}] (n_components + targets); "
                    f"got {kz}.")
            self.joint_components_ = spectrum_from_gram(aug, center=False).components[:kz]
        return y_raw

    def _cell_space(self, sample: np.ndarray, kx: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample rows in the cell space (``P_z`` or ``P_x``) and the map back to ``P_x``."""
        if self.joint_components_ is None:
            return sample[:, :kx], np.eye(kx)
        vz = self.joint_components_
        z = np.hstack([sample[:, :kx], self.alpha_ * sample[:, kx:]]) @ vz.T
        return z, vz[:, :kx]

    def _build_cells(self, px: da.Array, py: da.Array, n_cells: int, seed: int) -> Hierarchy:
        """Draw the sample (one pass) and build ``n_partitions`` cell hierarchies on it."""
        n, kx = int(px.shape[0]), int(px.shape[1])
        depth = int(self.max_depth)
        if self.max_samples == "auto":
            per = min(n, max(10_000, 64 * n_cells * int(self.branching) ** depth))
        else:
            per = min(n, int(self.max_samples))
        total = min(n, per * int(self.n_partitions))
        both = da.concatenate([px, py], axis=1).rechunk({1: -1})
        sample = sample_rows(both, total, seed) if total < n else np.asarray(both.compute())
        z, to_route = self._cell_space(sample, kx)
        trees = []
        for t in range(int(self.n_partitions)):
            rng = np.random.default_rng([seed, t])
            rows = np.sort(rng.choice(total, per, replace=False)) if per < total else slice(None)
            zt = z[rows]
            scale = n / zt.shape[0]
            if self.cells == "tree":
                trees.append(build_pca_tree(zt, to_route, n_cells=n_cells, max_depth=depth,
                                            min_rows=self.min_samples, scale=scale,
                                            seed=seed + t))
            else:
                trees.append(build_kmeans_tree(zt, to_route, n_cells=n_cells, max_depth=depth,
                                               branching=int(self.branching),
                                               min_rows=self.min_samples, scale=scale,
                                               seed=seed + 1009 * t))
        return concat(trees)

    # -- predict ------------------------------------------------------------------------------

    def _scores(self, X: Any) -> Any:
        """``P̂_y`` of every row: numpy in, numpy out; dask in, lazy dask out."""
        check_is_fitted(self, "node_maps_")
        X = as_array_input(X)
        args = (self.x_components_, self.node_first_child_, self.node_n_children_,
                self.node_centroids_, self.partition_roots_, self.node_target_, self.node_maps_,
                self.routing, self.alpha_, self.joint_components_)
        if isinstance(X, da.Array):
            x = as_dask_2d(X, what="X")
            check_n_features(int(x.shape[1]), self.n_features_in_, owner=type(self).__name__)
            out: da.Array = da.map_blocks(
                _scores_block, x, *args, dtype=np.float64,
                chunks=(x.chunks[0], (self.n_targets_,)),
                name="veob-cellmap-" + da.core.tokenize(x.name, *args))
            return out
        x = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        if x.shape[0] == 0:
            raise DataError("X is empty: it needs at least one row.")
        return _threaded_rows(_scores_block, x, args)
