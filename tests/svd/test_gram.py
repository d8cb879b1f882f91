"""The Gram kernel: exact float64 accumulation of float32 blocks, block statistics, NaN/inf."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask.errors import DataError, NumericalWarning
from veob_dask.svd import SVDEmbedding, gram
from veob_dask.svd.gram import (
    ACCURACY_FLOOR,
    _gram_block,
    gram_matrix,
    gram_svd,
    projected_gram,
)


@pytest.mark.parametrize("shape", [(1, 3), (1023, 7), (1025, 7), (5000, 64), (0, 4)])
def test_block_is_the_exact_augmented_gram(rng: np.random.Generator, shape: tuple) -> None:
    x = rng.normal(size=shape).astype(np.float32)
    aug = np.hstack([x.astype(np.float64), np.ones((shape[0], 1))])
    got = _gram_block(x)[0]
    assert np.allclose(got, aug.T @ aug, rtol=1e-13, atol=1e-9)
    assert np.array_equal(got, got.T)
    assert got[-1, -1] == shape[0]


def test_dense_scipy_and_pydata_sparse_blocks_agree(rng: np.random.Generator) -> None:
    sparse = pytest.importorskip("sparse")
    x = sp.random(300, 40, density=0.1, random_state=1, format="csr")
    dense = _gram_block(x.toarray())[0]
    assert np.allclose(_gram_block(x)[0], dense, rtol=1e-13, atol=1e-12)
    assert np.allclose(_gram_block(sparse.COO.from_scipy_sparse(x))[0], dense, rtol=1e-13,
                       atol=1e-12)


def test_singular_values_match_float64_lapack(rng: np.random.Generator) -> None:
    x = (rng.normal(size=(6000, 50)) * np.logspace(0, -3, 50)).astype(np.float32)
    s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    # float32 data: float32 sub-block products summed in float64, float32-level error...
    res = gram_svd(da.from_array(x, chunks=(1700, -1)))
    assert 1e-12 < np.max(np.abs(res.singular_values - s) / s) < 1e-6
    # ...and float64 products when asked: float64-level error.
    res = gram_svd(da.from_array(x, chunks=(1700, -1)), compute_dtype="float64")
    assert np.max(np.abs(res.singular_values - s) / s) < 1e-10
    total = gram_matrix(da.from_array(x, chunks=(1700, -1))).compute()
    assert total[-1, -1] == 6000
    assert np.allclose(total[-1, :-1], x.astype(np.float64).sum(axis=0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_found_and_named(bad: float) -> None:
    x = np.ones((300, 5), dtype=np.float32)
    x[250, 2] = bad
    with pytest.raises(DataError, match="row chunk 2"):
        gram_svd(da.from_array(x, chunks=(100, -1)))


# -- accuracy: the one-pass route, the refinement and the error estimate ------------------------

def _spectral(rng: np.random.Generator, n: int, d: int, s: np.ndarray) -> np.ndarray:
    u, _ = np.linalg.qr(rng.normal(size=(n, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (u * s) @ v.T


def _relerr(got: np.ndarray, x: np.ndarray, center: bool) -> np.ndarray:
    xf = x.astype(np.float64)
    ref = np.linalg.svd(xf - xf.mean(axis=0) if center else xf, compute_uv=False)
    inside = ref >= ACCURACY_FLOOR * ref[0]
    k = got.size
    return (np.abs(got - ref[:k]) / ref[:k])[inside[:k]]


@pytest.mark.parametrize("center", [False, True])
def test_int64_near_2_62_is_refined_to_1e6(rng: np.random.Generator, center: bool) -> None:
    # issue 11: int64 data near 2**62; sigma_2 / sigma_1 is about 2e-6 (uncentered).
    x = (2**62 + rng.integers(-2**46, 2**46, size=(3000, 20))).astype(np.int64)
    xd = da.from_array(x, chunks=(1000, -1))
    one = gram_svd(xd, center=center, refine=False)
    assert _relerr(one.singular_values, x, center).max() > 1e-6  # what one pass gives
    res = gram_svd(xd, center=center)
    assert res.passes == 2 and "Rayleigh" in res.note
    assert _relerr(res.singular_values, x, center).max() < 1e-9
    emb = SVDEmbedding(n_components=5, solver="gram", center=center).fit(xd)
    assert "refined by 1 Rayleigh–Ritz pass" in emb.solver_reason_
    assert _relerr(emb.singular_values_, x, center).max() < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spectrum_down_to_the_floor_is_resolved(rng: np.random.Generator, dtype: Any) -> None:
    x = _spectral(rng, 3000, 30, np.logspace(0, -6, 30)).astype(dtype)
    res = gram_svd(da.from_array(x, chunks=(700, -1)))
    assert res.passes > 1
    assert _relerr(res.singular_values, x, False).max() < 1e-6
    # the kept components span the same subspace as numpy's
    _, _, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    cos = np.linalg.svd(res.components[:10] @ vt[:10].T, compute_uv=False)
    assert cos.min() > 1 - 1e-8


def test_offset_data_centered_is_resolved(rng: np.random.Generator) -> None:
    x = (rng.normal(size=(4000, 25)) * 0.1 + 100.0).astype(np.float32)
    one = gram_svd(da.from_array(x, chunks=(1500, -1)), center=True, refine=False)
    assert _relerr(one.singular_values, x, True).max() > 1e-3
    res = gram_svd(da.from_array(x, chunks=(1500, -1)), center=True)
    assert _relerr(res.singular_values, x, True).max() < 1e-9
    centered = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    assert res.total_energy == pytest.approx(float((centered**2).sum()), rel=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_well_conditioned_data_keeps_one_pass(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = int(rng.integers(5, 60))
    s = np.logspace(0, -float(rng.uniform(0, 1.5)), d)
    x = _spectral(rng, 2500, d, s).astype(np.float32)
    res = gram_svd(da.from_array(x, chunks=(900, -1)), n_components=min(d, 10))
    assert res.passes == 1 and res.note == ""
    assert _relerr(res.singular_values[:10], x, False).max() < 1e-6


@pytest.mark.parametrize("seed", range(8))
def test_error_estimate_never_lets_a_bad_value_through(seed: int) -> None:
    """Whatever the route decides, every kept value above the floor ends within 1e-6."""
    rng = np.random.default_rng(100 + seed)
    d = int(rng.choice([5, 20, 40]))
    x = _spectral(rng, int(rng.choice([500, 3000])), d, np.logspace(0, -rng.uniform(1, 7), d))
    x = (x * np.sqrt(x.shape[0]) + rng.choice([0.0, 1.0, 1e3])).astype(rng.choice(["f4", "f8"]))
    center = bool(seed % 2)
    res = gram_svd(da.from_array(x, chunks=(x.shape[0] // 3 + 1, -1)), center=center)
    assert _relerr(res.singular_values, x, center).max() < 1e-6


def test_unresolved_values_are_warned_about(rng: np.random.Generator,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gram, "MAX_REFINEMENTS", 0)
    x = _spectral(rng, 2000, 20, np.logspace(0, -6, 20))
    with pytest.warns(NumericalWarning, match=r"could not resolve σ\d+ .* use solver='tsqr'"):
        res = gram_svd(da.from_array(x, chunks=(500, -1)))
    assert res.passes == 1 and res.note == ""


@pytest.mark.parametrize("kind", ["dense", "int", "sparse"])
def test_projected_gram_matches_numpy(rng: np.random.Generator, kind: str) -> None:
    x = rng.normal(size=(700, 12)) + 3.0
    if kind == "int":
        x = np.round(x * 1000).astype(np.int64)
    basis, _ = np.linalg.qr(rng.normal(size=(12, 5)))
    shift = x.mean(axis=0)
    weights = np.array([1.0, 0.5, 0.25])
    xd = da.from_array(sp.csr_matrix(x) if kind == "sparse" else x, chunks=(250, -1),
                       asarray=kind != "sparse")
    got = projected_gram(xd, basis, shift=shift, weights=weights).compute()
    y = np.hstack([(x - shift) @ basis, np.ones((700, 1))])
    y *= np.repeat(weights, [250, 250, 200])[:, None]
    np.testing.assert_allclose(got, y.T @ y, rtol=1e-10, atol=1e-8)
    ident = projected_gram(xd, None).compute()
    z = np.hstack([x, np.ones((700, 1))])
    np.testing.assert_allclose(ident, z.T @ z, rtol=1e-12)
