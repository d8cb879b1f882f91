"""Test helpers for the estimator contract: no-compute guards, read counting, shared checks.

- :func:`forbid_compute` makes every dask computation fail while a graph is being built;
- :func:`counting_array` wraps a numpy array as a dask array that counts how often each row
  chunk is read, to check that ``fit`` reads every chunk once per pass (``n_passes_``);
- :class:`DaskEstimatorChecks` is a test class (in the style of zarr's ``StoreTests``) that a
  test module subclasses, giving it a parametrized ``case`` fixture of :class:`EstimatorCase`
  objects; it checks type in/type out, laziness and row chunks, passes, save/load,
  ``get_feature_names_out``, ``set_output`` and lazy containers (xarray, dask DataFrame).

pytest is imported only inside the checks, so importing this module costs nothing extra.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp

__all__ = ["ChunkReads", "DaskEstimatorChecks", "EstimatorCase", "counting_array",
           "forbid_compute"]


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a dask graph was computed where only building one was allowed")


@contextmanager
def forbid_compute() -> Iterator[None]:
    """Inside this block any ``compute``/``persist`` on the default scheduler raises
    ``AssertionError``; building graphs works. (An explicit ``scheduler=`` argument still
    computes: that is how in-memory results are produced on purpose.)"""
    with dask.config.set(scheduler=_refuse):
        yield


class ChunkReads:
    """A read-only 2-D array-like over a numpy array that counts reads per row chunk.

    Every ``__getitem__`` call counts one read of each row chunk its rows touch.
    """

    def __init__(self, data: np.ndarray, chunk_rows: int) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.ndim = data.ndim
        self.bounds = np.arange(0, data.shape[0] + chunk_rows, chunk_rows)[1:]
        self.counts = np.zeros(len(range(0, data.shape[0], chunk_rows)), dtype=np.int64)
        self._lock = threading.Lock()

    def __getitem__(self, key: Any) -> np.ndarray:
        out = self.data[key]
        rows = np.arange(self.shape[0])[key[0] if isinstance(key, tuple) else key]
        touched = np.unique(np.searchsorted(self.bounds, np.atleast_1d(rows), side="right"))
        with self._lock:
            self.counts[touched] += 1
        return out


def counting_array(data: np.ndarray, chunk_rows: int) -> tuple[da.Array, ChunkReads]:
    """``data`` as a dask array of ``chunk_rows``-row chunks whose reads are counted."""
    reads = ChunkReads(np.asarray(data), chunk_rows)
    x = da.from_array(reads, chunks=(chunk_rows, -1), asarray=True, lock=False,
                      meta=np.empty((0, 0), dtype=reads.dtype), name="veob-counted")
    return x, reads


def _blobs(rng: np.random.Generator) -> np.ndarray:
    """240 x 12 rows: four clusters on a decaying low-rank background (a typical embedding)."""
    centers = rng.normal(scale=4.0, size=(4, 12))
    background = rng.normal(size=(240, 6)) @ rng.normal(size=(6, 12)) * 0.5
    return centers[np.arange(240) % 4] + background + 0.05 * rng.normal(size=(240, 12))


@dataclass(frozen=True)
class EstimatorCase:
    """One estimator as the shared checks see it.

    Parameters
    ----------
    name : str
        Test id.
    make : callable
        Returns a fresh, unfitted estimator.
    method : {"transform", "predict", "kneighbors"}
        The method whose output the checks inspect.
    data : callable, optional
        ``rng -> X`` (numpy); default 240 x 12 clustered rows.
    chunk_rows : int
        Row chunk of the dask versions of ``X``.
    fit_params, method_params : callable, optional
        ``X -> dict`` of per-sample side inputs (e.g. subdomain keys) for ``fit``/``method``.
    target : callable, optional
        ``X -> y`` for supervised estimators.
    load_params : callable, optional
        ``X -> dict`` of keyword arguments ``veob_dask.load`` needs (an exact index needs its
        embedding).
    saves : bool
        Whether ``veob_dask.save`` stores it (otherwise it must refuse with a TypeError).
    every_chunk_each_pass : bool
        Every chunk is read exactly ``n_passes_`` times; False when a pass reads a sample of
        rows (chunks without sampled rows are skipped), then no chunk is read more often.
    dense_output : bool
        The transform gives dense rows; sparse output must be refused by
        ``set_output(transform="pandas")``.
    source : callable, optional
        What ``fit`` reads instead of ``X`` (a text model fits on a corpus store and
        transforms words); ``X`` is then only transformed.
    """

    name: str
    make: Callable[[], Any]
    method: str = "transform"
    data: Callable[[np.random.Generator], np.ndarray] = _blobs
    chunk_rows: int = 60
    fit_params: Callable[[np.ndarray], dict[str, Any]] = field(default=lambda X: {})
    method_params: Callable[[np.ndarray], dict[str, Any]] = field(default=lambda X: {})
    target: Callable[[np.ndarray], Any] | None = None
    load_params: Callable[[np.ndarray], dict[str, Any]] = field(default=lambda X: {})
    saves: bool = True
    every_chunk_each_pass: bool = True
    dense_output: bool = True
    source: Callable[[], Any] | None = None

    def __str__(self) -> str:
        return self.name

    def fit(self, X: Any) -> Any:
        """A fresh estimator fitted on ``X`` (its numpy original gives the side inputs)."""
        ref = self.data(np.random.default_rng(0))
        args = () if self.target is None else (self.target(ref),)
        return self.make().fit(X if self.source is None else self.source(), *args,
                               **self.fit_params(ref))

    def apply(self, est: Any, X: Any) -> Any:
        """The checked method's output on ``X``."""
        ref = self.data(np.random.default_rng(0))
        return getattr(est, self.method)(X, **self.method_params(ref))


