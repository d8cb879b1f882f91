"""The shared block kernels (svd/kernels.py) against numpy, and the fixed solver table."""

from __future__ import annotations

import inspect

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask.errors import DataError
from veob_dask.svd import SOLVERS, SVDEmbedding, choose_solver
from veob_dask.svd.kernels import (
    EXACT_MAX_FEATURES,
    augmented_gram,
    block_stats,
    choose_k,
    cumulative_energy,
    project_block,
)


def _aug(y: np.ndarray) -> np.ndarray:
    a = np.hstack([y, np.ones((y.shape[0], 1))])
    return a.T @ a


@pytest.mark.parametrize("n", [0, 1, 700, 3000])
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_augmented_gram_of_shifted_projected_rows(rng: np.random.Generator, n: int,
                                                 kind: str) -> None:
    x = rng.normal(size=(n, 9)) + 50.0
    basis = np.linalg.qr(rng.normal(size=(9, 4)))[0]
    shift = np.full(9, 50.0)
    block = sp.csr_matrix(x) if kind == "sparse" else x
    for b, s, ref in [(None, None, _aug(x)), (basis, None, _aug(x @ basis)),
                      (None, shift, _aug(x - shift)), (basis, shift, _aug((x - shift) @ basis))]:
        got = augmented_gram(block, b, shift=s)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-8 * max(1, n))


def test_augmented_gram_float32_products_are_summed_in_float64(rng: np.random.Generator) -> None:
    x = rng.normal(size=(5000, 20)).astype(np.float32)
    ref = _aug(x.astype(np.float64))
    got = augmented_gram(x, dtype=np.float32)
    assert got.dtype == np.float64
    assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 1e-5
    # with a basis the products of the projected rows are float64
    q = np.eye(20, 3, dtype=np.float32)
    np.testing.assert_allclose(augmented_gram(x, q, dtype=np.float32)[:3, :3], ref[:3, :3],
                               rtol=1e-12)


@pytest.mark.parametrize("kind", ["dense", "sparse", "int"])
def test_block_stats_match_numpy(rng: np.random.Generator, kind: str) -> None:
    x = rng.normal(size=(4000, 7))
    block = {"dense": x, "sparse": sp.random(4000, 7, density=0.3, random_state=2, format="csr"),
             "int": (x * 10).astype(np.int64)}[kind]
    dense = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float64)
    got = block_stats(block)
    np.testing.assert_allclose(got[:7], dense.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(got[7], np.sum(dense**2), rtol=1e-12)
    assert got[8] == 4000


@pytest.mark.parametrize("kernel", [block_stats, augmented_gram,
                                    lambda b: project_block(b, np.eye(2, 3))])
def test_kernels_refuse_non_finite_blocks(kernel) -> None:
    x = np.ones((10, 3))
    x[4, 1] = np.nan
    with pytest.raises(DataError, match="NaN or inf"):
        kernel(x)


def test_project_block_dense_and_sparse_agree(rng: np.random.Generator) -> None:
    x = sp.random(300, 12, density=0.2, random_state=3, format="csr")
    comps = np.linalg.qr(rng.normal(size=(12, 4)))[0].T
    mean = np.asarray(x.mean(axis=0)).ravel()
    ref = (x.toarray() - mean) @ comps.T
    np.testing.assert_allclose(project_block(x, comps, mean), ref, atol=1e-12)
    np.testing.assert_allclose(project_block(x.toarray(), comps, mean), ref, atol=1e-12)
    out = project_block(x.toarray().astype(np.float32), comps, dtype=np.float32)
    assert out.dtype == np.float32


def test_project_block_subtracts_a_far_mean_before_the_product(rng: np.random.Generator) -> None:
    x = rng.normal(size=(200, 5)) + 1e8
    comps = np.eye(5)[:2]
    got = project_block(x, comps, np.full(5, 1e8))
    np.testing.assert_allclose(got, (x - 1e8)[:, :2], atol=1e-7)


@pytest.mark.parametrize(("n_components", "rtol", "want"), [
    (2, 0.0, 2), (9, 0.0, 4), (0.5, 0.0, 1), (0.9, 0.0, 2), (0.97, 0.0, 3), (0.999, 0.0, 3),
    (1.0, 0.0, 4), (None, 0.0, 4), (9, 1e-3, 3), (1.0, 1e-3, 3),
], ids=str)
def test_choose_k_reads_the_spectrum(n_components, rtol, want) -> None:
    s = np.array([3.0, 2.0, 1.0, 1e-6])  # energies 9, 4, 1, 1e-12 of 14
    assert choose_k(s, 14.0, n_components, rtol=rtol) == want


def test_choose_k_of_an_empty_spectrum_keeps_nothing_or_one() -> None:
    assert choose_k(np.zeros(0), 0.0, 0.9) == 0
    assert choose_k(np.zeros(3), 0.0, 0.9) == 1
    assert choose_k(np.zeros(3), 0.0, 0.9, rtol=1e-10) == 0


def test_cumulative_energy_against_numpy(rng: np.random.Generator) -> None:
    s = np.sort(rng.random(20))[::-1]
    total = float(np.sum(s**2)) * 1.5  # the values hold two thirds of the energy
    got = cumulative_energy(s, total)
    np.testing.assert_allclose(got, [np.sum(s[:j] ** 2) / total for j in range(1, 21)],
                               rtol=1e-13)
    np.testing.assert_allclose(got[-1], 2 / 3, rtol=1e-13)
    np.testing.assert_allclose(cumulative_energy(s)[-1], 1.0, rtol=1e-13)  # own energy
    assert cumulative_energy(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    assert cumulative_energy(np.zeros(0)).size == 0
    # choose_k keeps the fewest values whose share reaches the fraction
    k = choose_k(s, total, 0.5)
    assert got[k - 1] >= 0.5 - 1e-12 and (k == 1 or got[k - 2] < 0.5)


def test_the_solver_table_is_fixed_and_every_entry_takes_explicit_keywords() -> None:
    assert sorted(SOLVERS) == ["gram", "incremental", "randomized", "tsqr"]
    with pytest.raises(TypeError):
        SOLVERS["mine"] = SOLVERS["gram"]  # type: ignore[index]
    for name, func in SOLVERS.items():
        params = inspect.signature(func).parameters
        assert "estimator" not in params, name
        assert params["center"].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_auto_chooses_by_the_one_feature_threshold() -> None:
    narrow = da.zeros((10, EXACT_MAX_FEATURES), chunks=5)
    wide = da.zeros((10, EXACT_MAX_FEATURES + 1), chunks=5)
    assert choose_solver(narrow, "auto")[0] == "gram"
    assert choose_solver(wide, "auto")[0] == "randomized"
    assert choose_solver(wide, "tsqr") == ("tsqr", "chosen by the caller")


@pytest.mark.parametrize("solver", ["gram", "tsqr", "randomized", "incremental"])
def test_every_solver_of_the_table_fits_through_the_estimator(low_rank, solver) -> None:
    emb = SVDEmbedding(5, solver=solver, n_iter=6).fit(da.from_array(low_rank, chunks=(300, 40)))
    s = np.linalg.svd(low_rank, compute_uv=False)[:5]
    np.testing.assert_allclose(emb.singular_values_, s, rtol=1e-6)
    assert emb.solver_ == solver
