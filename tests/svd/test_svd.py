"""SVDEmbedding with the exact Gram and TSQR solvers against numpy."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.decomposition import PCA

from veob_dask import SVDEmbedding
from veob_dask.errors import (
    DataError,
    DimensionMismatchError,
    InvalidParameterError,
    StoreFormatError,
)
from veob_dask.svd._signs import flip_signs


def _forbid(*args, **kwargs):
    raise AssertionError("a graph was computed where only building was expected")


def _angle_deg(a, b):
    qa, _ = np.linalg.qr(a.T)
    qb, _ = np.linalg.qr(b.T)
    cos = np.linalg.svd(qa.T @ qb, compute_uv=False).min()
    return np.degrees(np.arccos(min(1.0, cos)))


@pytest.mark.parametrize("solver", ["gram", "tsqr"])
def test_exact_solvers_match_numpy(low_rank, solver):
    x = da.from_array(low_rank, chunks=(250, 40))
    emb = SVDEmbedding(8, solver=solver).fit(x)
    _, s, vt = np.linalg.svd(low_rank, full_matrices=False)
    np.testing.assert_allclose(emb.singular_values_, s[:8], rtol=1e-6)
    assert _angle_deg(emb.components_, vt[:8]) < 0.01
    np.testing.assert_allclose(emb.components_ @ emb.components_.T, np.eye(8), atol=1e-10)
    np.testing.assert_allclose(emb.components_, flip_signs(vt[:8]), atol=1e-6)


def test_reconstruction_error_equals_numpy_at_same_k(low_rank):
    emb = SVDEmbedding(10).fit(low_rank)
    err = np.linalg.norm(low_rank - emb.inverse_transform(emb.transform(low_rank)))
    u, s, vt = np.linalg.svd(low_rank, full_matrices=False)
    ref = np.linalg.norm(low_rank - (u[:, :10] * s[:10]) @ vt[:10])
    assert err == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("chunks", [(1200, 40), (100, 40), (333, 40), (50, 10)])
def test_results_agree_across_chunkings(low_rank, chunks):
    ref = SVDEmbedding(6).fit(low_rank)
    got = SVDEmbedding(6).fit(da.from_array(low_rank.astype(np.float32), chunks=chunks))
    np.testing.assert_allclose(got.singular_values_, ref.singular_values_, rtol=1e-5)
    np.testing.assert_allclose(got.components_, ref.components_, atol=1e-5)


def test_transform_is_projection_and_lazy(low_rank):
    x = da.from_array(low_rank, chunks=(300, 40))
    emb = SVDEmbedding(5).fit(x)
    with dask.config.set(scheduler=_forbid):
        z = emb.transform(x)
        back = emb.inverse_transform(z)
    assert isinstance(z, da.Array) and z.chunks == ((300,) * 4, (5,))
    assert back.shape == low_rank.shape
    np.testing.assert_allclose(z.compute(), low_rank @ emb.components_.T, rtol=1e-10)
    assert isinstance(emb.transform(low_rank), np.ndarray)
    assert emb.transform(low_rank.astype(np.float32)).dtype == np.float32


def test_energy_fraction_chooses_k_from_spectrum(low_rank):
    emb = SVDEmbedding(0.95).fit(low_rank)
    s = np.linalg.svd(low_rank, compute_uv=False)
    cum = np.cumsum(s**2) / np.sum(s**2)
    assert emb.n_components_ == int(np.searchsorted(cum, 0.95) + 1)
    assert emb.explained_energy_ratio_.sum() >= 0.95
    assert SVDEmbedding(1.0).fit(low_rank).n_components_ == 40


def test_centered_matches_pca(low_rank):
    x = low_rank + 5.0
    emb = SVDEmbedding(4, center=True).fit(da.from_array(x, chunks=(200, 40)))
    pca = PCA(4, svd_solver="full").fit(x)
    np.testing.assert_allclose(emb.singular_values_, pca.singular_values_, rtol=1e-6)
    np.testing.assert_allclose(np.abs(emb.transform(x)), np.abs(pca.transform(x)), atol=1e-6)
    tsqr = SVDEmbedding(4, center=True, solver="tsqr").fit(da.from_array(x, chunks=(200, 40)))
    np.testing.assert_allclose(tsqr.singular_values_, pca.singular_values_, rtol=1e-6)


def test_auto_solver_records_choice(low_rank):
    emb = SVDEmbedding(3).fit(low_rank)
    assert emb.solver_ == "gram" and "exact" in emb.solver_reason_


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), DataError, "contains NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), DataError, "contains infinity"),
        (np.empty((0, 3)), DataError, "0 sample"),
        (np.arange(5.0), DataError, "Expected 2D array, got 1D array"),
        (np.array(["a", "b"]).reshape(1, 2), DataError, "could not convert"),
    ],
    ids=["nan", "inf", "empty", "1-D", "strings"],
)
def test_bad_input_errors(data, error, match):
    with pytest.raises(error, match=match):
        SVDEmbedding(1).fit(data)


def test_dask_input_errors_without_computing():
    with pytest.raises(DataError, match="must be 2-D"):
        SVDEmbedding(1).fit(da.ones(5, chunks=2))
    with pytest.raises(DataError, match="empty"):
        SVDEmbedding(1).fit(da.ones((0, 3), chunks=2))


def test_nan_in_dask_chunk_is_named():
    x = np.ones((40, 3))
    x[25, 1] = np.nan
    with pytest.raises(DataError, match="NaN or inf values in row chunk 2"):
        SVDEmbedding(1).fit(da.from_array(x, chunks=(10, 3)))


def test_feature_mismatch_and_rank_errors(low_rank):
    emb = SVDEmbedding(3).fit(low_rank)
    with pytest.raises(DimensionMismatchError, match="has 39 features, but SVDEmbedding is expecting 40"):
        emb.transform(low_rank[:, :39])
    with pytest.raises(InvalidParameterError, match="exceeds the rank bound"):
        SVDEmbedding(6).fit(low_rank[:5])
    with pytest.raises(InvalidParameterError, match=r"n_components must be in \[1, n_features"):
        SVDEmbedding(41).fit(low_rank)
    with pytest.raises(InvalidParameterError, match="solver must be"):
        SVDEmbedding(2, solver="magic").fit(low_rank)


@pytest.mark.parametrize(("params", "match"), [
    ({"n_oversamples": -4}, "n_oversamples"), ({"n_iter": -1}, "n_iter"),
    ({"max_components": 0}, "max_components"), ({"center": "no"}, "center"),
    ({"random_state": -2}, "random_state"), ({"random_state": 1.5}, "random_state"),
    ({"solver": 3}, "solver"), ({"n_oversamples": True}, "n_oversamples"),
])
@pytest.mark.parametrize("solver", ["gram", "tsqr", "randomized", "incremental"])
def test_every_parameter_is_range_checked_whatever_the_solver(params, match, solver):
    x = np.random.default_rng(0).normal(size=(40, 6))
    with pytest.raises(InvalidParameterError, match=match):
        SVDEmbedding(**{"n_components": 2, "solver": solver, **params}).fit(x)


@pytest.mark.parametrize("bad", ["20", 20.0, [20], True, -1])
def test_a_damaged_fitted_width_is_named_not_reported_as_a_mismatch(bad):
    # issue 11: "X has 20 features, but SVDEmbedding is expecting 20" came from a model file
    # whose n_features_in_ was the str "20": equal widths compared unequal.
    x = np.random.default_rng(0).normal(size=(40, 20))
    est = SVDEmbedding(n_components=2).fit(x)
    est.n_features_in_ = bad
    for data in (x, da.from_array(x, chunks=20)):
        with pytest.raises(StoreFormatError, match=r"SVDEmbedding.n_features_in_ is .* not a "
                           r"non-negative int: the fitted state is damaged"):
            est.transform(data)
