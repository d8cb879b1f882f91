"""SubdomainIndex: per-subdomain indexes, filtered and routed search, one merged ranking."""

from __future__ import annotations

import numpy as np
import pytest

from veob_dask import load
from veob_dask.errors import (
    DimensionMismatchError,
    InvalidParameterError,
    NotFittedError,
    StoreFormatError,
)
from veob_dask.index import CellIndex, SubdomainIndex, exact_kneighbors
from veob_dask.subdomain import SubdomainEmbedding

META = {"0": {"lang": "en", "year": 2008}, "1": {"lang": "fr", "year": 2012},
        "2": {"lang": "en", "year": 2015}, "3": {"lang": "de", "year": 2019}}


@pytest.fixture
def affine(rng):
    """Rows of each subdomain lying exactly on its own 3-d affine subspace of R^12."""
    m, d, k = 4, 12, 3
    keys = rng.integers(0, m, size=1200)
    bases = [np.linalg.qr(rng.normal(size=(d, k)))[0].T for _ in range(m)]
    means = rng.normal(size=(m, d))
    x = np.stack([means[c] + rng.normal(size=k) @ bases[c] for c in keys])
    model = SubdomainEmbedding(k, center=True, metadata=META).fit(x, domains=keys)
    return x, keys, model


@pytest.mark.parametrize("method", ["exact", "cells", "kmeans"])
def test_merged_ranking_is_the_global_answer_when_rows_lie_in_their_subspaces(affine, rng,
                                                                              method):
    # D(q, x) = |z_q - z_x|^2 + e_q is |q - x|^2 exactly when x is its own reconstruction, so
    # searching every subdomain and merging must give brute force over all rows, in order.
    x, keys, model = affine
    index = SubdomainIndex(method, routes=4, n_probe="all").fit(model, x, keys)
    q = x[rng.choice(x.shape[0], 40, replace=False)] + 0.5 * rng.normal(size=(40, 12))
    res = index.search(q, 15)
    want_idx, want_sq = exact_kneighbors(q, x, 15)
    np.testing.assert_array_equal(res.indices, want_idx)
    np.testing.assert_allclose(res.sq_distances, want_sq, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(res.domains, keys[res.indices])
    assert res.routes.shape == res.shares.shape == (40, 4)


def test_distance_is_to_the_reconstruction_in_the_rows_subdomain(rng):
    # rows off their subspaces: D is |q - x_hat|^2 with x_hat the row's reconstruction
    x = rng.normal(size=(600, 8))
    keys = rng.integers(0, 3, size=600)
    model = SubdomainEmbedding(2).fit(x, domains=keys)
    index = SubdomainIndex("exact", routes=3).fit(model, x, keys)
    res = index.search(x[:20], 5)
    z = model.transform(x, domains=keys)
    codes = model.codes(keys)
    recon = np.einsum("nk,nkd->nd", z, model.components_[codes])
    for i in range(20):
        want = np.sum((x[i] - recon[res.indices[i]]) ** 2, axis=1)
        np.testing.assert_allclose(res.sq_distances[i], want, rtol=1e-9)
        full = np.sort(np.sum((x[i] - recon) ** 2, axis=1))[:5]
        np.testing.assert_allclose(res.sq_distances[i], full, rtol=1e-9)


def test_filtered_query_answers_only_from_matching_subdomains(affine, rng):
    x, keys, model = affine
    index = SubdomainIndex("exact").fit(model, x, keys)
    q = x[:30] + 0.1 * rng.normal(size=(30, 12))
    res = index.search(q, 8, where=["lang=en", "year>=2010"])
    assert set(np.unique(res.domains)) == {2}
    res = index.search(q, 8, where="lang=en")
    assert set(np.unique(res.domains)) <= {0, 2}
    assert set(np.unique(res.routes)) == {0, 2}
    # the answer is the exact search restricted to the matching rows
    allowed = np.flatnonzero(np.isin(keys, [0, 2]))
    want_idx, _ = exact_kneighbors(q, x[allowed], 8)
    np.testing.assert_array_equal(res.indices, allowed[want_idx])
    with pytest.raises(InvalidParameterError, match="no subdomain matches"):
        index.search(q, 8, where="lang=it")


def test_routing_by_content_searches_the_best_subdomains(affine, rng):
    x, keys, model = affine
    index = SubdomainIndex("exact").fit(model, x, keys)
    q = x[:50] + 0.01 * rng.normal(size=(50, 12))
    one = index.search(q, 5)
    assert one.routes.shape == (50, 1)
    np.testing.assert_array_equal(one.routes[:, 0], keys[:50])
    assert np.all(one.domains == one.routes[:, :1])
    assert np.all(one.shares > 0.95)
    two = index.search(q, 5, routes=2)
    assert two.routes.shape == (50, 2)
    np.testing.assert_array_equal(two.indices[:, 0], np.arange(50))


def test_small_subdomains_pad_and_errors(rng):
    x = rng.normal(size=(103, 5))
    keys = np.r_[np.zeros(100, dtype=int), np.ones(3, dtype=int)]
    model = SubdomainEmbedding(2).fit(x, domains=keys)
    with pytest.raises(NotFittedError):
        SubdomainIndex().search(x[:2], 3)
    index = SubdomainIndex("exact").fit(model, x, keys)
    res = index.search(x[100:101], 5, where="key=1")
    assert res.indices[0, :3].tolist() != [-1, -1, -1] and res.indices[0, 3:].tolist() == [-1, -1]
    assert np.all(np.isinf(res.sq_distances[0, 3:]))
    with pytest.raises(DimensionMismatchError, match="original data"):
        index.search(model.transform(x[:2], domains=keys[:2]), 3)
    with pytest.raises(InvalidParameterError, match="n_neighbors"):
        index.search(x[:2], 0)


@pytest.mark.parametrize("backend", ["hnswlib", "faiss-flat", "faiss-ivf"])
def test_vector_database_adapters_filter_inside_the_engine(rng, backend):
    pytest.importorskip("faiss" if backend.startswith("faiss") else "hnswlib")
    from veob_dask.index.adapters import VectorDBIndex

    x = rng.normal(size=(2000, 6)).astype(np.float32)
    index = VectorDBIndex(backend, nlist=8, n_probe=8, n_threads=1).fit(x)
    allowed = np.flatnonzero(rng.random(2000) < 0.1)
    sq, idx = index.kneighbors(x[:20], 5, allowed=allowed)
    assert np.isin(idx, allowed).all()
    want, want_sq = exact_kneighbors(x[:20], x[allowed], 5)
    assert (idx == allowed[want]).mean() > 0.95
    np.testing.assert_allclose(sq[:, 0], want_sq[:, 0], rtol=1e-4, atol=1e-4)
    with pytest.raises(InvalidParameterError, match="row numbers"):
        index.kneighbors(x[:2], 1, allowed=[5000])


@pytest.mark.parametrize("method", ["exact", "cells"])
def test_save_load_round_trip(affine, rng, tmp_path, method):
    x, keys, model = affine
    index = SubdomainIndex(method, n_probe=2).fit(model, x, keys)
    index.save(tmp_path / "i.zarr")
    back = SubdomainIndex.load(tmp_path / "i.zarr")
    q = x[:20] + 0.1 * rng.normal(size=(20, 12))
    for kw in ({"routes": 2}, {"where": "lang=en"}):
        a, b = index.search(q, 6, **kw), back.search(q, 6, **kw)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.sq_distances, b.sq_distances)
    assert type(load(tmp_path / "i.zarr")) is SubdomainIndex
    with pytest.raises(StoreFormatError, match="not a veob_dask index store"):
        SubdomainIndex.load(tmp_path / "i.zarr" / "model")


def test_load_refuses_other_and_damaged_indexes(affine, tmp_path):
    import zarr

    x, keys, model = affine
    CellIndex().fit(x).save(tmp_path / "cells.zarr")
    with pytest.raises(StoreFormatError, match="not a subdomain index"):
        SubdomainIndex.load(tmp_path / "cells.zarr")
    SubdomainIndex("exact").fit(model, x, keys).save(tmp_path / "i.zarr")
    codes = zarr.open_array(str(tmp_path / "i.zarr" / "row_codes"), mode="r+")
    codes[0] = 7  # a subdomain the model does not have
    with pytest.raises(StoreFormatError, match="damaged"):
        SubdomainIndex.load(tmp_path / "i.zarr")
    codes[0] = int(model.codes([keys[0]])[0])  # restored
    SubdomainIndex.load(tmp_path / "i.zarr")
    order = zarr.open_array(str(tmp_path / "i.zarr" / "order"), mode="r+")
    order[0] = order[1]  # no longer a permutation
    with pytest.raises(StoreFormatError, match="damaged"):
        SubdomainIndex.load(tmp_path / "i.zarr")
