"""Partition tree and k-means cells: every row in exactly one cell, termination, Voronoi property."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veob_dask import load, save
from veob_dask.errors import DimensionMismatchError, InvalidParameterError
from veob_dask.io import read_array, write_array
from veob_dask.partition import KMeansCells, PartitionTree, descend, nearest_centroids


def blobs(rng: np.random.Generator, n: int = 1500, d: int = 5, k: int = 6) -> np.ndarray:
    centers = rng.normal(size=(k, d)) * 10
    return centers[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def check_cells(est, x: np.ndarray) -> None:
    """Every row in exactly one cell, counts sum to n, cells are Voronoi cells of the centroids."""
    labels = est.labels_
    assert labels.shape == (x.shape[0],)
    assert labels.min() >= 0 and labels.max() < est.n_cells_
    np.testing.assert_array_equal(np.bincount(labels, minlength=est.n_cells_), est.cell_counts_)
    assert est.cell_counts_.sum() == x.shape[0] and np.all(est.cell_counts_ > 0)
    d2 = ((x[:, None, :] - est.cell_centroids_[None]) ** 2).sum(-1)
    own = d2[np.arange(x.shape[0]), labels]
    np.testing.assert_allclose(own, d2.min(axis=1), rtol=1e-5, atol=1e-9)
    r2 = np.zeros(est.n_cells_)
    np.maximum.at(r2, labels, own)
    np.testing.assert_allclose(est.cell_r2max_, r2, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(est.predict(x), labels)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(1, 4), levels=st.integers(1, 8),
       depth=st.integers(0, 4), min_samples=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_tree_every_row_in_one_cell(n, d, levels, depth, min_samples, seed):
    """Any data, including many duplicate rows (few distinct values), partitions cleanly."""
    x = np.random.default_rng(seed).integers(0, levels, size=(n, d)).astype(np.float64)
    est = PartitionTree(depth, min_samples=min_samples, max_samples=None,
                        keep_labels=True).fit(x)
    check_cells(est, x)
    assert est.node_depth_.max() <= depth
    assert est.n_cells_ <= 2 ** depth
    leaves = est.apply(x)
    assert np.all(est.children_[leaves, 0] == -1)
    np.testing.assert_array_equal(np.bincount(leaves, minlength=len(est.children_)),
                                  est.node_counts_ * (est.children_[:, 0] == -1))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 50), k=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_kmeans_every_row_in_one_cell(n, k, seed):
    x = np.random.default_rng(seed).integers(0, 3, size=(n, 2)).astype(np.float64)
    est = KMeansCells(min(k, n), max_samples=None, keep_labels=True).fit(x)
    check_cells(est, x)


def test_duplicates_and_single_point_terminate():
    same = np.ones((500, 3))
    est = PartitionTree(10, min_samples=1, max_samples=None, keep_labels=True).fit(same)
    assert est.n_cells_ == 1 and len(est.children_) == 1
    one = PartitionTree(5, min_samples=1, keep_labels=True).fit(np.array([[1.0, 2.0]]))
    assert one.n_cells_ == 1 and one.labels_.tolist() == [0]
    assert descend(same, est.directions_, est.thresholds_, est.children_).tolist() == [0] * 500


def test_split_through_centroid_along_top_direction(rng):
    """Root split: direction = top principal axis; threshold = centroid projection."""
    x = rng.normal(size=(2000, 3)) * [5.0, 1.0, 0.2] + [3.0, -2.0, 1.0]
    est = PartitionTree(1, min_samples=1, max_samples=None).fit(x)
    v = est.directions_[0]
    assert abs(abs(v[0]) - 1) < 1e-2
    np.testing.assert_allclose(est.thresholds_[0], x.mean(axis=0) @ v, rtol=1e-9)
    left = x @ v <= est.thresholds_[0]
    np.testing.assert_allclose(est.node_counts_[1:], [left.sum(), (~left).sum()])
    np.testing.assert_allclose(est.node_centroids_[1], x[left].mean(axis=0), rtol=1e-9)


def test_out_of_core_equals_in_memory_and_chunking(rng, tmp_path):
    x = blobs(rng, 3000)
    ref = PartitionTree(4, min_samples=20, max_samples=None, keep_labels=True).fit(x)
    write_array(da.from_array(x, chunks=(700, -1)), tmp_path / "emb.zarr", chunk_rows=700)
    lazy = read_array(tmp_path / "emb.zarr")
    got = PartitionTree(4, min_samples=20, max_samples=None, keep_labels=True).fit(lazy)
    np.testing.assert_array_equal(got.children_, ref.children_)
    np.testing.assert_allclose(got.directions_, ref.directions_, atol=1e-9)
    np.testing.assert_allclose(got.cell_centroids_, ref.cell_centroids_, rtol=1e-9)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    pred = got.predict(lazy)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), ref.labels_)


def test_sampled_tree_still_assigns_every_row(rng):
    x = blobs(rng, 5000)
    est = PartitionTree(5, min_samples=10, max_samples=800, keep_labels=True).fit(x)
    check_cells(est, x)


def test_neighbours_symmetric_and_from_shared_faces(rng):
    x = blobs(rng, 3000, d=2, k=3)
    est = KMeansCells(12, keep_labels=True).fit(x)
    pairs = {(c, int(j)) for c in range(est.n_cells_) for j in est.neighbors_of(c)}
    assert pairs and all((j, c) in pairs for c, j in pairs)
    assert all(c != j for c, j in pairs)
    _, _, second = nearest_centroids(x, est.cell_centroids_, second=True)
    first = est.labels_[::4]
    seen = {(int(a), int(b)) for a, b in zip(first, second, strict=True) if a != b}
    assert seen <= pairs


def test_kmeans_recovers_separated_blobs(rng):
    centers = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    truth = rng.integers(0, 3, 900)
    x = centers[truth] + rng.normal(size=(900, 2))
    est = KMeansCells(3, keep_labels=True, max_iter=30).fit(x)
    for t in range(3):
        assert np.unique(est.labels_[truth == t]).size == 1


def test_save_load_round_trip(rng, tmp_path):
    x = blobs(rng, 1000)
    for est in (PartitionTree(3, min_samples=5), KMeansCells(7)):
        est.fit(x)
        save(est, tmp_path / "m.zarr", overwrite=True)
        back = load(tmp_path / "m.zarr")
        np.testing.assert_array_equal(back.predict(x), est.predict(x))
        np.testing.assert_array_equal(back.neighbor_indices_, est.neighbor_indices_)


def test_errors(rng):
    x = blobs(rng, 200)
    with pytest.raises(InvalidParameterError, match="max_depth"):
        PartitionTree(-1).fit(x)
    with pytest.raises(InvalidParameterError, match="min_samples"):
        PartitionTree(2, min_samples=0).fit(x)
    with pytest.raises(InvalidParameterError, match="max_samples"):
        PartitionTree(2, max_samples=0).fit(x)
    with pytest.raises(InvalidParameterError, match="n_clusters"):
        KMeansCells(500).fit(x)
    est = PartitionTree(2).fit(x)
    with pytest.raises(DimensionMismatchError):
        est.predict(x[:, :3])


@pytest.mark.cluster
def test_tree_on_process_cluster(rng, tmp_path, process_client):
    """Out-of-core build from a Zarr store on a 2-process cluster equals the in-process build."""
    x = blobs(rng, 2000)
    write_array(x, tmp_path / "emb.zarr", chunk_rows=500)
    ref = PartitionTree(3, min_samples=10, max_samples=None, keep_labels=True).fit(x)
    with dask.config.set(scheduler=process_client):
        got = PartitionTree(3, min_samples=10, max_samples=None,
                            keep_labels=True).fit(read_array(tmp_path / "emb.zarr"))
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    np.testing.assert_allclose(got.cell_centroids_, ref.cell_centroids_, rtol=1e-9)
