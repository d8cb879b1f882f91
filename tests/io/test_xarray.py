"""Every artifact opens in xarray: arrays carry Zarr v3 dimension names that agree in size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask import SVDEmbedding, save
from veob_dask.cli import main
from veob_dask.index import CellIndex
from veob_dask.io import write_ragged
from veob_dask.io.ingest import ingest
from veob_dask.io.sparse import write_sparse
from veob_dask.text.wordvectors import WordVectors

xr = pytest.importorskip("xarray")


def _open(path: Path):
    return xr.open_zarr(path, consolidated=False)


def test_dataset_embedding_and_model_open_in_xarray(tmp_path: Path, low_rank) -> None:
    labels = np.arange(low_rank.shape[0]) % 3
    ingest(low_rank, tmp_path / "data.zarr", labels=labels, chunk_rows=300)
    ds = _open(tmp_path / "data.zarr")
    assert ds["X"].dims == ("sample", "feature") and ds["y"].dims == ("sample",)
    np.testing.assert_array_equal(ds["y"].values, labels)
    assert ds.attrs["veob_dask"]["kind"] == "dataset"

    save(SVDEmbedding(5, center=True).fit(low_rank), tmp_path / "model.zarr")
    model = _open(tmp_path / "model.zarr")
    assert model["components_"].dims == ("component", "feature")
    assert model.sizes["component"] == 5 and model.sizes["feature"] == low_rank.shape[1]
    assert model["mean_"].dims == ("feature",)
    assert model.attrs["veob_dask"]["estimator"] == "SVDEmbedding"

    assert main(["transform", str(tmp_path / "model.zarr"), str(tmp_path / "data.zarr"),
                 "-o", str(tmp_path / "emb.zarr"), "--scheduler", "sync"]) == 0
    emb = _open(tmp_path / "emb.zarr")
    assert emb["X"].dims == ("sample", "feature") and emb.sizes["feature"] == 5
    assert emb["y"].dims == ("sample",)


def test_images_sparse_ragged_words_and_index_open_in_xarray(tmp_path: Path, rng) -> None:
    ingest(rng.integers(0, 255, size=(20, 4, 3), dtype=np.uint8), tmp_path / "img.zarr")
    assert _open(tmp_path / "img.zarr")["X"].dims == ("sample", "height", "width")

    write_sparse(sp.random(30, 40, density=0.1, random_state=1, format="csr"),
                 tmp_path / "sp.zarr")
    assert set(_open(tmp_path / "sp.zarr").data_vars) == {"indptr", "indices", "data"}

    write_ragged([[1, 2, 3], [], [4]], tmp_path / "r.zarr")
    r = _open(tmp_path / "r.zarr")
    assert r["values"].dims == ("value",) and r.sizes["offset"] == 4

    WordVectors(["a", "b"], np.eye(2)).save(tmp_path / "w.zarr")
    assert _open(tmp_path / "w.zarr")["vectors"].dims == ("word", "dim")

    emb = rng.normal(size=(300, 4))
    CellIndex("tree", min_samples=20).fit(emb).save(tmp_path / "ix.zarr")
    ix = _open(tmp_path / "ix.zarr")
    assert ix["vectors"].dims == ("member", "feature") and ix.sizes["member"] == 300
