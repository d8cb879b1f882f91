"""Cell indexes: exact at n_probe='all', good recall at small n_probe, persistence, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from veob_dask.errors import (
    DataError,
    DimensionMismatchError,
    InvalidParameterError,
    NotFittedError,
    StoreFormatError,
    StoreNotFoundError,
)
from veob_dask.index import CellIndex, ExactIndex, build_index, exact_kneighbors, load_index


@pytest.fixture
def mixture(rng):
    centers = rng.normal(size=(15, 8)) * 3
    base = centers[rng.integers(0, 15, 6000)] + rng.normal(size=(6000, 8))
    queries = centers[rng.integers(0, 15, 200)] + rng.normal(size=(200, 8))
    return queries.astype(np.float32), base.astype(np.float32)


def recall(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got, ref, strict=True)]))


@pytest.mark.parametrize("method", ["cells", "kmeans"])
def test_all_cells_is_exact(mixture, method):
    q, b = mixture
    ref_i, ref_d = exact_kneighbors(q, b, 10)
    index = build_index(b, method=method, max_samples=None)
    sq, idx = index.kneighbors(q, 10, n_probe="all")
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(sq, ref_d, rtol=1e-12)
    _, idx2 = index.kneighbors(q, 10, n_probe=index.n_cells_ + 5)
    np.testing.assert_array_equal(idx2, ref_i)


@pytest.mark.parametrize("method", ["cells", "kmeans"])
def test_recall_grows_with_n_probe(mixture, method):
    q, b = mixture
    ref, _ = exact_kneighbors(q, b, 10)
    index = build_index(b, method=method)
    rec = [recall(index.kneighbors(q, 10, n_probe=p)[1], ref) for p in (1, 4, 16)]
    assert rec[0] <= rec[1] <= rec[2]
    assert rec[2] >= 0.95
    sq, _ = index.kneighbors(q, 10, n_probe=1)
    assert np.all(np.diff(sq, axis=1) >= 0)


def test_small_cells_and_k_larger_than_a_cell(rng):
    """k beyond every cell's size still fills all k slots from the probed cells."""
    b = rng.normal(size=(300, 3))
    index = CellIndex("tree", max_depth=6, min_samples=1, max_samples=None).fit(b)
    assert index.partition_.cell_counts_.min() < 40
    sq, idx = index.kneighbors(b[:5], 40, n_probe="all")
    ref, _ = exact_kneighbors(b[:5], b, 40)
    np.testing.assert_array_equal(idx, ref)
    assert np.all(np.isfinite(sq))


def test_dask_queries_are_lazy(mixture):
    q, b = mixture
    index = build_index(b, method="kmeans")
    _, idx = index.kneighbors(da.from_array(q, chunks=(64, -1)), 5, n_probe=3)
    assert isinstance(idx, da.Array) and idx.chunks[0] == (64, 64, 64, 8)
    np.testing.assert_array_equal(idx.compute(), index.kneighbors(q, 5, n_probe=3)[1])


def test_exact_index_interface(mixture):
    q, b = mixture
    index = build_index(da.from_array(b, chunks=(1000, -1)), method="exact")
    assert isinstance(index, ExactIndex)
    np.testing.assert_array_equal(index.kneighbors(q, 4)[1], exact_kneighbors(q, b, 4)[0])


def test_save_load_and_foreign_embedding(mixture, tmp_path):
    q, b = mixture
    index = build_index(b, method="cells", n_probe=4)
    index.save(tmp_path / "ix.zarr")
    back = load_index(tmp_path / "ix.zarr", embedding=b)
    np.testing.assert_array_equal(back.kneighbors(q, 7)[1], index.kneighbors(q, 7)[1])
    assert back.n_probe == 4
    other = b.copy()
    other[-1, 0] += 1.0
    with pytest.raises(StoreFormatError, match="different embedding"):
        load_index(tmp_path / "ix.zarr", embedding=other)
    with pytest.raises(StoreFormatError, match="different embedding"):
        index.check_embedding(b[:-1])
    exact = build_index(b, method="exact")
    exact.save(tmp_path / "ex.zarr")
    with pytest.raises(InvalidParameterError, match="pass the embedding"):
        load_index(tmp_path / "ex.zarr")
    with pytest.raises(StoreFormatError, match="different embedding"):
        load_index(tmp_path / "ex.zarr", embedding=other)
    with pytest.raises(StoreNotFoundError):
        load_index(tmp_path / "missing.zarr")


def test_errors(mixture):
    q, b = mixture
    index = build_index(b, method="kmeans")
    with pytest.raises(DimensionMismatchError, match="features"):
        index.kneighbors(q[:, :5], 3)
    with pytest.raises(DimensionMismatchError):
        index.kneighbors(da.from_array(q[:, :5]), 3)
    with pytest.raises(InvalidParameterError, match="at most"):
        index.kneighbors(q, b.shape[0] + 1)
    with pytest.raises(InvalidParameterError, match="n_probe"):
        index.kneighbors(q, 3, n_probe=0)
    with pytest.raises(DataError, match="Expected 2D array"):
        index.kneighbors(q[0], 3)
    with pytest.raises(InvalidParameterError, match="method"):
        build_index(b, method="annoy")
    with pytest.raises(NotFittedError, match="not fitted"):
        CellIndex().kneighbors(q, 3)


@pytest.mark.parametrize("backend", ["hnswlib", "faiss-ivf", "faiss-flat"])
def test_vector_db_adapters(mixture, backend):
    pytest.importorskip("faiss" if backend.startswith("faiss") else "hnswlib")
    q, b = mixture
    ref, ref_sq = exact_kneighbors(q, b, 5)
    index = build_index(da.from_array(b, chunks=(2000, -1)), method=backend, n_probe=20,
                        nlist=30)
    sq, idx = index.kneighbors(q, 5)
    assert idx.shape == (200, 5) and idx.dtype == np.int64
    assert recall(idx, ref) >= 0.95
    hit = idx == ref
    np.testing.assert_allclose(sq[hit], ref_sq[hit], rtol=1e-4)
    with pytest.raises(DimensionMismatchError):
        index.kneighbors(q[:, :3], 5)