def _outputs(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


def _plain(value: Any) -> Any:
    """Parameters as a saved file holds them (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dense(a: Any) -> np.ndarray:
    return np.asarray(a.toarray() if sp.issparse(a) else a)


class DaskEstimatorChecks:
    """The shared estimator contract as pytest tests; subclass and provide a ``case`` fixture.

    Example (in a test module)::

        class TestMine(DaskEstimatorChecks):
            @pytest.fixture(params=[EstimatorCase("svd", SVDEmbedding)], ids=str)
            def case(self, request):
                return request.param
    """

    @staticmethod
    def _X(case: EstimatorCase) -> np.ndarray:
        return case.data(np.random.default_rng(0))

    def _dask(self, case: EstimatorCase) -> da.Array:
        X = self._X(case)
        return da.from_array(X, chunks=(case.chunk_rows,) + (-1,) * (X.ndim - 1))

    def test_numpy_in_numpy_out(self, case: EstimatorCase) -> None:
        X = self._X(case)
        for out in _outputs(case.apply(case.fit(X), X)):
            assert isinstance(out, np.ndarray) or sp.issparse(out), type(out)
            assert out.shape[0] == X.shape[0]

    def test_dask_in_lazy_dask_out_with_row_chunks(self, case: EstimatorCase) -> None:
        X = self._X(case)
        est = case.fit(X)
        xd = self._dask(case)
        with forbid_compute():
            lazy = _outputs(case.apply(est, xd))
        eager = _outputs(case.apply(est, X))
        for out, ref in zip(lazy, eager, strict=True):
            assert isinstance(out, da.Array), type(out)
            assert out.chunks[0] == xd.chunks[0]
            np.testing.assert_allclose(_dense(out.compute()), _dense(ref), rtol=1e-5,
                                       atol=1e-8)

    def test_fit_reads_each_chunk_once_per_pass(self, case: EstimatorCase) -> None:
        if case.source is not None:
            import pytest

            pytest.skip("fit reads its source (a corpus store or files), not an array")
        X = self._X(case)
        xc, reads = counting_array(X, case.chunk_rows)
        est = case.fit(xc)
        passes = int(est.n_passes_)
        assert reads.counts.max() == passes, (reads.counts.tolist(), passes)
        if case.every_chunk_each_pass:
            assert reads.counts.min() == passes, (reads.counts.tolist(), passes)

    def test_save_load_round_trip(self, case: EstimatorCase, tmp_path: Any) -> None:
        import pytest

        from .persistence import load, save

        X = self._X(case)
        est = case.fit(X)
        if not case.saves:
            with pytest.raises(TypeError, match=r"cannot be saved|not saved"):
                save(est, tmp_path / "model")
            return
        save(est, tmp_path / "model")
        back = load(tmp_path / "model", **case.load_params(X))
        assert type(back) is type(est)
        assert _plain(back.get_params(deep=False)) == _plain(est.get_params(deep=False))
        for a, b in zip(_outputs(case.apply(back, X)), _outputs(case.apply(est, X)),
                        strict=True):
            np.testing.assert_array_equal(_dense(a), _dense(b))

    def test_feature_names_out(self, case: EstimatorCase) -> None:
        X = self._X(case)
        est = case.fit(X)
        if case.method != "transform":
            assert not hasattr(est, "get_feature_names_out") or est.get_feature_names_out()
            return
        names = est.get_feature_names_out()
        out = case.apply(est, X)
        assert len(names) == out.shape[1]
        assert len(set(names)) == len(names)
        assert all(isinstance(n, str) for n in names)

    def test_set_output_pandas(self, case: EstimatorCase) -> None:
        if case.method != "transform":
            return
        import pandas as pd

        X = self._X(case)
        est = case.fit(X).set_output(transform="pandas")
        if not case.dense_output:
            import pytest

            from .errors import InvalidParameterError

            with pytest.raises(ValueError, match="sparse"):
                case.apply(est, X)
            with pytest.raises(InvalidParameterError, match="sparse"):
                case.apply(est, self._dask(case))
            return
        frame = case.apply(est, X)
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.columns) == list(est.get_feature_names_out())
        xd = self._dask(case)
        with forbid_compute():
            lazy = case.apply(est, xd)
        assert type(lazy).__module__.startswith(("dask.dataframe", "dask_expr")), type(lazy)
        assert lazy.npartitions == xd.numblocks[0]
        np.testing.assert_allclose(lazy.compute().to_numpy(), frame.to_numpy(), rtol=1e-5,
                                   atol=1e-8)

    def test_dask_dataframe_is_refused_with_the_conversion(self, case: EstimatorCase) -> None:
        import dask.dataframe as dd
        import pytest

        from .errors import DataError

        frame = dd.from_dask_array(self._dask(case))
        fitted = case.fit(self._X(case)) if case.source is not None else None
        with forbid_compute(), pytest.raises(DataError, match=r"to_dask_array\(lengths=True\)"):
            case.fit(frame) if fitted is None else case.apply(fitted, frame)

    def test_dask_backed_xarray_is_used_lazily(self, case: EstimatorCase) -> None:
        import xarray as xr

        X = self._X(case)
        est = case.fit(X)
        xd = self._dask(case)
        arr = xr.DataArray(xd, dims=("sample", "feature")[:xd.ndim])
        with forbid_compute():
            out = _outputs(case.apply(est, arr))
        assert all(isinstance(o, da.Array) and o.chunks[0] == arr.chunks[0] for o in out)
