"""Blockwise 2-D spectral transform of image stacks (§6.6, §7.1 case 3)."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_block_finite
from ..errors import DataError, DimensionMismatchError, InvalidParameterError
from .basis import BASES, cosine_basis

__all__ = ["SpectralTransform2D", "inverse_spectral_transform_2d", "spectral_transform_2d"]


def _out_dtype(dtype: Any) -> np.dtype:
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _transform_block(block: np.ndarray, ch: np.ndarray, cw: np.ndarray, h: int, w: int,
                     dtype: np.dtype, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Kernel: ``Ch @ img @ Cw.T`` for every image of a row block, flattened to rows."""
    check_block_finite(block, block_id)
    imgs = block.reshape(block.shape[0], h, w).astype(dtype, copy=False)
    # Stacked matmul against the small bases beats scipy.fft.dctn here (PEERS.md §5).
    out = np.matmul(np.matmul(ch.astype(dtype), imgs), cw.T.astype(dtype))
    return out.reshape(block.shape[0], -1)


def _inverse_block(block: np.ndarray, ph: np.ndarray, pw: np.ndarray, kh: int, kw: int,
                   dtype: np.dtype) -> np.ndarray:
    """Kernel: ``pinv(Ch) @ F @ pinv(Cw).T`` for every coefficient block of a row block."""
    coefs = np.asarray(block).reshape(block.shape[0], kh, kw).astype(dtype, copy=False)
    out = np.matmul(np.matmul(ph.astype(dtype), coefs), pw.T.astype(dtype))
    return out.reshape(block.shape[0], -1)


def _parse(x: da.Array, image_shape: tuple[int, int] | None) -> tuple[da.Array, int, int]:
    if x.ndim == 3:
        h, w = int(x.shape[1]), int(x.shape[2])
        if image_shape is not None and tuple(image_shape) != (h, w):
            raise DimensionMismatchError(f"images are {h}x{w}, but image_shape={image_shape}.")
        x = x.reshape(x.shape[0], h * w) if len(x.chunks[1]) == 1 and len(x.chunks[2]) == 1 \
            else x.rechunk({1: -1, 2: -1}).reshape(x.shape[0], h * w)
        return x, h, w
    if x.ndim != 2:
        raise DataError(f"expected images (n, h, w) or flattened (n, h*w); got shape {x.shape}.")
    if image_shape is None:
        side = round(float(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise InvalidParameterError(
                f"cannot infer image_shape from {x.shape[1]} features; pass image_shape=(h, w)."
            )
        image_shape = (side, side)
    h, w = (int(s) for s in image_shape)
    if h * w != x.shape[1]:
        raise DimensionMismatchError(
            f"image_shape {h}x{w} needs {h * w} features per row; got {x.shape[1]}."
        )
    if len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})
    return x, h, w


def spectral_transform_2d(
    x: da.Array,
    *,
    basis: str = "dct2",
    keep: tuple[int, int] | None = None,
    image_shape: tuple[int, int] | None = None,
) -> da.Array:
    """Transform each image of a stack to spectral space, blockwise over row chunks.

    Parameters
    ----------
    x : dask.array.Array of shape (n, h, w) or (n, h*w)
        Image stack; any numeric dtype.
    basis : {"dct2", "paper"}, default="dct2"
        Orthonormal DCT-II or the paper's ``s(N, m, k)``; see :mod:`veob_dask.spectral.basis`.
    keep : (int, int), optional
        Harmonics kept along each image axis (the first ``keep`` rows of each basis); all by
        default.
    image_shape : (int, int), optional
        Needed for flattened input whose feature count is not a perfect square.

    Returns
    -------
    dask.array.Array of shape (n, keep_h * keep_w)
        float32 (float64 for float64 input), lazy, with the row chunks of ``x``.

    Notes
    -----
    Laziness: builds a graph only. Chunks: keeps row chunks; image axes must be whole (merged if
    not). Memory: one row chunk in, one out. Determinism: pure function of the block.

    Examples
    --------
    >>> import dask.array as da, numpy as np, scipy.fft
    >>> imgs = np.random.default_rng(0).random((6, 4, 4))
    >>> out = spectral_transform_2d(da.from_array(imgs, chunks=(2, 4, 4))).compute()
    >>> bool(np.allclose(out.reshape(6, 4, 4), scipy.fft.dctn(imgs, axes=(1, 2), norm="ortho")))
    True
    """
    if basis not in BASES:
        raise InvalidParameterError(f"basis must be one of {BASES}; got {basis!r}.")
    x, h, w = _parse(x, image_shape)
    kh, kw = (h, w) if keep is None else (int(keep[0]), int(keep[1]))
    ch = cosine_basis(h, basis, kh)
    cw = cosine_basis(w, basis, kw)
    dtype = _out_dtype(x.dtype)
    out: da.Array = da.map_blocks(
        _transform_block, x, ch, cw, h, w, dtype, dtype=dtype, chunks=(x.chunks[0], (kh * kw,)),
        name="veob-dct2d-" + da.core.tokenize(x.name, basis, kh, kw, h, w, str(dtype)),
    )
    return out


