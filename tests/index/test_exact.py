"""Exact blocked k-NN: agreement with a float64 brute force, laziness, chunk independence, errors."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from veob_dask.errors import DataError, DimensionMismatchError, InvalidParameterError
from veob_dask.index import exact as exact_mod
from veob_dask.index.exact import exact_kneighbors, merge_topk


def brute(q: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((q[:, None, :].astype(np.float64) - b[None, :, :].astype(np.float64)) ** 2).sum(-1)
    idx = np.stack([np.lexsort((np.arange(b.shape[0]), row))[:k] for row in d])
    return idx, np.take_along_axis(d, idx, 1)


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centers = rng.normal(size=(8, 6)) * 4
    base = (centers[rng.integers(0, 8, 3000)] + rng.normal(size=(3000, 6))).astype(np.float32)
    queries = (centers[rng.integers(0, 8, 70)] + rng.normal(size=(70, 6))).astype(np.float32)
    return queries, base


@pytest.mark.parametrize("k", [1, 7, 40])
def test_matches_brute_force(data, k):
    q, b = data
    idx, sq = exact_kneighbors(q, b, k)
    ref_idx, ref_sq = brute(q, b, k)
    assert idx.dtype == np.int64 and idx.shape == (70, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sq, ref_sq, rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(sq, axis=1) >= 0)


def test_small_tiles_and_threads_agree(data, monkeypatch):
    """Many tiles and chunks (threshold pruning across tiles) and two threads give the same result."""
    q, b = data
    ref = exact_kneighbors(q, b, 5, n_threads=1)
    monkeypatch.setattr(exact_mod, "_TILE_ROWS", 64)
    monkeypatch.setattr(exact_mod, "_FIRST_TILE", 3)
    monkeypatch.setattr(exact_mod, "_NUMPY_CHUNK_ROWS", 500)
    got = exact_kneighbors(q, b, 5, query_block=16, n_threads=2)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])


def test_far_from_origin_and_float64(rng):
    """A large common offset must not break exactness (float32 cancellation is guarded)."""
    b = rng.normal(size=(800, 5)) + 1e4
    q = rng.normal(size=(20, 5)) + 1e4
    idx, sq = exact_kneighbors(q, b, 4)
    ref_idx, ref_sq = brute(q, b, 4)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(sq, ref_sq, rtol=1e-9)


def test_duplicates_break_ties_by_index(rng):
    b = np.repeat(rng.normal(size=(5, 3)), 4, axis=0)
    idx, sq = exact_kneighbors(b[:1], b, 6)
    np.testing.assert_array_equal(idx[0, :4], [0, 1, 2, 3])
    assert np.all(sq[0, :4] == 0)


def test_k_equals_n_returns_everything(data):
    q, b = data
    idx, _ = exact_kneighbors(q[:3], b[:50], 50)
    assert all(sorted(row) == list(range(50)) for row in idx.tolist())


def test_dask_queries_lazy_and_chunk_independent(data):
    q, b = data
    ref = exact_kneighbors(q, b, 6)
    qd = da.from_array(q, chunks=(25, -1))
    bd = da.from_array(b, chunks=(700, -1))

    def forbid(*args, **kwargs):
        raise AssertionError("computed")

    with dask.config.set(scheduler=forbid):
        idx, sq = exact_kneighbors(qd, bd, 6)
    assert isinstance(idx, da.Array) and idx.chunks == ((25, 25, 20), (6,))
    got_idx, got_sq = dask.compute(idx, sq)
    np.testing.assert_array_equal(got_idx, ref[0])
    np.testing.assert_allclose(got_sq, ref[1], rtol=1e-12)


def test_numpy_queries_dask_base(data):
    q, b = data
    got = exact_kneighbors(q, da.from_array(b, chunks=(1000, 3)), 3)
    ref = exact_kneighbors(q, b, 3)
    np.testing.assert_array_equal(got[0], ref[0])


def test_merge_topk_orders_and_truncates():
    a = (np.array([[1.0, 3.0]]), np.array([[5, 7]]))
    b = (np.array([[1.0, 2.0]]), np.array([[2, 9]]))
    vals, idx = merge_topk([a, b], 3)
    np.testing.assert_array_equal(idx, [[2, 5, 9]])
    np.testing.assert_array_equal(vals, [[1.0, 1.0, 2.0]])


def test_errors(data):
    q, b = data
    with pytest.raises(DimensionMismatchError, match="features"):
        exact_kneighbors(q[:, :5], b, 3)
    with pytest.raises(DimensionMismatchError):
        exact_kneighbors(da.from_array(q[:, :5]), b, 3)
    with pytest.raises(InvalidParameterError, match="at most"):
        exact_kneighbors(q, b[:4], 5)
    with pytest.raises(InvalidParameterError):
        exact_kneighbors(q, b, 0)
    with pytest.raises(DataError, match="2-D"):
        exact_kneighbors(q[0], b, 3)
    bad = q.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        exact_kneighbors(bad, b, 3)
    bad_base = b.copy()
    bad_base[10, 0] = np.inf
    with pytest.raises(DataError, match="NaN or inf"):
        exact_kneighbors(q, bad_base, 3)
    with pytest.raises(DataError):
        exact_kneighbors(q, np.zeros((0, 6)), 1)


@pytest.mark.cluster
def test_on_process_cluster(data, process_client):
    """The lazy graph runs on a 2-process cluster and matches the in-process result."""
    q, b = data
    idx, sq = exact_kneighbors(da.from_array(q, chunks=(30, -1)),
                               da.from_array(b, chunks=(900, -1)), 4)
    got_i, got_d = process_client.compute([idx, sq], sync=True)
    ref_i, ref_d = exact_kneighbors(q, b, 4)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_allclose(got_d, ref_d)


def _cosine_brute(q: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    qn, bn = np.linalg.norm(q, axis=1), np.linalg.norm(b, axis=1)
    den = np.outer(qn, bn)
    cos = np.divide(q.astype(np.float64) @ b.T.astype(np.float64), den,
                    out=np.zeros(den.shape), where=den > 0)
    d = 1.0 - cos
    idx = np.stack([np.lexsort((np.arange(b.shape[0]), row))[:k] for row in d])
    return idx, np.take_along_axis(d, idx, 1)


@pytest.mark.parametrize("lazy", [False, True])
def test_cosine_matches_brute_force_zero_rows_included(data, lazy):
    q, b = data
    b, q = b.copy(), q.copy()
    b[[5, 17]] = 0.0  # zero rows sit at distance 1 from everything
    q[3] = 0.0
    ref_idx, ref_d = _cosine_brute(q, b, 9)
    if lazy:
        idx, dist = dask.compute(*exact_kneighbors(da.from_array(q, chunks=(25, -1)),
                                                   da.from_array(b, chunks=(700, -1)), 9,
                                                   metric="cosine"))
    else:
        idx, dist = exact_kneighbors(q, b, 9, metric="cosine")
    np.testing.assert_allclose(dist, ref_d, atol=1e-6)
    rest = np.arange(q.shape[0]) != 3  # the zero query ties with every row (at 1 ± 1e-16)
    assert np.mean(idx[rest] == ref_idx[rest]) > 0.99  # float32 data: near-ties may swap
    np.testing.assert_allclose(dist[3], 1.0)
    assert exact_kneighbors(b[:1], b, 1, metric="cosine")[1][0, 0] == 0.0
    with pytest.raises(InvalidParameterError, match="metric"):
        exact_kneighbors(q, b, 3, metric="manhattan")


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_few_queries_scan_agrees_with_the_product_scan(data, metric, monkeypatch):
    """One or two queries take the direct float64 scan; the results are the product scan's."""
    q, b = data
    b = np.vstack([b, b[:40]])  # exact duplicates: ties resolved by the lower row
    many = exact_kneighbors(q, b, 6, metric=metric)
    for rows in (slice(0, 1), slice(5, 7)):
        idx, dist = exact_kneighbors(q[rows], b, 6, metric=metric)
        np.testing.assert_array_equal(idx, many[0][rows])
        np.testing.assert_allclose(dist, many[1][rows], rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(exact_mod, "_DIRECT_ROWS", 100)
    idx, _ = exact_kneighbors(b[3000:3002], b, 2, metric=metric)
    np.testing.assert_array_equal(idx[:, 0], [0, 1])  # the duplicate of row 3000 is row 0
