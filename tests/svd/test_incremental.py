"""Brand update / merge kernels, the merge tree and IncrementalSVDEmbedding."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from veob_dask import load, save
from veob_dask._reduce import tree_depth
from veob_dask.errors import (
    DataError,
    DimensionMismatchError,
    InvalidParameterError,
    NotFittedError,
    NumericalWarning,
)
from veob_dask.io import write_array
from veob_dask.svd import SVDEmbedding
from veob_dask.svd._signs import flip_signs
from veob_dask.svd._tree import auto_chunks_per_leaf, merge_tree, tree_summary
from veob_dask.svd.incremental import (
    SVDSummary,
    brand_update,
    merge,
    merge_many,
    reorthogonalize,
    summarize_block,
    truncate,
)
from veob_dask.svd.incremental_embedding import IncrementalSVDEmbedding
from veob_dask.svd.incremental_solver import working_rank


def exact(x: np.ndarray, center: bool = False) -> tuple[np.ndarray, np.ndarray]:
    if center:
        x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return s, flip_signs(vt)


def separated(rng: np.random.Generator, n: int, d: int, ratio: float = 0.85) -> np.ndarray:
    """n x d matrix with singular values 10·ratio^i (well separated) and random bases."""
    u, _ = np.linalg.qr(rng.normal(size=(n, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (u * (10.0 * ratio ** np.arange(d))) @ v.T


def assert_summary_matches(summ: SVDSummary, s: np.ndarray, vt: np.ndarray, k: int,
                           tol: float = 1e-8) -> None:
    np.testing.assert_allclose(summ.singular_values[:k], s[:k], rtol=tol)
    np.testing.assert_allclose(summ.components[:k], vt[:k], atol=tol * 10)


# -- kernels -------------------------------------------------------------------------------------

@pytest.mark.parametrize("solver", ["gram", "randomized"])
def test_summarize_block_matches_lapack(rng, solver):
    x = separated(rng, 300, 20)
    summ = summarize_block(x, max_rank=8, chunk_solver=solver, n_iter=4)
    s, _ = exact(x)
    assert summ.rank == 8 and summ.n_samples == 300
    tol = 1e-8 if solver == "gram" else 1e-4
    np.testing.assert_allclose(summ.singular_values, s[:8], rtol=tol)
    assert summ.energy == pytest.approx(float((x**2).sum()), rel=1e-12)


def test_summarize_wide_block_uses_small_side(rng):
    x = separated(rng, 40, 40)[:15]  # 15 rows, 40 features
    s, vt = exact(x)
    summ = summarize_block(x, max_rank=40)
    assert summ.rank == 15
    assert_summary_matches(summ, s, vt, 15, tol=1e-7)


def test_brand_row_updates_reproduce_the_svd(rng):
    x = separated(rng, 240, 16)
    state = None
    for i in range(0, 240, 7):  # batches of 7 rows <= working rank: the literal Brand update
        state = brand_update(state, x[i:i + 7], max_rank=16)
    s, vt = exact(x)
    assert state.n_samples == 240 and state.n_batches == len(range(0, 240, 7))
    assert_summary_matches(state, s, vt, 16)
    gram = state.components @ state.components.T
    assert np.abs(gram - np.eye(16)).max() < 1e-12


def test_merge_is_exact_without_truncation_and_centers(rng):
    x = separated(rng, 500, 12) + 3.0  # a large mean: centering matters
    parts = [summarize_block(x[i:i + 60], max_rank=12, center=True) for i in range(0, 500, 60)]
    summ = merge_many(parts, max_rank=None)
    s, vt = exact(x, center=True)
    assert_summary_matches(summ, s, vt, 12)
    np.testing.assert_allclose(summ.mean, x.mean(axis=0), atol=1e-12)
    assert summ.energy == pytest.approx(float(((x - x.mean(0)) ** 2).sum()), rel=1e-10)


def test_error_shrinks_as_oversampling_grows(low_rank):
    s, _ = exact(low_rank)
    k, errs = 6, []
    for p in (0, 3, 6):
        parts = [summarize_block(low_rank[i:i + 100], max_rank=k + p) for i in range(0, 1200, 100)]
        summ = merge_many(parts, max_rank=k + p)
        errs.append(np.abs(summ.singular_values[:k] / s[:k] - 1).max())
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-8  # k + p covers the whole signal of the fixture


def test_decay_equals_weighted_rows(rng):
    x = separated(rng, 300, 10)
    decay, state = 0.8, None
    for i in range(0, 300, 50):
        state = brand_update(state, x[i:i + 50], max_rank=10, decay=decay)
    weights = np.repeat(decay ** np.arange(5, -1, -1), 50)
    s, vt = exact(x * weights[:, None])
    assert_summary_matches(state, s, vt, 10)
    # the same decay through a tree of merges (per-chunk exponents keep it associative)
    tree = tree_summary(da.from_array(x, chunks=50), max_rank=10, decay=decay, split_every=2)
    assert_summary_matches(tree.compute(), s, vt, 10)


def test_reorthogonalize_keeps_the_gram_matrix(rng):
    x = separated(rng, 100, 10)
    summ = summarize_block(x, max_rank=10)
    skewed = SVDSummary(summ.singular_values, summ.components + 1e-7 * rng.normal(size=(10, 10)),
                        100, 1, 100.0, summ.energy, None, 7)
    fixed = reorthogonalize(skewed)
    assert fixed.n_merges == 0
    assert np.abs(fixed.components @ fixed.components.T - np.eye(10)).max() < 1e-13
    g_before = skewed.components.T @ (skewed.singular_values[:, None] ** 2 * skewed.components)
    g_after = fixed.components.T @ (fixed.singular_values[:, None] ** 2 * fixed.components)
    np.testing.assert_allclose(g_after, g_before, atol=1e-9)


def test_many_merges_stay_orthonormal(rng):
    x = rng.normal(size=(3000, 30))
    parts = [summarize_block(x[i:i + 25], max_rank=10) for i in range(0, 3000, 25)]
    summ = parts[0]
    for part in parts[1:]:
        summ = merge(summ, part, max_rank=10, reorth_every=10**6)  # never re-orthogonalised
    assert summ.n_merges == len(parts) - 1
    assert np.abs(summ.components @ summ.components.T - np.eye(10)).max() < 1e-10


def test_signs_follow_the_convention(rng):
    summ = merge_many([summarize_block(rng.normal(size=(50, 9)), max_rank=5) for _ in range(3)],
                      max_rank=5)
    idx = np.argmax(np.abs(summ.components), axis=1)
    assert np.all(summ.components[np.arange(5), idx] > 0)


def test_sparse_block_equals_dense(rng):
    x = sp.random(200, 30, density=0.2, random_state=1, format="csr")
    a = summarize_block(x, max_rank=30, center=True)
    b = summarize_block(x.toarray(), max_rank=30, center=True)
    np.testing.assert_allclose(a.singular_values, b.singular_values, rtol=1e-10)
    np.testing.assert_allclose(a.components[:10], b.components[:10], atol=1e-8)


def test_truncate_keeps_counts(rng):
    summ = summarize_block(rng.normal(size=(40, 8)), max_rank=8)
    cut = truncate(summ, 3)
    assert cut.rank == 3 and cut.energy == summ.energy and cut.n_samples == 40


# -- merge-order independence (property) ---------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(40, 240), d=st.integers(2, 12),
       chunk=st.integers(5, 60), center=st.booleans())
def test_tree_shape_does_not_matter_without_truncation(seed, n, d, chunk, center):
    rng = np.random.default_rng(seed)
    x = separated(rng, n, d, ratio=0.7) + rng.normal(size=d)
    xd = da.from_array(x, chunks=(chunk, d))
    n_chunks = xd.numblocks[0]
    results = [
        tree_summary(xd, max_rank=d, center=center, split_every=f,
                     chunks_per_leaf=g).compute(scheduler="sync")
        # binary tree, ternary tree, one left fold; then chunks grouped in leaves
        for f, g in ((2, 1), (3, 1), (max(2, n_chunks), 1), (2, 3))
    ]
    s, vt = exact(x, center=center)
    for res in results:
        np.testing.assert_allclose(res.singular_values, s[:res.rank], rtol=1e-6)
        np.testing.assert_allclose(res.components, vt[:res.rank], atol=1e-6)
        assert res.n_samples == n and res.n_batches == n_chunks
    for res in results[1:]:
        np.testing.assert_allclose(res.singular_values, results[0].singular_values, rtol=1e-6)
        np.testing.assert_allclose(res.components, results[0].components, atol=1e-6)


def test_tree_depth_and_fan_in(rng):
    x = da.from_array(rng.normal(size=(90, 6)), chunks=(10, 6))  # 9 chunks
    assert tree_depth(9, 2) == 4 and tree_depth(9, 3) == 2 and tree_depth(1, 2) == 0
    for f in (2, 3):
        graph = dict(tree_summary(x, max_rank=4, split_every=f,
                                  chunks_per_leaf=1).__dask_graph__())
        merges = [k for k in graph if str(k).startswith("veob-isvd-merge")]
        levels = {int(str(k).rsplit("-", 2)[-2]) for k in merges}
        assert len(levels) == tree_depth(9, f)
        deps = dask.core.get_dependencies
        assert all(len(deps(graph, k)) <= f for k in merges)


def test_chunks_per_leaf(rng):
    x = da.from_array(rng.normal(size=(400, 20)), chunks=(40, 20))  # 10 chunks
    assert auto_chunks_per_leaf(x) == 4  # 8 * 20 rows per leaf
    assert auto_chunks_per_leaf(x, decay=0.9) == 1
    assert auto_chunks_per_leaf(x, chunk_solver="randomized") == 1
    wide = da.zeros((60000, 4096), chunks=(1000, 4096), dtype=np.float32)  # 16 MiB chunks
    assert auto_chunks_per_leaf(wide) == 4  # capped at 64 MiB of input per leaf, not 33
    graph = dict(tree_summary(x, max_rank=5).__dask_graph__())
    assert len([k for k in graph if str(k).startswith("veob-isvd-leaf")]) == 3
    with pytest.raises(InvalidParameterError, match="chunks_per_leaf"):
        tree_summary(x, max_rank=5, chunks_per_leaf=0)
    with pytest.raises(InvalidParameterError, match="decay"):
        tree_summary(x, max_rank=5, chunks_per_leaf=2, decay=0.5)


def test_merge_tree_rejects_bad_fan_in():
    with pytest.raises(InvalidParameterError, match="split_every"):
        merge_tree([dask.delayed(1)], max_rank=2, split_every=1)


def test_merge_rejects_mismatched_summaries(rng):
    a = summarize_block(rng.normal(size=(20, 5)), max_rank=3)
    with pytest.raises(InvalidParameterError, match="features"):
        merge(a, summarize_block(rng.normal(size=(20, 6)), max_rank=3), max_rank=3)
    with pytest.raises(InvalidParameterError, match="centered"):
        merge(a, summarize_block(rng.normal(size=(20, 5)), max_rank=3, center=True), max_rank=3)


# -- estimator -----------------------------------------------------------------------------------

def test_fit_matches_exact_on_decaying_spectrum(low_rank):
    est = IncrementalSVDEmbedding(n_components=6).fit(da.from_array(low_rank, chunks=(100, 40)))
    s, vt = exact(low_rank)
    assert est.working_rank_ == 12 and est.n_components_ == 6
    np.testing.assert_allclose(est.singular_values_, s[:6], rtol=1e-8)
    np.testing.assert_allclose(est.components_, vt[:6], atol=1e-8)
    np.testing.assert_allclose(est.explained_energy_ratio_, s[:6] ** 2 / (s**2).sum(), rtol=1e-8)
    assert est.n_samples_seen_ == 1200 and est.n_batches_seen_ == 12


def test_partial_fit_equals_fit(rng):
    x = separated(rng, 400, 10)
    fitted = IncrementalSVDEmbedding(n_components=4, n_oversamples=6).fit(
        da.from_array(x, chunks=(50, 10)))
    streamed = IncrementalSVDEmbedding(n_components=4, n_oversamples=6)
    for i in range(0, 400, 50):
        streamed.partial_fit(x[i:i + 50])
    np.testing.assert_allclose(streamed.singular_values_, fitted.singular_values_, rtol=1e-9)
    np.testing.assert_allclose(streamed.components_, fitted.components_, atol=1e-9)
    assert streamed.n_samples_seen_ == fitted.n_samples_seen_ == 400


def test_fraction_n_components(low_rank):
    est = IncrementalSVDEmbedding(n_components=0.99, max_components=20).fit(low_rank)
    s, _ = exact(low_rank)
    k = int(np.searchsorted(np.cumsum(s**2) / (s**2).sum(), 0.99) + 1)
    assert est.n_components_ == k and est.working_rank_ == 20


def test_save_load_extend_without_the_old_data(tmp_path, rng):
    x = separated(rng, 600, 12) + 1.0
    old = tmp_path / "old"
    write_array(x[:400], old, chunk_rows=100)
    est = IncrementalSVDEmbedding(n_components=5, n_oversamples=7, center=True).fit(str(old))
    save(est, tmp_path / "model")
    import shutil

    shutil.rmtree(old)  # the old data is gone: extending must not need it
    back = load(tmp_path / "model")
    assert isinstance(back, IncrementalSVDEmbedding)
    np.testing.assert_array_equal(back.components_, est.components_)
    new = tmp_path / "new"
    write_array(x[400:], new, chunk_rows=100)
    back.partial_fit(str(new))
    s, vt = exact(x, center=True)
    assert back.n_samples_seen_ == 600 and back.n_batches_seen_ == 6
    np.testing.assert_allclose(back.singular_values_, s[:5], rtol=1e-8)
    np.testing.assert_allclose(back.components_, vt[:5], atol=1e-8)
    np.testing.assert_allclose(back.mean_, x.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(back.transform(x[:3]), (x[:3] - x.mean(0)) @ vt[:5].T, atol=1e-7)


def test_transform_is_lazy_for_dask_and_inverts(low_rank):
    est = IncrementalSVDEmbedding(n_components=12).fit(low_rank)
    xd = da.from_array(low_rank, chunks=(300, 40))
    z = est.transform(xd)
    assert isinstance(z, da.Array) and z.chunks[0] == xd.chunks[0]
    back = est.inverse_transform(z.compute())
    np.testing.assert_allclose(back, low_rank, atol=1e-2)  # the fixture's tail is 1 % noise


def test_svdembedding_incremental_solver(low_rank):
    a = SVDEmbedding(n_components=6, solver="incremental", n_oversamples=6).fit(
        da.from_array(low_rank, chunks=(200, 40)))
    b = SVDEmbedding(n_components=6, solver="gram").fit(low_rank)
    assert a.solver_ == "incremental"
    np.testing.assert_allclose(a.singular_values_, b.singular_values_, rtol=1e-8)


@pytest.mark.parametrize("params, match", [
    ({"decay": 0.0}, "decay"), ({"decay": 1.5}, "decay"), ({"split_every": 1}, "split_every"),
    ({"n_oversamples": -1}, "n_oversamples"), ({"chunk_solver": "qr"}, "chunk_solver"),
    ({"reorth_every": 0}, "reorth_every"), ({"n_components": 0}, "n_components"),
    ({"center": "yes"}, "center"), ({"chunks_per_leaf": 0}, "chunks_per_leaf"),
])
def test_bad_parameters(params, match, rng):
    with pytest.raises(InvalidParameterError, match=match):
        IncrementalSVDEmbedding(**{"n_components": 2, **params}).fit(rng.normal(size=(20, 5)))


def test_bad_input(rng):
    est = IncrementalSVDEmbedding(n_components=2)
    with pytest.raises(NotFittedError):
        est.transform(rng.normal(size=(3, 5)))
    bad = rng.normal(size=(20, 5))
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        est.partial_fit(bad)
    with pytest.raises(DataError, match="NaN"):
        est.fit(da.from_array(bad, chunks=5))
    with pytest.raises(InvalidParameterError, match="rank bound"):
        IncrementalSVDEmbedding(n_components=5).fit(rng.normal(size=(3, 5)))
    est.partial_fit(rng.normal(size=(20, 5)))
    with pytest.raises(DimensionMismatchError):
        est.partial_fit(rng.normal(size=(20, 6)))
    est.set_params(center=True)
    with pytest.raises(InvalidParameterError, match="center"):
        est.partial_fit(rng.normal(size=(20, 5)))


def test_working_rank_rules():
    assert working_rank(10, 784, None, 256) == 20
    assert working_rank(10, 784, 0, 256) == 10
    assert working_rank(10, 15, None, 256) == 15
    assert working_rank(0.9, 784, None, 64) == 64


@pytest.mark.cluster
def test_fit_on_process_cluster_equals_sync(process_client, low_rank):
    xd = da.from_array(low_rank, chunks=(150, 40))
    with dask.config.set(scheduler=None):
        on_cluster = IncrementalSVDEmbedding(n_components=6).fit(xd)
    local = IncrementalSVDEmbedding(n_components=6).fit(xd)
    np.testing.assert_allclose(on_cluster.components_, local.components_, atol=1e-12)


# -- honest singular values: Rayleigh–Ritz refinement and the truncation warning ----------------

def _subspace_values(x: np.ndarray, comps: np.ndarray, center: bool = False) -> np.ndarray:
    """Singular values of the data restricted to the span of ``comps`` (numpy, float64)."""
    xf = x.astype(np.float64)
    if center:
        xf = xf - xf.mean(axis=0)
    return np.linalg.svd(xf @ comps.T, compute_uv=False)


@pytest.mark.parametrize("center", [False, True])
def test_flat_spectrum_values_are_right_for_the_subspace_and_warned(center):
    # issue 11: on white noise the merged estimates were far too low (σ₁ 448.6 for 712.2).
    x = np.random.default_rng(3).normal(size=(60_000, 30))
    xd = da.from_array(x, chunks=(6000, -1))
    with pytest.warns(NumericalWarning, match=r"discarded \d+% of the energy .* exact for the "
                      r"subspace found .* at most √\(σᵢ² \+ "):
        est = IncrementalSVDEmbedding(n_components=5, center=center).fit(xd)
    truth = _subspace_values(x, est.components_, center)
    np.testing.assert_allclose(est.singular_values_, truth, rtol=1e-9)
    total = ((x - x.mean(axis=0)) ** 2).sum() if center else (x**2).sum()
    np.testing.assert_allclose(est.explained_energy_ratio_, truth**2 / total, rtol=1e-9)
    assert "Rayleigh–Ritz" in est.solver_reason_
    exact = np.linalg.svd(x - x.mean(axis=0) if center else x, compute_uv=False)
    assert est.singular_values_[0] > 0.99 * exact[0]
    # without the extra pass the values are the (low) merged estimates, and the warning says so
    with pytest.warns(NumericalWarning, match="underestimates"):
        one = IncrementalSVDEmbedding(n_components=5, center=center, refine=False).fit(xd)
    assert np.all(one.singular_values_ < 0.9 * _subspace_values(x, one.components_, center))


def test_int64_values_are_right_for_the_subspace(rng):
    x = (2**62 + rng.integers(-2**46, 2**46, size=(3000, 20))).astype(np.int64)
    est = IncrementalSVDEmbedding(n_components=4).fit(da.from_array(x, chunks=(500, -1)))
    np.testing.assert_allclose(est.singular_values_, _subspace_values(x, est.components_),
                               rtol=1e-6)


def test_refined_decayed_fit_matches_weighted_rows(rng):
    x = separated(rng, 400, 12)
    est = IncrementalSVDEmbedding(n_components=3, n_oversamples=2, decay=0.7).fit(
        da.from_array(x, chunks=(100, -1)))
    weights = np.repeat(0.7 ** np.arange(3, -1, -1), 100)[:, None]
    np.testing.assert_allclose(est.singular_values_,
                               _subspace_values(x * weights, est.components_), rtol=1e-9)


def test_no_warning_when_truncation_drops_little(low_rank):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = IncrementalSVDEmbedding(n_components=6).fit(low_rank)
    assert est.total_energy_ > 0


def test_random_state_none_and_generators_work(rng):
    x = rng.normal(size=(300, 8))
    for seed in (None, np.random.default_rng(1)):
        est = IncrementalSVDEmbedding(n_components=3, chunk_solver="randomized",
                                      random_state=seed).fit(x)
        assert est.components_.shape == (3, 8)
    est = IncrementalSVDEmbedding(n_components=3, random_state=None).partial_fit(x)
    assert est.n_samples_seen_ == 300


@pytest.mark.parametrize("params, match", [
    ({"refine": "yes"}, "refine"), ({"random_state": -1}, "random_state"),
    ({"random_state": "seed"}, "random_state"), ({"max_components": 0}, "max_components"),
    ({"n_iter": -1}, "n_iter"), ({"n_oversamples": 1.5}, "n_oversamples"),
])
def test_more_bad_parameters(params, match, rng):
    with pytest.raises(InvalidParameterError, match=match):
        IncrementalSVDEmbedding(**{"n_components": 2, **params}).fit(rng.normal(size=(20, 5)))


def test_refine_parameter_round_trips(tmp_path, rng):
    est = IncrementalSVDEmbedding(n_components=2, refine=False, random_state=None).fit(
        rng.normal(size=(60, 5)))
    save(est, tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.get_params()["refine"] is False and back.get_params()["random_state"] is None
    np.testing.assert_array_equal(back.singular_values_, est.singular_values_)
