"""§8 supervised cell maps: kernels against direct computations, estimator properties."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from veob_dask import load, save
from veob_dask.errors import DimensionMismatchError, InvalidParameterError, NotFittedError
from veob_dask.supervised import CellMapClassifier, CellMapRegressor
from veob_dask.supervised._cells import build_kmeans_tree, concat, route
from veob_dask.supervised._maps import (
    _fold_of,
    _held_out_error,
    _prune,
    _solve_maps,
    _targets,
    leaf_sums_block,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


class CountingArray:
    """Array-like source that records every non-empty read (for laziness and pass counts)."""

    def __init__(self, a: np.ndarray) -> None:
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim
        self.reads: list[int] = []

    def __getitem__(self, key):
        out = self.a[key]
        if out.size:
            self.reads.append(key[0].start if isinstance(key, tuple) else 0)
        return out


def _tree(rng, n=600, d=3, n_trees=2):
    z = rng.normal(size=(n, d))
    trees = [build_kmeans_tree(z, np.eye(d), n_cells=4, max_depth=1, branching=2, min_rows=20,
                               scale=1.0, seed=t) for t in range(n_trees)]
    return z, concat(trees)


# -- kernels ------------------------------------------------------------------------------------

def test_leaf_sums_match_brute_force_and_do_not_depend_on_chunks(rng):
    z, h = _tree(rng)
    py = rng.normal(size=(z.shape[0], 2))
    leaf_index = np.full(h.parent.size, -1)
    leaf_index[h.leaves] = np.arange(h.leaves.size)
    args = (3, h.first_child, h.n_children, h.centroid, h.roots, leaf_index, "nearest", 5, 0.3)
    pxy = np.hstack([z, py])
    whole = leaf_sums_block(pxy, *args)[0]
    leaves = route(z, h.first_child, h.n_children, h.centroid, h.roots, "nearest")
    fold = _fold_of(np.arange(z.shape[0]), 5, 0.3)
    a = np.hstack([z, np.ones((z.shape[0], 1))])
    rhs = np.hstack([a, py, (py**2).sum(1, keepdims=True)])
    for leaf in h.leaves:
        for f in (0, 1):
            rows = (leaves == leaf).any(axis=1) & (fold == f)  # a leaf is in one tree only
            np.testing.assert_allclose(whole[leaf_index[leaf], f], a[rows].T @ rhs[rows],
                                       atol=1e-9)
    chunked = da.from_array(pxy, chunks=(97, -1))
    parts = da.map_blocks(leaf_sums_block, chunked, *args, dtype=float, new_axis=[2, 3, 4],
                          chunks=((1,) * chunked.numblocks[0], (h.leaves.size,), (2,), (4,), (7,)))
    np.testing.assert_allclose(parts.sum(axis=0).compute(), whole, atol=1e-9)
    assert 0.2 < fold.mean() < 0.4


def test_map_is_ridge_toward_the_parent(rng):
    # root (0) with children 1, 2; node 2 is empty
    x = rng.normal(size=(40, 2))
    a = np.hstack([x, np.ones((40, 1))])
    y = rng.normal(size=(40, 1))
    s_child = np.hstack([a.T @ a, a.T @ y, np.zeros((3, 1))])
    sums = np.stack([s_child, s_child, np.zeros_like(s_child)])
    parent, depth = np.array([-1, 0, 0]), np.array([0, 1, 1])
    lam = 7.0
    maps = _solve_maps(sums, parent, depth, lam, constant=False)
    # the stacked least-squares problem [a; sqrt(λ) L] A = [y; sqrt(λ) L A_p], LᵀL = G_p / n_p
    L = np.linalg.cholesky(a.T @ a / 40).T
    stacked = np.linalg.lstsq(np.vstack([a, np.sqrt(lam) * L]),
                              np.vstack([y, np.sqrt(lam) * L @ maps[0]]), rcond=None)[0]
    np.testing.assert_allclose(maps[1], stacked, atol=1e-10)
    np.testing.assert_allclose(maps[2], maps[0], atol=1e-10)  # an empty cell: the parent's map
    far = _solve_maps(sums, parent, depth, 1e9, constant=False)
    np.testing.assert_allclose(far[1], far[0], atol=1e-6)
    near = _solve_maps(sums, parent, depth, 1e-9, constant=False)
    np.testing.assert_allclose(near[1], np.linalg.lstsq(a, y, rcond=None)[0], atol=1e-6)
    const = _solve_maps(sums, parent, depth, lam, constant=True)
    assert np.all(const[:, :2] == 0)
    np.testing.assert_allclose(const[1, 2], (y.sum() + lam * y.mean()) / (40 + lam))


def test_held_out_error_is_the_squared_error(rng):
    a = np.hstack([rng.normal(size=(30, 3)), np.ones((30, 1))])
    y = rng.normal(size=(30, 2))
    m = rng.normal(size=(4, 2))
    s = np.hstack([a.T @ a, a.T @ y, np.zeros((4, 1))])
    s[-1, -1] = (y**2).sum()
    np.testing.assert_allclose(_held_out_error(s[None], m[None])[0], ((y - a @ m) ** 2).sum())


def test_pruning_keeps_only_subdivisions_that_beat_their_noise():
    # 0 -> (1, 2); 1 -> (3, 4); 2 -> (5, 6). Splitting 1 helps, splitting 2 does not; the
    # root's children win by 1.0 in total, which is below the root's noise margin of 2.0.
    parent = np.array([-1, 0, 0, 1, 1, 2, 2])
    depth = np.array([0, 1, 1, 2, 2, 2, 2])
    first = np.array([1, 3, 5, -1, -1, -1, -1])
    err = np.array([6.0, 6.0, 3.0, 1.0, 1.0, 2.0, 2.0])
    best, keep = _prune(err, np.zeros(7), parent, depth, first)
    assert keep.tolist() == [True, True, False, False, False, False, False]
    assert best[0] == 2.0 + 3.0
    assert _targets(keep, parent, depth).tolist() == [0, 1, 2, 3, 4, 2, 2]
    _, keep = _prune(err, np.array([2.0, 0, 0, 0, 0, 0, 0]), parent, depth, first)
    assert keep.tolist() == [False, True, False, False, False, False, False]
    assert _targets(keep, parent, depth).tolist() == [0, 0, 0, 0, 0, 0, 0]


# -- estimators ---------------------------------------------------------------------------------

def test_classifier_beats_one_global_map_on_digits(digits):
    X_tr, X_te, y_tr, y_te = digits
    one = CellMapClassifier(n_cells=1, max_depth=0, n_partitions=1).fit(X_tr, y_tr)
    clf = CellMapClassifier().fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > one.score(X_te, y_te) + 0.01
    assert clf.score(X_te, y_te) > 0.95
    proba = clf.predict_proba(X_te)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba.min() >= 0
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_te))


def test_more_cells_are_not_worse_where_one_linear_map_is_right(rng):
    X = rng.normal(size=(3000, 5))
    w = rng.normal(size=5)
    y = X @ w + 0.5 * rng.normal(size=3000)
    Xt = rng.normal(size=(2000, 5))
    yt = Xt @ w
    one = CellMapRegressor(n_cells=1, max_depth=0, n_partitions=1).fit(X, y).score(Xt, yt)
    many = CellMapRegressor(n_cells=100, max_depth=2, n_partitions=1, min_samples=5)
    many.fit(X, y)
    assert many.score(Xt, yt) > one - 0.002
    # without the pull toward the parent and without pruning the same cells overfit
    loose = CellMapRegressor(n_cells=100, max_depth=2, n_partitions=1, min_samples=5,
                             shrinkage=1e-6, prune=False).fit(X, y)
    assert loose.score(Xt, yt) < one - 0.01


def test_regressor_cells_follow_a_kinked_function(rng):
    X = rng.uniform(-3, 3, size=(4000, 2))
    y = np.abs(X[:, 0]) + X[:, 1]
    Xt = rng.uniform(-3, 3, size=(1000, 2))
    yt = np.abs(Xt[:, 0]) + Xt[:, 1]
    one = CellMapRegressor(n_cells=1, max_depth=0, n_partitions=1).fit(X, y).score(Xt, yt)
    cells = CellMapRegressor(n_partitions=2).fit(X, y)
    assert cells.n_cells_ > 2
    assert cells.score(Xt, yt) > 0.99 > one
    assert cells.predict(Xt).shape == (1000,)


def test_multi_output_targets_through_their_svd(rng):
    X = rng.normal(size=(2000, 6))
    B = rng.normal(size=(6, 3)) @ rng.normal(size=(3, 20))  # rank-3 targets
    Y = X @ B + 0.01 * rng.normal(size=(2000, 20))
    reg = CellMapRegressor(n_components_y=3, n_partitions=1).fit(X, Y)
    vy = reg.y_components_
    assert vy.shape == (3, 20) and reg.n_targets_ == 3
    np.testing.assert_allclose(vy @ vy.T, np.eye(3), atol=1e-10)
    Xt = rng.normal(size=(500, 6))
    assert reg.predict(Xt).shape == (500, 20)
    assert reg.score(Xt, Xt @ B) > 0.999
    full = CellMapRegressor(n_partitions=1).fit(X, Y)
    assert full.y_components_ is None and full.n_targets_ == 20


def test_numpy_in_numpy_out_dask_in_lazy_dask_out(digits):
    X_tr, X_te, y_tr, _ = digits
    clf = CellMapClassifier(n_partitions=2).fit(X_tr, y_tr)
    src = CountingArray(X_te)
    xd = da.from_array(src, chunks=(100, -1), asarray=True, lock=False)
    src.reads.clear()
    pred, proba = clf.predict(xd), clf.predict_proba(xd)
    assert isinstance(pred, da.Array) and pred.chunks[0] == xd.chunks[0]
    assert proba.chunks == (xd.chunks[0], (10,))
    assert src.reads == []  # building the graphs read nothing
    p, q = dask.compute(pred, proba)
    assert sorted(src.reads) == sorted(set(src.reads))  # each chunk once, shared by both
    assert len(src.reads) == xd.numblocks[0]
    np.testing.assert_array_equal(p, clf.predict(X_te))
    np.testing.assert_allclose(q, clf.predict_proba(X_te))
    assert isinstance(clf.predict(X_te), np.ndarray)


@pytest.mark.parametrize(("alpha", "reads_per_chunk"), [(0.0, 3), ("balanced", 4)])
def test_fit_reads_each_chunk_a_fixed_number_of_times(digits, alpha, reads_per_chunk):
    X_tr, _, y_tr, _ = digits
    counts = []
    for depth in (0, 3):
        src = CountingArray(X_tr)
        xd = da.from_array(src, chunks=(300, -1), asarray=True, lock=False)
        src.reads.clear()
        CellMapClassifier(20, max_depth=depth, alpha=alpha, n_partitions=2).fit(xd, y_tr)
        counts.append(len(src.reads) / xd.numblocks[0])
    # input SVD, (joint Gram,) sample, per-cell sums: whatever the depth
    assert counts == [reads_per_chunk, reads_per_chunk]


def test_dask_fit_matches_numpy_fit(digits):
    X_tr, X_te, y_tr, _ = digits
    a = CellMapClassifier(n_partitions=2).fit(X_tr, y_tr)
    b = CellMapClassifier(n_partitions=2).fit(da.from_array(X_tr, chunks=(250, 32)),
                                              da.from_array(y_tr, chunks=300))
    np.testing.assert_allclose(a.node_maps_, b.node_maps_, atol=1e-8)
    np.testing.assert_array_equal(a.predict(X_te), b.predict(X_te))
    c = CellMapClassifier(n_partitions=2).fit(X_tr, y_tr)
    np.testing.assert_array_equal(a.node_maps_, c.node_maps_)


@pytest.mark.parametrize("params", [
    {"routing": "descend"}, {"cells": "tree"}, {"local_model": "constant"},
    {"alpha": "balanced", "routing": "reconstruction", "n_components_joint": 30},
    {"alpha": "balanced"}, {"n_components": 20, "shrinkage": 10.0, "prune": False},
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_variants_fit_and_predict(digits, params):
    X_tr, X_te, y_tr, y_te = digits
    clf = CellMapClassifier(n_partitions=2, **params).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > 0.75  # chance is 0.1; the measured ranking is in benchmarks/
    if params.get("alpha") == "balanced":
        assert clf.alpha_ > 0 and clf.joint_components_ is not None


def test_save_load_round_trip(digits, tmp_path):
    X_tr, X_te, y_tr, _ = digits
    clf = CellMapClassifier(n_partitions=2).fit(X_tr, y_tr)
    save(clf, tmp_path / "c.zarr")
    back = load(tmp_path / "c.zarr")
    np.testing.assert_array_equal(back.predict(X_te), clf.predict(X_te))
    np.testing.assert_allclose(back.predict_proba(X_te), clf.predict_proba(X_te))
    reg = CellMapRegressor(n_components_y=2, n_partitions=1).fit(X_tr, X_tr[:, :5])
    save(reg, tmp_path / "r.zarr")
    np.testing.assert_allclose(load(tmp_path / "r.zarr").predict(X_te), reg.predict(X_te))


def test_pipeline_after_spectral_transform_and_svd():
    from sklearn.pipeline import make_pipeline

    from veob_dask import SpectralTransform2D, SVDEmbedding

    digits = load_digits()
    imgs, y = digits.images, digits.target
    pipe = make_pipeline(SpectralTransform2D(), SVDEmbedding(20),
                         CellMapClassifier(n_partitions=2))
    pipe.fit(imgs[:1400], y[:1400])
    assert pipe.score(imgs[1400:], y[1400:]) > 0.9
    lazy = pipe.predict(da.from_array(imgs[1400:], chunks=(100, 8, 8)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), pipe.predict(imgs[1400:]))


def test_dask_ml_wrappers_and_model_selection(digits):
    from dask_ml.model_selection import GridSearchCV
    from dask_ml.wrappers import ParallelPostFit

    X_tr, X_te, y_tr, y_te = digits
    wrapped = ParallelPostFit(CellMapClassifier(n_partitions=1)).fit(X_tr, y_tr)
    pred = wrapped.predict(da.from_array(X_te, chunks=(150, -1)))
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), wrapped.estimator.predict(X_te))
    search = GridSearchCV(CellMapClassifier(n_partitions=1), {"n_cells": [1, 4]}, cv=2)
    search.fit(X_tr, y_tr)
    assert search.best_params_["n_cells"] in (1, 4)
    assert search.score(X_te, y_te) > 0.9


def test_not_fitted_and_errors(digits):
    X_tr, _, y_tr, _ = digits
    with pytest.raises(NotFittedError):
        CellMapClassifier().predict(X_tr)
    with pytest.raises(DimensionMismatchError, match="one label per row"):
        CellMapClassifier().fit(da.from_array(X_tr), da.from_array(y_tr[:10]))
    with pytest.raises(InvalidParameterError, match="at least 2 classes"):
        CellMapClassifier().fit(X_tr, np.zeros(len(X_tr)))
    clf = CellMapClassifier(n_partitions=1).fit(X_tr, y_tr)
    with pytest.raises(ValueError, match="is expecting 64 features"):
        clf.predict(X_tr[:, :3])
    with pytest.raises(DimensionMismatchError, match="is expecting 64 features"):
        clf.predict(da.from_array(X_tr[:, :3]))


@pytest.mark.parametrize(("params", "match"), [
    ({"routing": "magic"}, "routing must be one of"),
    ({"cells": "grid"}, "cells must be one of"),
    ({"n_cells": 0}, "n_cells must be 'auto' or an int >= 1; got 0"),
    ({"max_depth": -1}, "max_depth must be an int in"),
    ({"max_depth": 63}, "max_depth must be an int in"),
    ({"branching": 1}, "branching must be an int >= 2"),
    ({"n_partitions": 0}, "n_partitions must be an int >= 1"),
    ({"alpha": -1.0}, "alpha must be 'balanced' or a float >= 0"),
    ({"shrinkage": 0.0}, "shrinkage must be 'auto' or a float > 0"),
    ({"val_fraction": 1.0}, "val_fraction must be a float in"),
    ({"local_model": "cubic"}, "local_model must be one of"),
    ({"routing": "reconstruction"}, "needs alpha > 0; got alpha=0"),
    ({"alpha": 1.0, "n_components_joint": 99}, r"n_components_joint must be in \[1, 6\]"),
])
def test_parameter_contract(rng, params, match):
    X = rng.normal(size=(60, 4))
    with pytest.raises(InvalidParameterError, match=match):
        CellMapRegressor(**params).fit(X, X[:, :2])


def test_regressor_n_components_y_contract(rng):
    X = rng.normal(size=(60, 4))
    with pytest.raises(InvalidParameterError, match=r"n_components_y must be None, an int in"):
        CellMapRegressor(n_components_y=9).fit(X, X[:, :3])


def test_oversized_cell_sums_are_refused_before_the_pass(rng, monkeypatch):
    import veob_dask.supervised._base as base

    monkeypatch.setattr(base, "SUMS_BUDGET", 10_000)
    X = rng.normal(size=(400, 4))
    with pytest.raises(InvalidParameterError,
                       match=r"sums of one partition would take .*n_components_y"):
        CellMapRegressor(n_cells=8).fit(X, rng.normal(size=(400, 30)))


def test_partitions_over_the_budget_are_summed_in_more_passes(digits, monkeypatch):
    import veob_dask.supervised._base as base

    X_tr, X_te, y_tr, _ = digits
    est = CellMapClassifier(20, n_cells=8, max_depth=1, n_partitions=3)
    whole = est.fit(X_tr, y_tr).predict_proba(X_te)
    per_leaf = 2 * 21 * (21 + 1 + 10) * 8
    # room for the leaves of one partition only: three passes, the same sums
    monkeypatch.setattr(base, "SUMS_BUDGET", per_leaf * (est.n_cells_ // 3 + 2))
    src = CountingArray(X_tr)
    xd = da.from_array(src, chunks=(200, -1), asarray=True, lock=False)
    split = est.fit(xd, y_tr)
    # the SVD's and the cells' passes, then one pass of sums per partition instead of one
    assert len(src.reads) == (2 + 3) * xd.numblocks[0]
    np.testing.assert_allclose(split.predict_proba(X_te), whole, atol=1e-10)
