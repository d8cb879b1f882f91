"""The one-pass store sample: exact error curves, the row sample, one read per chunk."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from veob_dask.diagnostics import (
    reconstruct,
    sample_store,
)
from veob_dask.errors import DimensionMismatchError
from veob_dask.io import read_array
from veob_dask.io.ingest import ingest
from veob_dask.io.store import ZarrRowSource
from veob_dask.spectral import SpectralTransform2D
from veob_dask.svd import SVDEmbedding


def _residuals(x: np.ndarray, v: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    """Exact ‖X − X_j‖² / ‖X‖² for j = 0..k, by rebuilding X from j components."""
    xc = x - (0 if mean is None else mean)
    total = float(np.sum(xc**2))
    return np.array([np.sum((xc - xc @ v[:j].T @ v[:j]) ** 2) / total
                     for j in range(v.shape[0] + 1)])


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("chunks", [60, 250, 1200])
def test_one_pass_gives_the_exact_error_curve_and_sample(low_rank, center, chunks):
    labels = np.arange(low_rank.shape[0]) % 7
    model = SVDEmbedding(n_components=8, center=center).fit(low_rank)
    s = sample_store(da.from_array(low_rank, chunks=(chunks, 40)), model,
                     labels=da.from_array(labels, chunks=100), n_sample=300, n_keep=5,
                     random_state=3)
    np.testing.assert_allclose(s.relative_error(),
                               _residuals(low_rank, model.components_, model.mean_),
                               rtol=1e-9, atol=1e-12)
    assert s.rows.size == 300 and np.all(np.diff(s.rows) > 0)
    np.testing.assert_allclose(s.embedding, model.transform(low_rank[s.rows]), atol=1e-9)
    np.testing.assert_array_equal(s.labels, labels[s.rows])
    assert set(s.data_rows) <= set(s.rows) and s.data_rows.size == 5
    np.testing.assert_array_equal(s.data, low_rank[s.data_rows])
    assert (s.n_rows, s.n_chunks) == (1200, -(-1200 // chunks))


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize(("basis", "keep"), [("dct2", None), ("paper", None), ("dct2", (3, 4))])
def test_pipeline_pass_equals_the_curve_in_feature_space(basis, keep, center):
    # dct2 with every harmonic is orthonormal: the pass projects raw rows on M V^T instead of
    # transforming the store; the paper's basis and a cropped DCT go through the transform.
    imgs = np.random.default_rng(8).random((300, 5, 6)) + np.linspace(0, 1, 30).reshape(5, 6)
    pipe = Pipeline([("spectral", SpectralTransform2D(basis=basis, keep=keep)),
                     ("svd", SVDEmbedding(n_components=5, center=center))]).fit(imgs)
    s = sample_store(da.from_array(imgs, chunks=(70, 5, 6)), pipe, n_sample=40)
    feats = pipe[0].transform(imgs)
    svd = pipe[-1]
    np.testing.assert_allclose(s.relative_error(), _residuals(feats, svd.components_, svd.mean_),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s.embedding, pipe.transform(imgs[s.rows]), atol=1e-9)


def test_the_sample_is_seeded_and_the_energy_matches_the_spectrum(low_rank):
    model = SVDEmbedding(n_components=5).fit(low_rank)
    x = da.from_array(low_rank, chunks=(200, 40))
    a = sample_store(x, model, n_sample=50, random_state=1)
    b = sample_store(x, model, n_sample=50, random_state=1)
    c = sample_store(x, model, n_sample=50, random_state=2)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert not np.array_equal(a.rows, c.rows)
    # on the training data the energy along v_i is sigma_i^2
    np.testing.assert_allclose(a.component_energy, model.singular_values_**2, rtol=1e-9)


def test_sparse_blocks_give_the_dense_result(low_rank):
    x = np.where(np.abs(low_rank) > 2.0, low_rank, 0.0)
    model = SVDEmbedding(n_components=4, center=True).fit(x)
    dense = sample_store(da.from_array(x, chunks=(300, 40)), model, n_sample=40)
    blocks = da.from_array(x, chunks=(300, 40)).map_blocks(sp.csr_matrix,
                                                           meta=sp.csr_matrix((0, 40)))
    sparse = sample_store(blocks, model, n_sample=40)
    np.testing.assert_allclose(sparse.relative_error(), dense.relative_error(), atol=1e-12)
    np.testing.assert_allclose(sparse.embedding, dense.embedding, atol=1e-9)
    assert sparse.data is None  # raw rows are kept for dense (image) stores only


def test_the_pass_reads_each_stored_chunk_once(tmp_path, monkeypatch):
    imgs = np.random.default_rng(0).random((130, 5, 5)).astype(np.float32)
    ingest(imgs, tmp_path / "d.zarr", labels=np.arange(130) % 3, chunk_rows=20)
    x = read_array(tmp_path / "d.zarr")
    pipe = Pipeline([("spectral", SpectralTransform2D()),
                     ("svd", SVDEmbedding(n_components=6))]).fit(x)
    reads: list[tuple[int, int]] = []
    original = ZarrRowSource.__getitem__

    def counting(self, key):
        if self.name == "X":
            rows = key[0] if isinstance(key, tuple) else key
            reads.append((rows.start, rows.stop))
        return original(self, key)

    monkeypatch.setattr(ZarrRowSource, "__getitem__", counting)
    s = sample_store(x, pipe, labels=read_array(tmp_path / "d.zarr", "y"), n_sample=30)
    assert sorted(reads) == [(lo, min(lo + 20, 130)) for lo in range(0, 130, 20)]
    assert s.data.shape == (16, 5, 5)
    np.testing.assert_array_equal(s.labels, s.rows % 3)


def test_store_with_other_features_is_refused(low_rank):
    model = SVDEmbedding(n_components=3).fit(low_rank)
    with pytest.raises(DimensionMismatchError, match="fitted on 40"):
        sample_store(da.ones((10, 12), chunks=5), model)
    with pytest.raises(DimensionMismatchError, match="label array has 3 entries"):
        sample_store(da.from_array(low_rank), model, labels=da.ones(3))


def test_reconstruct_through_the_spectral_step_is_exact_with_every_component():
    imgs = np.random.default_rng(1).random((30, 4, 4))
    pipe = Pipeline([("spectral", SpectralTransform2D()),
                     ("svd", SVDEmbedding(n_components=16))]).fit(imgs)
    np.testing.assert_allclose(reconstruct(pipe, imgs[:3], 16), imgs[:3], atol=1e-9)
    errors = [np.sum((reconstruct(pipe, imgs, j) - imgs) ** 2) for j in (1, 4, 8, 16)]
    assert errors == sorted(errors, reverse=True)
