"""The cosine bases and the blockwise 2-D transform."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.fft

from veob_dask.errors import DimensionMismatchError, InvalidParameterError
from veob_dask.spectral import (
    SpectralTransform2D,
    cosine_basis,
    inverse_spectral_transform_2d,
    paper_cos,
    spectral_transform_2d,
)


def _forbid(*args, **kwargs):
    raise AssertionError("a graph was computed where only building was expected")


@pytest.mark.parametrize("n", [1, 2, 7, 28])
def test_dct2_basis_matches_scipy_and_is_orthonormal(n):
    c = cosine_basis(n, "dct2")
    x = np.random.default_rng(n).normal(size=(n, 3))
    np.testing.assert_allclose(c @ x, scipy.fft.dct(x, axis=0, norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(c @ c.T, np.eye(n), atol=1e-12)


def test_paper_basis_is_the_papers_formula():
    n, keep = 15, 6
    s = cosine_basis(n, "paper", keep)
    for m in range(1, keep + 1):
        for k in range(1, n + 1):
            assert s[m - 1, k - 1] == pytest.approx(np.cos(np.pi / (n - 1) * (n - m) * (k - 1)))
    # m = N is the constant harmonic; the paper's harmonics are mutually orthogonal over k.
    full = cosine_basis(n, "paper")
    np.testing.assert_allclose(full[-1], np.ones(n))
    np.testing.assert_allclose(paper_cos(n, 3, 4), s[2, 3])


def test_basis_errors():
    with pytest.raises(InvalidParameterError, match="basis must be one of"):
        cosine_basis(5, "fft")
    with pytest.raises(InvalidParameterError, match="keep must be in"):
        cosine_basis(5, "dct2", 6)


@pytest.mark.parametrize("chunks", [(7, 6, 5), (20, 6, 5), (3, 6, 5)])
def test_2d_transform_matches_dctn_for_any_row_chunking(chunks):
    imgs = np.random.default_rng(1).random((20, 6, 5)).astype(np.float32)
    out = spectral_transform_2d(da.from_array(imgs, chunks=chunks))
    assert out.chunks[0] == da.from_array(imgs, chunks=chunks).chunks[0]
    ref = scipy.fft.dctn(imgs.astype(np.float64), axes=(1, 2), norm="ortho").reshape(20, -1)
    np.testing.assert_allclose(out.compute(), ref, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32


def test_2d_transform_keeps_leading_harmonics_and_preserves_energy():
    imgs = np.random.default_rng(2).random((4, 8, 8))
    x = da.from_array(imgs, chunks=(2, 8, 8))
    full = spectral_transform_2d(x).compute()
    np.testing.assert_allclose((full**2).sum(1), (imgs**2).sum((1, 2)))  # Parseval
    kept = spectral_transform_2d(x, keep=(3, 2)).compute()
    np.testing.assert_allclose(kept, full.reshape(4, 8, 8)[:, :3, :2].reshape(4, 6))


def test_paper_basis_2d_is_the_double_sum():
    img = np.random.default_rng(3).random((1, 5, 4))
    out = spectral_transform_2d(da.from_array(img), basis="paper").compute().reshape(5, 4)
    ref = np.zeros((5, 4))
    for j in range(1, 6):
        for i in range(1, 5):
            for a in range(1, 6):
                for b in range(1, 5):
                    ref[j - 1, i - 1] += paper_cos(5, j, a) * paper_cos(4, i, b) * img[0, a - 1, b - 1]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_transform_is_lazy_and_deterministic():
    x = da.random.default_rng(0).random((30, 4, 4), chunks=(10, 4, 4))
    with dask.config.set(scheduler=_forbid):
        a = spectral_transform_2d(x)
        b = spectral_transform_2d(x)
    assert a.name == b.name


def test_transformer_type_in_type_out_and_errors():
    imgs = np.random.default_rng(4).random((6, 16))
    t = SpectralTransform2D().fit(imgs)
    assert t.image_shape_ == [4, 4]
    assert isinstance(t.transform(imgs), np.ndarray)
    assert isinstance(t.transform(da.from_array(imgs, chunks=3)), da.Array)
    with pytest.raises(DimensionMismatchError, match="is expecting 16 features"):
        t.transform(np.ones((2, 9)))
    with pytest.raises(DimensionMismatchError, match="is expecting 16 features"):
        t.transform(da.ones((2, 9)))
    assert isinstance(t.transform(imgs.reshape(6, 4, 4)), np.ndarray)  # a stack of images
    # A width that is not a perfect square: each row is one 1 x d signal (the 1-D DCT-II).
    rows = np.random.default_rng(5).random((3, 10))
    t10 = SpectralTransform2D().fit(rows)
    assert t10.image_shape_ == [1, 10]
    np.testing.assert_allclose(t10.transform(rows), scipy.fft.dct(rows, axis=1, norm="ortho"))
    with pytest.raises(InvalidParameterError, match="keep must be in"):
        SpectralTransform2D(keep=(2, 2)).fit(rows)
    with pytest.raises(DimensionMismatchError, match="needs 12 features"):
        SpectralTransform2D(image_shape=(3, 4)).fit(rows)


@pytest.mark.parametrize("basis", ["dct2", "paper"])
def test_inverse_undoes_the_full_transform(basis):
    imgs = np.random.default_rng(5).random((7, 5, 6))
    x = da.from_array(imgs, chunks=(3, 5, 6))
    f = spectral_transform_2d(x, basis=basis)
    with dask.config.set(scheduler=_forbid):
        back = inverse_spectral_transform_2d(f, (5, 6), basis=basis)
    assert back.chunks == ((3, 3, 1), (30,))
    np.testing.assert_allclose(back.compute().reshape(7, 5, 6), imgs, atol=1e-9)


def test_inverse_with_fewer_harmonics_is_least_squares():
    # With keep < full the transform has full row rank: transform(inverse(F)) == F, and the
    # inverse is the smallest image with those coefficients (it lies in the kept harmonics).
    f = np.random.default_rng(6).random((4, 3 * 2))
    t = SpectralTransform2D(keep=(3, 2)).fit(np.zeros((1, 5, 4)))
    imgs = t.inverse_transform(f)
    assert imgs.shape == (4, 20)
    np.testing.assert_allclose(t.transform(imgs.reshape(4, 5, 4)), f, atol=1e-12)
    ch, cw = cosine_basis(5, "dct2", 3), cosine_basis(4, "dct2", 2)
    np.testing.assert_allclose(imgs.reshape(4, 5, 4), np.matmul(np.matmul(ch.T, f.reshape(4, 3, 2)),
                                                                cw), atol=1e-12)
    with pytest.raises(DimensionMismatchError, match="expected coefficients"):
        t.inverse_transform(np.ones((2, 5)))


def test_pipeline_inverse_transform_returns_images():
    from sklearn.pipeline import Pipeline

    from veob_dask.svd import SVDEmbedding

    imgs = np.random.default_rng(7).random((40, 4, 4))
    pipe = Pipeline([("spectral", SpectralTransform2D()), ("svd", SVDEmbedding(n_components=16))])
    z = pipe.fit_transform(imgs)
    np.testing.assert_allclose(pipe.inverse_transform(z), imgs.reshape(40, 16), atol=1e-9)
