"""Blockwise 2-D spectral transform of image stacks (§6.6, §7.1 case 3)."""

from __future__ import annotations

import math
from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._contract import LazyOutputMixin, as_array_input, check_input, finish
from .._validation import check_block_finite
from ..errors import DataError, DimensionMismatchError, InvalidParameterError
from .basis import BASES, cosine_basis

__all__ = ["SpectralTransform2D", "infer_image_shape", "inverse_spectral_transform_2d",
           "spectral_transform_2d"]


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


def infer_image_shape(n_features: int) -> tuple[int, int]:
    """``(s, s)`` when ``n_features`` is a perfect square ``s²``, else ``(1, n_features)``: each
    row one 1 x d signal, whose 2-D transform is the 1-D transform of the row."""
    side = math.isqrt(int(n_features))
    return (side, side) if side * side == n_features else (1, int(n_features))


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
    h, w = infer_image_shape(x.shape[1]) if image_shape is None else image_shape
    h, w = int(h), int(w)
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


class SpectralTransform2D(LazyOutputMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                          BaseEstimator):
    """2-D cosine transform of images as a scikit-learn transformer (stateless).

    Parameters
    ----------
    basis : {"dct2", "paper"}, default="dct2"
        Orthonormal DCT-II or the paper's basis.
    keep : (int, int), optional
        Harmonics kept per image axis; all by default.
    image_shape : (int, int), optional
        Image height and width for flattened input. Default: from an ``(n, h, w)`` stack, or
        square images when the row width is a perfect square, else ``(1, width)`` (each row one
        1 x d signal: the 1-D transform of the row; with the orthonormal ``"dct2"`` and every
        harmonic kept, an SVD of the output spans the same embedding either way).

    Attributes
    ----------
    image_shape_ : list of int
        Image height and width used.
    n_features_in_ : int
        Pixels per image.
    n_passes_ : int
        Always 0: ``fit`` reads no data (it checks shapes; in-memory input is also checked for
        NaN and inf).

    Notes
    -----
    Laziness: ``transform`` of dask input returns a lazy dask array with its row chunks; numpy
    in, numpy out. Chunks: image axes of an ``(n, h, w)`` stack are merged into one chunk.
    Memory: one row chunk in, one out. Determinism: a pure function of each block.

    Examples
    --------
    >>> import numpy as np
    >>> imgs = np.random.default_rng(0).random((5, 4, 4))
    >>> SpectralTransform2D(keep=(2, 2)).fit_transform(imgs).shape
    (5, 4)
    """

    def __init__(self, basis: str = "dct2", keep: tuple[int, int] | None = None,
                 image_shape: tuple[int, int] | None = None) -> None:
        self.basis = basis
        self.keep = keep
        self.image_shape = image_shape

    def _flat(self, X: Any, *, reset: bool) -> tuple[Any, bool, tuple[int, int] | None]:
        """Rows of pixels (an ``(n, h, w)`` stack flattened), validated; and the stack's
        image shape when ``X`` was one."""
        X = as_array_input(X)
        shape = None
        if isinstance(X, da.Array) and X.ndim == 3:
            X, h, w = _parse(X, self.image_shape if reset else None)
            shape = (h, w)
        elif not isinstance(X, da.Array) and getattr(X, "ndim", None) in (3, None) and \
                np.asarray(X).ndim == 3:
            X = np.asarray(X)
            shape = (int(X.shape[1]), int(X.shape[2]))
            X = X.reshape(X.shape[0], -1)
        x, lazy = check_input(self, X, reset=reset, dtype="numeric")
        return x, lazy, shape

    def _checked_shape(self, n_features: int, stack: tuple[int, int] | None) -> tuple[int, int]:
        if self.basis not in BASES:
            raise InvalidParameterError(f"basis must be one of {BASES}; got {self.basis!r}.")
        given = None if self.image_shape is None else tuple(int(v) for v in self.image_shape)
        if given is not None and stack is not None and given != stack:
            raise DimensionMismatchError(f"images are {stack[0]}x{stack[1]}, but "
                                         f"image_shape={given}.")
        h, w = stack or given or infer_image_shape(n_features)
        if h * w != n_features:
            raise DimensionMismatchError(
                f"image_shape {h}x{w} needs {h * w} features per row; got {n_features}.")
        if self.keep is not None:
            kh, kw = (int(v) for v in self.keep)
            if not (1 <= kh <= h and 1 <= kw <= w):
                raise InvalidParameterError(
                    f"keep must be in [1, {h}] x [1, {w}] for {h}x{w} images; got {self.keep}.")
        return h, w

    def fit(self, X: Any, y: Any = None) -> SpectralTransform2D:
        """Record the image shape; no data is read.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n, h, w) or (n, h * w)
            Images (a stack or flattened rows).
        y : None
            Ignored. Present for API consistency.

        Returns
        -------
        self
        """
        x, _, stack = self._flat(X, reset=True)
        h, w = self._checked_shape(int(x.shape[1]), stack)
        self.image_shape_ = [h, w]
        self.n_passes_ = 0
        return self

    def transform(self, X: Any) -> Any:
        """Transform images; dask in, lazy dask out; numpy in, numpy out.

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n, h, w) or (n, h * w)

        Returns
        -------
        ndarray or dask.array.Array of shape (n, keep_h * keep_w)
        """
        check_is_fitted(self, "image_shape_")
        x, lazy, _ = self._flat(X, reset=False)
        xd = x if lazy else da.from_array(x, chunks=(max(1, x.shape[0]), -1))
        keep = None if self.keep is None else (int(self.keep[0]), int(self.keep[1]))
        shape = (int(self.image_shape_[0]), int(self.image_shape_[1]))
        return finish(spectral_transform_2d(xd, basis=self.basis, keep=keep, image_shape=shape),
                      lazy)

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

    @property
    def _n_features_out(self) -> int:
        h, w = (int(v) for v in self.image_shape_)
        return h * w if self.keep is None else int(self.keep[0]) * int(self.keep[1])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
