"""The estimator contract every veob_dask estimator follows: what goes in, what comes out.

- **Type in, type out.** numpy, pandas and scipy.sparse input go through scikit-learn's
  ``validate_data`` (its checks and messages, our error classes) and give numpy (or scipy)
  output; a dask array is checked without computing anything and gives lazy dask output with
  its row chunks (:func:`check_input`, :func:`finish`).
- **Other lazy containers.** A dask-backed xarray ``DataArray`` is used through its dask array
  (lazily, with its chunks); a dask ``DataFrame`` or ``Series`` is refused with the one line
  that converts it, because its partition lengths are unknown until the data is read and
  veob_dask never reads data to find them (:func:`as_array_input`). Nothing is computed into
  memory in silence.
- **set_output.** ``set_output(transform="pandas")`` works as in scikit-learn for in-memory
  input; for dask input the lazy result becomes a lazy dask ``DataFrame`` with the same
  partitions and the columns of ``get_feature_names_out`` ("polars" is refused for dask input:
  polars has no lazy dask counterpart) — see :class:`LazyOutputMixin`.

The README's estimator table lists, for every estimator, its inputs, outputs and the passes
over the data its ``fit`` makes (``n_passes_``, checked by ``tests/test_contract.py`` with an
array that counts the reads of every chunk).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils.validation import check_array, validate_data

from ._validation import check_dask_2d, check_n_features
from .errors import DataError, DimensionMismatchError, InvalidParameterError

__all__ = ["LazyOutputMixin", "as_array_input", "check_input", "finish", "is_lazy"]

FLOATS = (np.float64, np.float32)


def _module(x: Any) -> str:
    return type(x).__module__ or ""


def as_array_input(X: Any, what: str = "X") -> Any:
    """Unwrap lazy containers into a dask array, refuse those that would need a read.

    A dask-backed xarray ``DataArray`` becomes its dask array (same chunks, nothing read); an
    in-memory one is left to numpy conversion. A dask ``DataFrame``/``Series`` and an xarray
    ``Dataset`` are refused with the call that converts them.

    Raises
    ------
    DataError
        For a dask DataFrame or Series, or an xarray Dataset.
    """
    mod = _module(X)
    if mod.startswith(("dask.dataframe", "dask_expr")) or (
            hasattr(X, "npartitions") and hasattr(X, "to_dask_array")):
        raise DataError(
            f"{what} is a dask {type(X).__name__}, whose partition lengths are unknown until "
            "the data is read, and veob_dask does not read data to find them; convert it once "
            f"with {what}.to_dask_array(lengths=True) (one pass counting the rows of each "
            "partition) and pass the dask array.")
    if mod.startswith("xarray"):
        if type(X).__name__ == "Dataset":
            raise DataError(
                f"{what} is an xarray Dataset; pass one of its variables (ds['name']) or "
                "ds.to_dataarray() with the samples first.")
        data = getattr(X, "data", None)
        if isinstance(data, da.Array):
            return data
    return X


def is_lazy(X: Any) -> bool:
    """True when ``X`` is (or unwraps to) a dask array: the caller returns lazy output."""
    return isinstance(as_array_input(X), da.Array)


def check_input(est: Any, X: Any, *, reset: bool, accept_sparse: bool | str = False,
                dtype: Any = FLOATS, what: str = "X", check_fitted_width: bool = True
                ) -> tuple[Any, bool]:
    """Validate ``X`` for ``est``: ``(array, lazy)``, ``lazy`` True for dask input.

    In-memory input goes through :func:`sklearn.utils.validation.validate_data` (which sets or
    checks ``n_features_in_`` and ``feature_names_in_``); its ``ValueError`` becomes a
    :class:`~veob_dask.errors.DataError` (or
    :class:`~veob_dask.errors.DimensionMismatchError` for a width that differs from ``fit``)
    with the same message. Dask input is checked without computing: 2-D, known chunks,
    non-empty, numeric; its columns are merged into one chunk (a cheap rechunk of
    tall-and-skinny data) and ``n_features_in_`` is set (``reset``) or checked.

    Parameters
    ----------
    est : estimator
        Receives ``n_features_in_`` when ``reset``.
    X : array-like, scipy.sparse, pandas, xarray or dask.array.Array
    reset : bool
        True in ``fit``; False in ``transform``/``predict``.
    accept_sparse : bool or str, default=False
        Passed to ``validate_data`` (``"csr"`` to accept sparse input as CSR).
    dtype : dtype or tuple of dtypes, default=(float64, float32)
        Passed to ``validate_data``.
    what : str, default="X"
        Name used in messages.
    check_fitted_width : bool, default=True
        With ``reset=False``, check the width against ``n_features_in_``.

    Returns
    -------
    array : ndarray, scipy.sparse matrix or dask.array.Array
    lazy : bool
    """
    X = as_array_input(X, what)
    if isinstance(X, da.Array):
        x = check_dask_2d(X, what=what)
        if not accept_sparse and _sparse_meta(x):
            raise DataError(f"{type(est).__name__} does not support sparse input; {what} has "
                            "sparse blocks. Densify them with x.map_blocks(lambda b: b.toarray()).")
        if reset:
            est.n_features_in_ = int(x.shape[1])
            if hasattr(est, "feature_names_in_"):
                del est.feature_names_in_
        elif check_fitted_width:
            check_n_features(int(x.shape[1]), est.n_features_in_, what,
                             owner=type(est).__name__)
        return x, True
    try:
        if reset or check_fitted_width:
            out = validate_data(est, X, reset=reset, accept_sparse=accept_sparse, dtype=dtype)
        else:
            out = check_array(X, accept_sparse=accept_sparse, dtype=dtype, input_name=what)
    except ValueError as err:
        if isinstance(err, (DataError, DimensionMismatchError, InvalidParameterError)):
            raise
        cls = DimensionMismatchError if "is expecting" in str(err) else DataError
        raise cls(str(err)) from err
    return out, False


def _sparse_meta(x: da.Array) -> bool:
    meta = getattr(x, "_meta", None)
    return sp.issparse(meta) or _module(meta).startswith("sparse")


def finish(out: Any, lazy: bool) -> Any:
    """Lazy output for lazy input; otherwise computed here, on the synchronous scheduler
    (the input was in memory, so the output is small enough to be too)."""
    if lazy or not isinstance(out, da.Array):
        return out
    return out.compute(scheduler="sync")


def _output_kind(est: Any, method: str) -> str:
    # The estimator's own set_output choice, else the global one (sklearn keeps the former in
    # this attribute; there is no public getter for it).
    own = getattr(est, "_sklearn_output_config", {}).get(method)
    return str(own if own is not None else get_config()["transform_output"])


def _dask_frame(out: Any, est: Any) -> Any:
    if not isinstance(out, da.Array):  # already wrapped (a transform called by fit_transform)
        return out
    if out.ndim != 2 or _sparse_meta(out):
        raise InvalidParameterError(
            f"{type(est).__name__} gives sparse or non-tabular output here; "
            "set_output(transform='pandas') needs a dense table. Use set_output(transform="
            "'default').")
    import dask.dataframe as dd

    columns = [str(c) for c in est.get_feature_names_out()]
    return dd.from_dask_array(out, columns=columns)


def _lazy_output(sk_wrapped: Callable[..., Any], method: str) -> Callable[..., Any]:
    original = getattr(sk_wrapped, "__wrapped__", sk_wrapped)

    @functools.wraps(original)
    def wrapped(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        kind = _output_kind(self, "transform")
        if kind == "default" or not is_lazy(X):
            return sk_wrapped(self, X, *args, **kwargs)
        if kind != "pandas":
            raise InvalidParameterError(
                f"set_output(transform={kind!r}) cannot wrap the lazy output of dask input "
                f"(it would be computed into memory); use transform='pandas' for a lazy dask "
                "DataFrame, transform='default' for a dask array, or compute the input first.")
        return _dask_frame(original(self, X, *args, **kwargs), self)

    wrapped._veob_lazy_output = True  # type: ignore[attr-defined]
    return wrapped


class LazyOutputMixin:
    """``set_output`` that keeps dask output lazy; put it before ``TransformerMixin``.

    scikit-learn's ``TransformerMixin`` wraps ``transform`` and ``fit_transform`` so that
    ``set_output(transform="pandas")`` turns their output into a pandas DataFrame — which for a
    lazy dask array would compute the whole result into memory. This mixin wraps those methods
    once more: for dask input and the "pandas" output the result is a lazy
    ``dask.dataframe.DataFrame`` (one partition per row chunk, columns from
    ``get_feature_names_out``); any other output container for dask input is refused with a
    one-line :class:`~veob_dask.errors.InvalidParameterError`; in-memory input is left to
    scikit-learn.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("transform", "fit_transform"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_veob_lazy_output", False):
                setattr(cls, name, _lazy_output(method, name))

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, then transform ``X`` (dask in, lazy dask out).

        Parameters
        ----------
        X : array-like or dask.array.Array of shape (n_samples, n_features)
        y : None
            Ignored. Present for API consistency.
        **fit_params
            Passed to ``fit`` (metadata such as subdomain keys).

        Returns
        -------
        ndarray, dask.array.Array or DataFrame
            As ``transform`` gives, in the container chosen with ``set_output``.
        """
        return self.fit(X, y, **fit_params).transform(X)  # type: ignore[attr-defined]
