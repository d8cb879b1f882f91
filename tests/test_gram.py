"""The Gram kernel: exact float64 accumulation of float32 blocks, block statistics, NaN/inf."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask.errors import DataError
from veob_dask.svd.gram import _gram_block, gram_matrix, gram_svd


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
