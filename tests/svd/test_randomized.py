"""Randomized SVD: accuracy against LAPACK, passes, determinism, sparse blocks, bad input."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from veob_dask.errors import DataError, InvalidParameterError
from veob_dask.svd import SVDEmbedding, choose_solver
from veob_dask.svd._passes import normal_product, sketch_product, sketch_rows
from veob_dask.svd.randomized import randomized_svd


def _angle_deg(v: np.ndarray, v_ref: np.ndarray) -> float:
    cos = np.linalg.svd(v @ v_ref.T, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(cos.min(), -1, 1))))


def _relerr(s: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(s - ref[: s.size]) / ref[: s.size]))


@pytest.fixture
def wide(rng: np.random.Generator) -> np.ndarray:
    """300 x 400 with a slowly decaying spectrum (hard for plain power iteration)."""
    n, d = 300, 400
    with threadpool_limits(1):  # spinning BLAS threads are slow on a shared machine
        u, _ = np.linalg.qr(rng.normal(size=(n, n)))
        v, _ = np.linalg.qr(rng.normal(size=(d, n)))
    s = 50.0 / (1.0 + np.arange(n)) ** 0.5
    return (u * s) @ v.T


@pytest.mark.parametrize("method", ["krylov", "subspace"])
def test_matches_lapack_on_decaying_spectrum(low_rank: np.ndarray, method: str) -> None:
    x = da.from_array(low_rank, chunks=(250, -1))
    res = randomized_svd(x, 8, n_iter=4, method=method)
    _, s, vt = np.linalg.svd(low_rank, full_matrices=False)
    assert _relerr(res.singular_values, s) < 1e-8
    assert _angle_deg(res.components, vt[:8]) < 1e-4
    assert np.allclose(res.components @ res.components.T, np.eye(8), atol=1e-12)
    assert res.total_energy == pytest.approx(float(np.sum(low_rank**2)), rel=1e-12)
    assert res.n_samples == low_rank.shape[0]


def test_krylov_beats_subspace_per_pass(wide: np.ndarray) -> None:
    s = np.linalg.svd(wide, compute_uv=False)
    x = da.from_array(wide, chunks=(200, -1))
    kry = randomized_svd(x, 20, n_oversamples=10, n_iter=3, method="krylov")
    sub = randomized_svd(x, 20, n_oversamples=10, n_iter=3, method="subspace")
    assert _relerr(kry.singular_values, s) < 0.2 * _relerr(sub.singular_values, s)
    more = randomized_svd(x, 20, n_oversamples=10, n_iter=6, method="krylov")
    assert _relerr(more.singular_values, s) < _relerr(kry.singular_values, s)


def test_reads_the_data_n_iter_plus_one_times(low_rank: np.ndarray) -> None:
    calls: list[int] = []

    def count(block: np.ndarray) -> np.ndarray:
        calls.append(block.shape[0])
        return block

    x = da.from_array(low_rank, chunks=(300, -1))
    counted = da.map_blocks(count, x, dtype=x.dtype)
    randomized_svd(counted, 5, n_oversamples=2, n_iter=3)
    assert sum(calls) == 4 * low_rank.shape[0]
    calls.clear()
    # Once the Krylov panels span all 40 features the projection is exact: stop early.
    res = randomized_svd(counted, 5, n_oversamples=15, n_iter=6)
    assert sum(calls) == 3 * low_rank.shape[0]
    assert np.allclose(res.singular_values, np.linalg.svd(low_rank, compute_uv=False)[:5],
                       rtol=1e-10)
    calls.clear()
    # A sketch start is one more read (its statistics come from the same tasks).
    randomized_svd(counted, 5, n_oversamples=2, n_iter=3, start="sketch", center=True)
    assert sum(calls) == 5 * low_rank.shape[0]


def test_float32_with_large_singular_values_stays_accurate(rng: np.random.Generator) -> None:
    # The spectrum of the PEERS float32 case: sigma_1 = 3000, where unnormalised power
    # iteration overflows or drowns the small directions.
    n, d, k = 1500, 80, 10
    u, _ = np.linalg.qr(rng.normal(size=(n, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = 3000 * 0.93 ** np.arange(d)
    x32 = ((u * s) @ v.T).astype(np.float32)
    ref = np.linalg.svd(x32.astype(np.float64), full_matrices=False)
    x = da.from_array(x32, chunks=(400, -1))
    # float32 data is multiplied in float32 by default: accurate to float32 rounding...
    res = randomized_svd(x, k, n_iter=4, n_oversamples=5)
    assert 1e-9 < _relerr(res.singular_values, ref[1]) < 1e-5
    assert _angle_deg(res.components, ref[2][:k]) < 0.2
    # ...and to float64 rounding when asked.
    res = randomized_svd(x, k, n_iter=4, n_oversamples=5, compute_dtype="float64")
    assert _relerr(res.singular_values, ref[1]) < 1e-9
    assert _angle_deg(res.components, ref[2][:k]) < 1e-3


def test_center_matches_pca_on_sparse_without_densifying(rng: np.random.Generator) -> None:
    class NoDense(sp.csr_matrix):
        def toarray(self, *a: object, **kw: object) -> np.ndarray:
            raise AssertionError("densified a sparse block")

        todense = toarray  # type: ignore[assignment]

    xs = sp.random(400, 150, density=0.05, random_state=3, format="csr") * 10
    blocks = [NoDense(xs[i:i + 100]) for i in range(0, 400, 100)]
    x = da.concatenate([da.from_array(b, chunks=b.shape, asarray=False) for b in blocks])
    res = randomized_svd(x, 6, n_iter=6, center=True)
    dense = xs.toarray()
    mean = dense.mean(axis=0)
    s = np.linalg.svd(dense - mean, compute_uv=False)
    assert np.allclose(res.mean, mean)
    assert _relerr(res.singular_values, s) < 1e-4
    assert res.total_energy == pytest.approx(float(np.sum(s**2)), rel=1e-10)


def test_scipy_and_pydata_sparse_blocks_agree(rng: np.random.Generator) -> None:
    sparse = pytest.importorskip("sparse")
    xs = sp.random(500, 400, density=0.03, random_state=5, format="csr", dtype=np.float32)
    a = da.from_array(xs, chunks=(125, -1), asarray=False)
    b = da.from_array(sparse.COO.from_scipy_sparse(xs), chunks=(125, -1), asarray=False)
    ra, rb = randomized_svd(a, 5, random_state=4), randomized_svd(b, 5, random_state=4)
    assert np.allclose(ra.singular_values, rb.singular_values, rtol=1e-12)
    assert np.allclose(ra.components, rb.components, atol=1e-10)
    # Sparse blocks start from a sketch by default, dense ones from a Gaussian panel.
    # Same arithmetic in float64: the same result to rounding.
    dense = randomized_svd(da.from_array(xs.toarray(), chunks=(125, -1)), 5, random_state=4,
                           start="sketch", compute_dtype="float64")
    ra64 = randomized_svd(a, 5, random_state=4, compute_dtype="float64")
    assert np.allclose(ra64.singular_values, dense.singular_values, rtol=1e-10)
    assert _angle_deg(ra64.components, dense.components) < 1e-4  # a flat spectrum
    assert np.allclose(ra.singular_values, ra64.singular_values, rtol=1e-5)


def test_same_seed_and_chunks_give_identical_results(wide: np.ndarray) -> None:
    x = da.from_array(wide, chunks=(150, -1))
    a = randomized_svd(x, 10, random_state=7)
    with dask.config.set(scheduler="threads"):
        b = randomized_svd(x, 10, random_state=7)
    assert np.array_equal(a.singular_values, b.singular_values)
    assert np.array_equal(a.components, b.components)
    c = randomized_svd(x, 10, random_state=8)
    assert not np.array_equal(a.components, c.components)
    other = randomized_svd(da.from_array(wide, chunks=(300, -1)), 10, random_state=7)
    assert np.allclose(a.singular_values, other.singular_values, rtol=1e-10)


def test_rank_deficient_and_panel_wider_than_features(rng: np.random.Generator) -> None:
    x = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 40))
    s = np.linalg.svd(x, compute_uv=False)
    for method, p in (("krylov", 30), ("subspace", 3)):
        res = randomized_svd(x, 5, n_oversamples=p, n_iter=3, method=method)
        assert res.singular_values.shape == (5,) and res.components.shape == (5, 40)
        assert np.allclose(res.singular_values[:3], s[:3], rtol=1e-10)
        assert np.all(res.singular_values[3:] < 1e-6 * s[0])
        assert np.allclose(res.components @ res.components.T, np.eye(5), atol=1e-10)
    small = rng.normal(size=(100, 12))
    exact = randomized_svd(small, 4, n_oversamples=20, n_iter=0)  # l capped at d: exact
    assert np.allclose(exact.singular_values, np.linalg.svd(small, compute_uv=False)[:4],
                       rtol=1e-12)


def test_normal_product_is_lazy_and_exact(rng: np.random.Generator) -> None:
    x = rng.normal(size=(90, 7))
    q = rng.normal(size=(7, 3))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed while building the graph")

    with dask.config.set(scheduler=refuse):
        graph = normal_product(da.from_array(x, chunks=(20, -1)), q, with_stats=True)
        plain = normal_product(da.from_array(x, chunks=(20, -1)), q)
    out = graph.compute()
    assert np.allclose(out.product, x.T @ x @ q)
    assert np.allclose(plain.compute(), x.T @ x @ q)
    assert np.allclose(out.stats[:7], x.sum(axis=0))
    assert out.stats[7] == pytest.approx(np.sum(x**2))
    assert out.stats[8] == 90


def test_sketch_product_ignores_chunking_and_centres(rng: np.random.Generator) -> None:
    x = rng.normal(size=(90, 7)).astype(np.float32)
    a = sketch_product(da.from_array(x, chunks=(20, -1)), 3, 4, l_omega=4).compute()
    b = sketch_product(da.from_array(sp.csr_matrix(x), chunks=(33, -1), asarray=False), 3, 4,
                       l_omega=4).compute()
    omega = sketch_rows(3, 0, 90, 4)
    assert set(np.unique(omega)) == {-1.0, 1.0}
    assert np.allclose(omega[10:50], sketch_rows(3, 10, 50, 4))  # any row block, same rows
    for out in (a, b):
        assert np.allclose(out.product, x.T.astype(np.float64) @ omega, atol=1e-4)
        assert np.allclose(out.stats[7:11], omega.sum(axis=0))
        assert out.stats[12] == 90


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_components": 0}, "n_components"), ({"n_components": 31}, "n_components"),
     ({"n_components": 2.5}, "int"), ({"n_oversamples": -1}, "n_oversamples"),
     ({"n_iter": 1.5}, "n_iter"), ({"method": "lanczos"}, "method"),
     ({"random_state": -3}, "random_state")],
)
def test_bad_parameters_raise(rng: np.random.Generator, kwargs: dict, match: str) -> None:
    args = {"n_components": 3, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        randomized_svd(rng.normal(size=(50, 30)), **args)


def test_nan_in_a_block_raises_data_error(rng: np.random.Generator) -> None:
    x = rng.normal(size=(60, 8))
    x[45, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        randomized_svd(da.from_array(x, chunks=(20, -1)), 2)


def test_registered_solver_through_the_estimator(wide: np.ndarray) -> None:
    emb = SVDEmbedding(n_components=12, solver="randomized", n_iter=5, random_state=1).fit(wide)
    s = np.linalg.svd(wide, compute_uv=False)
    assert emb.solver_ == "randomized"
    assert _relerr(emb.singular_values_, s) < 1e-3
    frac = SVDEmbedding(n_components=0.3, solver="randomized", max_components=40).fit(wide)
    cum = np.cumsum(s**2) / np.sum(s**2)
    assert frac.n_components_ == int(np.searchsorted(cum, 0.3) + 1)
    assert frac.spectrum_.size == 40
    z = emb.transform(wide)
    assert np.allclose(z, wide @ emb.components_.T)


def test_auto_picks_randomized_only_for_wide_data() -> None:
    wide = da.from_array(sp.random(40, 5000, density=0.01, format="csr", random_state=0),
                         chunks=(20, -1), asarray=False)
    narrow = da.from_array(sp.random(40, 300, density=0.05, format="csr", random_state=0),
                           chunks=(20, -1), asarray=False)
    assert choose_solver(wide, "auto")[0] == "randomized"
    solver, reason = choose_solver(narrow, "auto")
    assert solver == "gram" and "exact" in reason
    emb = SVDEmbedding(n_components=3).fit(wide)
    assert emb.solver_ == "randomized" and "sparse" in emb.solver_reason_
