"""Models saved as Zarr groups without pickle."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from sklearn.pipeline import Pipeline

from veob_dask import SpectralTransform2D, SVDEmbedding, load, save
from veob_dask.errors import StoreFormatError, StoreNotFoundError


def test_round_trip_svd(tmp_path, low_rank):
    emb = SVDEmbedding(5, center=True).fit(low_rank)
    save(emb, tmp_path / "m.zarr")
    back = load(tmp_path / "m.zarr")
    assert back.get_params() == emb.get_params()
    np.testing.assert_array_equal(back.components_, emb.components_)
    np.testing.assert_array_equal(back.mean_, emb.mean_)
    assert back.solver_ == emb.solver_ and back.n_samples_seen_ == emb.n_samples_seen_
    np.testing.assert_allclose(back.transform(low_rank), emb.transform(low_rank))


def test_round_trip_pipeline(tmp_path):
    imgs = np.random.default_rng(0).random((40, 4, 4))
    pipe = Pipeline([("spectral", SpectralTransform2D(basis="paper")), ("svd", SVDEmbedding(3))])
    pipe.fit(imgs.reshape(40, 16))
    save(pipe, tmp_path / "p.zarr")
    back = load(tmp_path / "p.zarr")
    np.testing.assert_allclose(back.transform(imgs.reshape(40, 16)),
                               pipe.transform(imgs.reshape(40, 16)))


def test_load_refuses_foreign_and_unknown(tmp_path):
    with pytest.raises(StoreNotFoundError):
        load(tmp_path / "missing.zarr")
    g = zarr.open_group(tmp_path / "x.zarr", mode="w")
    g.attrs["veob_dask"] = {"format_version": 1, "kind": "os:system", "params": {}}
    with pytest.raises(StoreFormatError, match="not a class this veob_dask can load"):
        load(tmp_path / "x.zarr")
    g.attrs["veob_dask"] = {"format_version": 99, "kind": "veob_dask.svd.embedding:SVDEmbedding"}
    with pytest.raises(StoreFormatError, match="format_version 99"):
        load(tmp_path / "x.zarr")
    zarr.open_group(tmp_path / "y.zarr", mode="w")
    with pytest.raises(StoreFormatError, match="not a saved veob_dask model"):
        load(tmp_path / "y.zarr")
