"""SubdomainEmbedding against one SVDEmbedding per subdomain."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from veob_dask import SVDEmbedding, load, save
from veob_dask.errors import DataError, DimensionMismatchError
from veob_dask.subdomain import SubdomainEmbedding


@pytest.fixture
def grouped(rng):
    # three subdomains with different dominant directions
    keys = rng.integers(0, 3, size=900)
    bases = [np.linalg.qr(rng.normal(size=(8, 8)))[0] for _ in range(3)]
    x = np.stack([bases[k] @ (rng.normal(size=8) * [9, 5, 3, 1, .5, .3, .2, .1]) for k in keys])
    return x, keys


@pytest.mark.parametrize("center", [False, True])
def test_matches_separate_fits_in_one_pass(grouped, center):
    x, keys = grouped
    model = SubdomainEmbedding(3, center=center).fit(da.from_array(x, chunks=(200, 8)),
                                                     domains=da.from_array(keys, chunks=200))
    z = model.transform(x, domains=keys)
    for j, key in enumerate(model.domains_):
        ref = SVDEmbedding(3, center=center).fit(x[keys == key])
        np.testing.assert_allclose(model.singular_values_[j], ref.singular_values_, rtol=1e-8)
        np.testing.assert_allclose(model.components_[j], ref.components_, atol=1e-8)
        np.testing.assert_allclose(z[keys == key], ref.transform(x[keys == key]), atol=1e-8)
    assert model.n_samples_.sum() == 900


def test_lazy_transform_and_round_trip(grouped, tmp_path):
    x, keys = grouped
    model = SubdomainEmbedding(2, metadata={"0": {"source": "a"}}).fit(x, domains=keys)
    lazy = model.transform(da.from_array(x, chunks=(300, 8)), domains=keys)
    assert isinstance(lazy, da.Array)
    save(model, tmp_path / "m.zarr")
    back = load(tmp_path / "m.zarr")
    np.testing.assert_allclose(back.transform(x, domains=keys), lazy.compute())
    assert back.domain_model(0)["metadata"] == {"source": "a"}


def test_errors(grouped):
    x, keys = grouped
    with pytest.raises(DimensionMismatchError, match="one key per row"):
        SubdomainEmbedding(2).fit(x, domains=keys[:10])
    with pytest.raises(DataError, match="must be integers"):
        SubdomainEmbedding(2).fit(x, domains=keys.astype(float))
    model = SubdomainEmbedding(2).fit(x, domains=keys)
    with pytest.raises(DataError, match="subdomain 7 was not seen"):
        model.transform(x[:5], domains=np.full(5, 7))
