"""The retrieval protocols against brute force numpy."""

from __future__ import annotations

import dask.array as da
import numpy as np

from veob_dask.evaluation import evaluate_retrieval, label_rank_hits, nearest_by_label


def test_nearest_by_label_matches_brute_force(rng):
    train = rng.normal(size=(500, 6))
    labels = rng.integers(0, 7, size=500)
    q = rng.normal(size=(60, 6))
    res = nearest_by_label(da.from_array(q, chunks=17), da.from_array(train, chunks=90), labels,
                           knn=4)
    d2 = ((q[:, None, :] - train[None]) ** 2).sum(-1)
    for j, c in enumerate(res["classes"]):
        np.testing.assert_allclose(res["label_dist"][:, j], d2[:, labels == c].min(1), rtol=1e-4)
    np.testing.assert_array_equal(res["knn_idx"], np.argsort(d2, axis=1)[:, :4])


def test_protocols_differ_as_documented(rng):
    train = rng.normal(size=(400, 5))
    labels = rng.integers(0, 10, size=400)
    q = rng.normal(size=(80, 5))
    y = rng.integers(0, 10, size=80)
    got = evaluate_retrieval(q, y, train, labels)
    d2 = ((q[:, None, :] - train[None]) ** 2).sum(-1)
    nn = labels[np.argsort(d2, axis=1)]
    assert got["top1_accuracy"] == np.mean(nn[:, 0] == y)
    assert got["knn3_hit_rate"] == np.mean((nn[:, :3] == y[:, None]).any(1))
    assert got["top3_hit_rate"] == np.mean(label_rank_hits(nn, y, top=3))
    assert got["top3_hit_rate"] >= got["knn3_hit_rate"]


def test_label_rank_hits_counts_distinct_labels():
    nl = np.array([[1, 1, 1, 2, 3], [4, 4, 5, 5, 6]])
    np.testing.assert_array_equal(label_rank_hits(nl, np.array([3, 7]), top=3), [True, False])
