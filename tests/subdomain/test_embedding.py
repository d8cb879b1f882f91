"""SubdomainEmbedding: every solver against one SVDEmbedding per subdomain, passes under a memory
budget, routing by content and by metadata, Pipelines with metadata routing."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import sklearn
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from veob_dask import SVDEmbedding, load, save
from veob_dask.errors import DataError, DimensionMismatchError, InvalidParameterError
from veob_dask.subdomain import SubdomainEmbedding
from veob_dask.subdomain._passes import _leaf, live_accumulators, parse_memory, plan_fit


def _subspace_data(rng, n=1500, m=5, d=16, spectrum=None):
    """Rows of subdomain j drawn on its own random basis with a decaying spectrum."""
    keys = rng.integers(0, m, size=n)
    bases = [np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(m)]
    s = np.geomspace(10, 0.1, d) if spectrum is None else spectrum
    x = np.stack([bases[k] @ (rng.normal(size=d) * s) for k in keys])
    return x, keys, bases


@pytest.fixture
def grouped(rng):
    x, keys, _ = _subspace_data(rng, n=900, m=3, d=8,
                                spectrum=np.array([9, 5, 3, 1, .5, .3, .2, .1]))
    return x, keys


def _assert_same_subspace(a, b, atol):
    # |cosines| of matched directions are 1 when the bases agree up to sign
    np.testing.assert_allclose(np.abs(np.sum(a * b, axis=1)), 1.0, atol=atol)


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize(("solver", "rtol"), [("gram", 1e-10), ("incremental", 1e-5),
                                              ("randomized", 1e-6)])
def test_solvers_match_separate_fits(grouped, solver, rtol, center):
    x, keys = grouped
    model = SubdomainEmbedding(3, solver=solver, center=center, n_iter=4).fit(
        da.from_array(x, chunks=(200, 8)), domains=da.from_array(keys, chunks=200))
    assert model.solver_ == solver
    assert model.n_passes_ == (5 if solver == "randomized" else 1)
    z = model.transform(x, domains=keys)
    for j, key in enumerate(model.domains_):
        ref = SVDEmbedding(3, center=center).fit(x[keys == key])
        np.testing.assert_allclose(model.singular_values_[j], ref.singular_values_, rtol=rtol)
        _assert_same_subspace(model.components_[j], ref.components_, atol=10 * rtol)
        if solver == "gram":
            np.testing.assert_allclose(model.components_[j], ref.components_, atol=1e-8)
            np.testing.assert_allclose(z[keys == key], ref.transform(x[keys == key]),
                                       atol=1e-8)
    assert model.n_samples_seen_ == model.domain_counts_.sum() == 900
    np.testing.assert_allclose(model.energy_, [np.sum((x[keys == k] - (
        x[keys == k].mean(0) if center else 0)) ** 2) for k in model.domains_], rtol=1e-10)


def test_passes_under_a_small_budget_give_the_one_pass_result(rng):
    x, keys, _ = _subspace_data(rng, n=1200, m=6)
    xd, kd = da.from_array(x, chunks=(300, 16)), da.from_array(keys, chunks=300)
    one = SubdomainEmbedding(4, solver="gram", memory_budget=None).fit(xd, domains=kd)
    plan = plan_fit(6, 16, solver="gram", rank=4, n_iter=2, budget=None, threads=1,
                    split_every=2, n_leaves=4, chunk_bytes=300 * 16 * 8, chunk_rows=300,
                    out_bytes=8 * 6 * 4 * 16, sparse=False)
    # a budget for about two subdomains per pass
    budget = plan.estimate_bytes - 4 * plan.live * plan.per_key_bytes
    many = SubdomainEmbedding(4, solver="gram", memory_budget=budget).fit(xd, domains=kd)
    assert one.n_passes_ == 1 and many.n_passes_ == 3
    assert many.memory_estimate_ <= budget
    np.testing.assert_allclose(many.components_, one.components_, atol=1e-12)
    np.testing.assert_allclose(many.singular_values_, one.singular_values_, rtol=1e-12)


def test_auto_takes_gram_in_one_pass_else_incremental():
    kw = {"n_iter": 2, "threads": 2, "split_every": 2, "n_leaves": 100,
          "chunk_bytes": 5000 * 784 * 4, "chunk_rows": 5000, "sparse": False}
    # 1,000 subdomains x 64 features: every Gram matrix fits 1 GB in one pass
    many = plan_fit(1000, 64, solver="auto", rank=40, budget=10**9,
                    out_bytes=8 * 1000 * 30 * 64, **kw)
    assert (many.solver, many.n_groups, many.passes) == ("gram", 1, 1)
    assert many.estimate_bytes <= 10**9
    # 200 x 784: 200 Gram matrices of 785² (0.99 GB) cannot; rank-40 summaries can, in one pass
    wide = plan_fit(200, 784, solver="auto", rank=40, budget=10**9,
                    out_bytes=8 * 200 * 30 * 784, **kw)
    assert (wide.solver, wide.passes) == ("incremental", 1)
    assert wide.estimate_bytes <= 10**9
    forced = plan_fit(200, 784, solver="gram", rank=40, budget=10**9,
                      out_bytes=8 * 200 * 30 * 784, **kw)
    assert forced.passes > 1 and forced.estimate_bytes <= 10**9
    with pytest.raises(InvalidParameterError, match="cannot hold one subdomain per pass"):
        plan_fit(200, 784, solver="gram", rank=40, budget=60 * 10**6,
                 out_bytes=8 * 200 * 30 * 784, **kw)
    with pytest.raises(InvalidParameterError, match="fitted bases alone"):
        plan_fit(200, 784, solver="auto", rank=40, budget=10**6,
                 out_bytes=8 * 200 * 30 * 784, **kw)


def test_live_accumulators_bound_grows_with_depth_only():
    assert live_accumulators(1, 2, 2) == 2
    assert live_accumulators(1024, 2, 2) == 2 * 3 + 10
    assert live_accumulators(10**6, 2, 2) == 2 * 3 + 20


def test_chunk_task_holds_only_the_subdomains_present(rng):
    x = rng.normal(size=(50, 4))
    keys = np.r_[np.full(20, 3), np.full(30, 7)]
    domains = np.arange(10)
    out = _leaf([x], [keys], domains, 0, 10, "gram", {}, None)
    assert sorted(out) == [3, 7]
    np.testing.assert_allclose(out[3][:4, :4], x[:20].T @ x[:20])
    assert _leaf([x], [keys], domains, 0, 5, "gram", {}, None).keys() == {3}


@pytest.mark.parametrize(("value", "expected"), [("1GB", 10**9), ("512MiB", 512 * 2**20),
                                                 (1234, 1234), ("2e6", 2 * 10**6), (None, None)])
def test_parse_memory(value, expected):
    assert parse_memory(value) == expected


@pytest.mark.parametrize("value", ["lots", 0, -5, "1XB", True])
def test_parse_memory_rejects(value):
    with pytest.raises(InvalidParameterError, match="memory_budget must be"):
        parse_memory(value)


def test_string_keys_and_energy_fraction(grouped):
    x, keys = grouped
    names = np.array(["alpha", "beta", "gamma"])[keys]
    ints = SubdomainEmbedding(3).fit(x, domains=keys)
    text = SubdomainEmbedding(3).fit(da.from_array(x, chunks=(250, 8)),
                                     domains=da.from_array(names.astype(object), chunks=250))
    assert text.domains_.tolist() == ["alpha", "beta", "gamma"]
    np.testing.assert_allclose(text.components_, ints.components_, atol=1e-12)
    frac = SubdomainEmbedding(0.95).fit(x, domains=keys)
    for j in range(3):
        kept = frac.explained_energy_ratio_[j, :frac.ranks_[j]].sum()
        assert kept >= 0.95 > kept - frac.explained_energy_ratio_[j, frac.ranks_[j] - 1]
        assert not frac.components_[j, frac.ranks_[j]:].any()


def test_routing_by_content_finds_the_generating_subdomain(rng):
    x, keys, _ = _subspace_data(rng, n=3000, m=5, d=20,
                                spectrum=np.r_[np.full(4, 10.0), np.full(16, 0.05)])
    model = SubdomainEmbedding(4).fit(x, domains=keys)
    assert (model.predict(x) == keys).mean() > 0.99
    got, shares = model.route(x[:200], 3)
    assert got.shape == shares.shape == (200, 3)
    # shares are what each basis captures, best first
    for i in range(5):
        for slot in range(3):
            j = int(np.searchsorted(model.domains_, got[i, slot]))
            want = np.sum((model.components_[j] @ x[i]) ** 2) / np.sum(x[i] ** 2)
            assert shares[i, slot] == pytest.approx(want, rel=1e-10)
    assert np.all(np.diff(shares, axis=1) <= 1e-12)
    lazy, lazy_shares = model.route(da.from_array(x[:200], chunks=(64, 20)), 3)
    assert isinstance(lazy, da.Array) and lazy.chunks[0] == (64, 64, 64, 8)
    np.testing.assert_array_equal(lazy.compute(), got)
    np.testing.assert_allclose(lazy_shares.compute(), shares)
    # transform without keys: each row in the basis it is routed to
    np.testing.assert_allclose(model.transform(x[:50]), model.transform(
        x[:50], domains=model.predict(x[:50])))


def test_centered_routing_is_the_nearest_affine_subspace(rng):
    x, keys, _ = _subspace_data(rng, n=1200, m=4, d=10)
    x = x + 5.0 * rng.normal(size=(4, 10))[keys]
    model = SubdomainEmbedding(3, center=True).fit(x, domains=keys)
    got, _, resid = model.route(x[:40], 4, return_residual=True)
    for i in range(40):
        dist = []
        for j in range(4):
            r = x[i] - model.mean_[j]
            dist.append(r @ r - np.sum((model.components_[j] @ r) ** 2))
        np.testing.assert_allclose(resid[i], np.sort(dist), rtol=1e-9, atol=1e-9)
        assert got[i, 0] == model.domains_[int(np.argmin(dist))]


def test_metadata_filter_selects_and_restricts_routes(grouped):
    x, keys = grouped
    meta = {"0": {"lang": "en", "year": 2008}, "1": {"lang": "fr", "year": 2012},
            2: {"lang": "en", "year": 2015}}
    model = SubdomainEmbedding(2, metadata=meta).fit(x, domains=keys)
    assert model.select("lang=en").tolist() == [0, 2]
    assert model.select(["lang=en", "year>=2010"]).tolist() == [2]
    assert model.select({"year": ("<", 2013), "lang": ["fr", "de"]}).tolist() == [1]
    assert model.select("key in 1,2").tolist() == [1, 2]
    assert model.select("n_samples>0").tolist() == [0, 1, 2]
    routed, _ = model.route(x, 2, where="lang=en")
    assert set(np.unique(routed)) <= {0, 2}
    with pytest.raises(InvalidParameterError, match="no subdomain matches"):
        model.route(x, 1, where="lang=de")
    with pytest.raises(InvalidParameterError, match=r"n_routes must be an int in \[1, 2\]"):
        model.route(x, 3, where="lang=en")
    assert model.domain_model(1)["metadata"] == {"lang": "fr", "year": 2012}


def test_transform_is_lazy_for_dask_and_round_trips(grouped, tmp_path):
    x, keys = grouped
    model = SubdomainEmbedding(2, metadata={"0": {"source": "a"}}).fit(x, domains=keys)
    lazy = model.transform(da.from_array(x, chunks=(300, 8)), domains=keys)
    assert isinstance(lazy, da.Array) and lazy.chunks == ((300, 300, 300), (2,))
    save(model, tmp_path / "m.zarr")
    back = load(tmp_path / "m.zarr")
    np.testing.assert_allclose(back.transform(x, domains=keys), lazy.compute())
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.domain_model(0)["metadata"] == {"source": "a"}
    assert back.select("source=a").tolist() == [0]


def test_pipeline_routes_keys_through_metadata_routing(grouped):
    x, keys = grouped
    with sklearn.config_context(enable_metadata_routing=True):
        step = SubdomainEmbedding(2).set_fit_request(domains=True).set_transform_request(
            domains=True)
        pipe = Pipeline([("scale", FunctionTransformer(lambda a: 2.0 * a)), ("sub", step)])
        pipe.fit(x, domains=keys)
        z = pipe.transform(x, domains=keys)
    ref = SubdomainEmbedding(2).fit(2.0 * x, domains=keys)
    np.testing.assert_allclose(z, ref.transform(2.0 * x, domains=keys))
    np.testing.assert_allclose(pipe[-1].components_, ref.components_)


def test_errors(grouped):
    x, keys = grouped
    with pytest.raises(DimensionMismatchError, match="one key per row"):
        SubdomainEmbedding(2).fit(x, domains=keys[:10])
    with pytest.raises(DataError, match="must be integers or strings"):
        SubdomainEmbedding(2).fit(x, domains=keys.astype(float))
    with pytest.raises(InvalidParameterError, match="solver must be one of"):
        SubdomainEmbedding(2, solver="magic").fit(x, domains=keys)
    with pytest.raises(InvalidParameterError, match="split_every must be an int >= 2"):
        SubdomainEmbedding(2, split_every=1).fit(x, domains=keys)
    with pytest.raises(InvalidParameterError, match="reserved attribute"):
        SubdomainEmbedding(2, metadata={"0": {"key": 1}}).fit(x, domains=keys)
    with pytest.raises(InvalidParameterError, match="JSON-serialisable"):
        SubdomainEmbedding(2, metadata={"0": {"when": object()}}).fit(x, domains=keys)
    model = SubdomainEmbedding(2).fit(x, domains=keys)
    with pytest.raises(DataError, match="subdomain 7 was not seen"):
        model.transform(x[:5], domains=np.full(5, 7))
    with pytest.raises(DimensionMismatchError, match="features"):
        model.route(x[:, :5])


@pytest.mark.parametrize("solver", ["gram", "incremental", "randomized"])
def test_sparse_rows_give_the_dense_result(rng, solver):
    import scipy.sparse as sp

    dense = rng.normal(size=(600, 30)) * np.geomspace(10, 0.1, 30) * (rng.random((600, 30)) < 0.3)
    keys = rng.integers(0, 3, size=600)
    ref = SubdomainEmbedding(3, solver="gram").fit(dense, domains=keys)
    got = SubdomainEmbedding(3, solver=solver, n_iter=6).fit(sp.csr_matrix(dense), domains=keys)
    np.testing.assert_allclose(got.singular_values_, ref.singular_values_, rtol=1e-4)
    for j in range(3):
        _assert_same_subspace(got.components_[j], ref.components_[j], atol=1e-3)
    np.testing.assert_allclose(got.transform(sp.csr_matrix(dense[:20]), domains=keys[:20]),
                               ref.transform(dense[:20], domains=keys[:20]), atol=1e-3 * 30)