def inverse_spectral_transform_2d(
    f: da.Array, image_shape: tuple[int, int], *, basis: str = "dct2",
    keep: tuple[int, int] | None = None,
) -> da.Array:
    """Map spectral coefficients back to images (flattened), blockwise over row chunks.

    Parameters
    ----------
    f : dask.array.Array of shape (n, keep_h * keep_w)
        Coefficients from :func:`spectral_transform_2d` with the same ``basis`` and ``keep``.
    image_shape : (int, int)
        Image height and width.
    basis, keep
        As for :func:`spectral_transform_2d`.

    Returns
    -------
    dask.array.Array of shape (n, h * w)
        Least-squares images ``pinv(Ch) F pinv(Cw)ᵀ``: the exact inverse when every harmonic is
        kept (for ``"dct2"`` that is ``Chᵀ F Cw``); with fewer harmonics, the image whose
        transform is closest to ``F``. float32 for float32 input, else float64; lazy, with the
        row chunks of ``f``.

    Notes
    -----
    Laziness: builds a graph only. Memory: one row chunk in, one out. Determinism: pure function
    of the block.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> imgs = da.from_array(np.random.default_rng(0).random((6, 4, 5)), chunks=(3, 4, 5))
    >>> back = inverse_spectral_transform_2d(spectral_transform_2d(imgs), (4, 5))
    >>> bool(np.allclose(back.compute().reshape(6, 4, 5), imgs.compute()))
    True
    """
    if basis not in BASES:
        raise InvalidParameterError(f"basis must be one of {BASES}; got {basis!r}.")
    h, w = (int(s) for s in image_shape)
    kh, kw = (h, w) if keep is None else (int(keep[0]), int(keep[1]))
    if f.ndim != 2 or f.shape[1] != kh * kw:
        raise DimensionMismatchError(
            f"expected coefficients of shape (n, {kh * kw}) for {kh}x{kw} harmonics; got "
            f"shape {f.shape}.")
    if len(f.chunks[1]) > 1:
        f = f.rechunk({1: -1})
    ph = np.linalg.pinv(cosine_basis(h, basis, kh))
    pw = np.linalg.pinv(cosine_basis(w, basis, kw))
    dtype = _out_dtype(f.dtype)
    out: da.Array = da.map_blocks(
        _inverse_block, f, ph, pw, kh, kw, dtype, dtype=dtype, chunks=(f.chunks[0], (h * w,)),
        name="veob-idct2d-" + da.core.tokenize(f.name, basis, kh, kw, h, w, str(dtype)),
    )
    return out


class SpectralTransform2D(TransformerMixin, BaseEstimator):
    """2-D cosine transform of images as a scikit-learn transformer (stateless).

    Parameters
    ----------
    basis : {"dct2", "paper"}, default="dct2"
        Orthonormal DCT-II or the paper's basis.
    keep : (int, int), optional
        Harmonics kept per image axis; all by default.
    image_shape : (int, int), optional
        Image height and width for flattened input (inferred for square images).

    Attributes
    ----------
    image_shape_ : tuple of int
        Image shape seen in ``fit``.
    n_features_in_ : int
        Pixels per image.
    """

    def __init__(self, basis: str = "dct2", keep: tuple[int, int] | None = None,
                 image_shape: tuple[int, int] | None = None) -> None:
        self.basis = basis
        self.keep = keep
        self.image_shape = image_shape

    def fit(self, X: Any, y: Any = None) -> SpectralTransform2D:
        """Record the image shape; no data is read. ``y`` is ignored."""
        xd = X if isinstance(X, da.Array) else da.from_array(np.asarray(X))
        _, h, w = _parse(xd, self.image_shape)
        self.image_shape_ = [h, w]
        self.n_features_in_ = h * w
        return self

    def transform(self, X: Any) -> Any:
        """Transform images; dask in, lazy dask out; numpy in, numpy out."""
        check_is_fitted(self, "image_shape_")
        lazy = isinstance(X, da.Array)
        xd = X if lazy else da.from_array(np.asarray(X))
        shape = tuple(self.image_shape_)
        n_in = int(np.prod(xd.shape[1:]))
        if n_in != shape[0] * shape[1]:
            raise DimensionMismatchError(
                f"X has {n_in} pixels per image, but the transform was fitted on {shape}."
            )
        keep = None if self.keep is None else (int(self.keep[0]), int(self.keep[1]))
        out = spectral_transform_2d(xd, basis=self.basis, keep=keep, image_shape=shape)
        return out if lazy else out.compute(scheduler="sync")

    def inverse_transform(self, X: Any) -> Any:
        """Coefficients back to images, flattened to ``(n, h * w)`` (see
        :func:`inverse_spectral_transform_2d`); dask in, lazy dask out; numpy in, numpy out."""
        check_is_fitted(self, "image_shape_")
        lazy = isinstance(X, da.Array)
        xd = X if lazy else da.from_array(np.asarray(X))
        if xd.ndim == 1:
            xd = xd.reshape(1, -1)
        keep = None if self.keep is None else (int(self.keep[0]), int(self.keep[1]))
        shape = (int(self.image_shape_[0]), int(self.image_shape_[1]))
        out = inverse_spectral_transform_2d(xd, shape, basis=self.basis, keep=keep)
        return out if lazy else out.compute(scheduler="sync")
