"""No-compute input checks and parameter normalisers.

Nothing here evaluates a dask graph: checks on values (NaN/inf) happen inside the block kernels
that read the data anyway (see :func:`check_block_finite`), so they cost no extra pass.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp

from .errors import (
    DataError,
    DimensionMismatchError,
    InvalidParameterError,
    StoreFormatError,
    UnknownChunksError,
)

__all__ = [
    "as_dask_2d",
    "check_block_finite",
    "check_dask_2d",
    "check_fitted_count",
    "check_n_features",
    "parse_n_components",
    "parse_seed",
]


def parse_seed(random_state: Any) -> int:
    """Turn ``random_state`` (int, Generator, RandomState or None) into one integer seed."""
    if random_state is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral):
        if int(random_state) < 0:
            raise InvalidParameterError(f"random_state must be >= 0; got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise InvalidParameterError(
        f"random_state must be an int, a numpy Generator or None; got {type(random_state).__name__}."
    )


def parse_n_components(n_components: Any, n_features: int) -> int | float:
    """Check ``n_components``: an int in [1, n_features] or an energy fraction in (0, 1]."""
    if isinstance(n_components, bool):
        raise InvalidParameterError(f"n_components must be an int or a float; got {n_components}.")
    if isinstance(n_components, numbers.Integral):
        k = int(n_components)
        if not 1 <= k <= n_features:
            raise InvalidParameterError(
                f"n_components must be in [1, n_features={n_features}]; got {k}. "
                "Pass a smaller int, or a float in (0, 1] to keep that fraction of the energy."
            )
        return k
    if isinstance(n_components, numbers.Real):
        f = float(n_components)
        if not (0.0 < f <= 1.0) or math.isnan(f):
            raise InvalidParameterError(
                f"n_components as a float is an energy fraction and must be in (0, 1]; got {f}."
            )
        return f
    raise InvalidParameterError(
        f"n_components must be an int or a float; got {type(n_components).__name__}."
    )


def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype.kind not in "fiub":
        raise DataError(
            f"{what} must hold real numbers (float, int, uint or bool); got dtype {dtype}. "
            "Convert it first, e.g. x.astype('float32')."
        )


def check_dask_2d(x: da.Array, *, what: str = "X", single_column_chunk: bool = True) -> da.Array:
    """Check a dask array is 2-D, non-empty, numeric, with known chunks; never computes.

    With ``single_column_chunk`` the feature axis is merged into one chunk when it is not already
    (a cheap rechunk for tall-and-skinny data, since only the column axis changes).
    """
    if x.ndim != 2:
        raise DataError(
            f"{what} must be 2-D (n_samples, n_features); got {x.ndim}-D with shape {x.shape}. "
            "Reshape 1-D data with x.reshape(-1, 1) for one feature or x.reshape(1, -1) for one "
            "sample."
        )
    if any(math.isnan(c) for cs in x.chunks for c in cs):
        raise UnknownChunksError(
            f"{what} has unknown chunk sizes {x.chunks}; call x.compute_chunk_sizes() first."
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{what} is empty: shape {x.shape}; it needs at least one row and column.")
    _check_dtype(np.dtype(x.dtype), what)
    if single_column_chunk and len(x.chunks[1]) > 1:
        x = x.rechunk({1: -1})
    return x


def as_dask_2d(
    x: Any, *, what: str = "X", chunks: int | str = "auto", single_column_chunk: bool = True
) -> da.Array:
    """Return ``x`` as a checked 2-D dask array (numpy and scipy.sparse input are wrapped)."""
    if isinstance(x, da.Array):
        return check_dask_2d(x, what=what, single_column_chunk=single_column_chunk)
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{what} is empty: shape {x.shape}.")
        if not np.all(np.isfinite(x.data)):
            raise DataError(f"{what} contains NaN or inf values; clean or impute them first.")
        if chunks == "auto":
            chunks = max(1, min(x.shape[0], 50_000))
        out = da.from_array(x, chunks=(chunks, -1), asarray=False)
        return check_dask_2d(out, what=what, single_column_chunk=single_column_chunk)
    arr = np.asarray(x)
    if arr.dtype == object:
        raise DataError(
            f"{what} could not be read as a numeric array (ragged rows or mixed types?); "
            f"got an object array of shape {arr.shape}."
        )
    if arr.ndim != 2:
        raise DataError(
            f"{what} must be 2-D (n_samples, n_features); got {arr.ndim}-D with shape "
            f"{arr.shape}. Reshape 1-D data with x.reshape(-1, 1) or x.reshape(1, -1)."
        )
    _check_dtype(arr.dtype, what)
    if arr.size and not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise DataError(f"{what} contains NaN or inf values (first in row {bad}); clean them first.")
    if chunks == "auto":
        chunks = max(1, min(arr.shape[0], max(1, 32_000_000 // max(1, arr.shape[1] * 8))))
    return check_dask_2d(
        da.from_array(arr, chunks=(chunks, -1)), what=what, single_column_chunk=single_column_chunk
    )


def check_fitted_count(value: Any, name: str, owner: str = "Model") -> int:
    """A fitted count (``n_features_in_``, ``n_components_``...) as an int, or a one-line error.

    A count of another type (the str ``"20"`` from a tampered model file) would otherwise
    compare unequal to every width and produce "X has 20 features, but ... is expecting 20".

    Raises
    ------
    StoreFormatError
        If ``value`` is not a non-negative integer.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or value < 0:
        raise StoreFormatError(
            f"{owner}.{name} is {value!r} ({type(value).__name__}), not a non-negative int: the "
            "fitted state is damaged (a model file edited or written by something else?); refit "
            "the model.")
    return int(value)


def check_n_features(n_features: int, expected: int, what: str = "X",
                     owner: str = "Model") -> None:
    """Raise :class:`DimensionMismatchError` when the feature count differs from fit time
    (and :class:`StoreFormatError` when the fitted count is not an int at all)."""
    expected = check_fitted_count(expected, "n_features_in_" if what == "X" else "n_components_",
                                  owner)
    if n_features != expected:
        raise DimensionMismatchError(
            f"{what} has {n_features} features, but {owner} is expecting {expected} features as "
            f"input (the number seen in fit)."
        )


def check_block_finite(block: Any, block_id: tuple[int, ...] | None = None) -> None:
    """Raise :class:`DataError` if a block holds NaN or inf (called inside block kernels)."""
    data = block.data if sp.issparse(block) else block
    data = getattr(data, "data", data) if not isinstance(data, np.ndarray) else data
    if not np.all(np.isfinite(data)):
        where = f" in row chunk {block_id[0]}" if block_id else ""
        raise DataError(
            f"input contains NaN or inf values{where}; clean or impute them before fitting."
        )
