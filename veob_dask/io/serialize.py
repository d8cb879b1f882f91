"""Save and load fitted estimators as Zarr groups, without pickle.

Layout of a saved estimator (one Zarr group)::

    attrs["veob_dask"] = {"format_version": 1, "kind": "veob_dask.svd.embedding:SVDEmbedding",
                          "params": {...get_params(deep=False)...},
                          "state": {...fitted scalars, strings, lists...}}
    <attr>_            one Zarr array per fitted ndarray attribute (name ends with "_")
    fitted/<attr>_     a nested group per fitted attribute that is itself a veob_dask estimator
    steps/<i>/         for a scikit-learn Pipeline: one such group per step

Only classes defined inside ``veob_dask`` (and ``sklearn.pipeline.Pipeline``) can be loaded, so a
model from an untrusted place cannot make the loader import or run arbitrary code.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import numpy as np
import zarr
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from ..errors import StoreFormatError
from .store import _is_url, _local, atomic_store, open_group

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT_VERSION = 1
_ATTR_KEY = "veob_dask"
_PIPELINE_KIND = "sklearn.pipeline:Pipeline"


def _kind(est: Any) -> str:
    cls = type(est)
    if isinstance(est, Pipeline):
        return _PIPELINE_KIND
    if not cls.__module__.startswith("veob_dask"):
        raise TypeError(f"only veob_dask estimators can be saved; got {cls.__module__}.{cls.__name__}")
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(kind: str) -> type:
    if kind == _PIPELINE_KIND:
        return Pipeline
    module, _, name = kind.partition(":")
    if not module.startswith("veob_dask") or not name.isidentifier():
        raise StoreFormatError(f"refusing to load estimator kind {kind!r}: not a veob_dask class.")
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as err:
        raise StoreFormatError(f"unknown estimator kind {kind!r} in saved model.") from err


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


def _write(est: Any, group: zarr.Group) -> None:
    if isinstance(est, Pipeline):
        meta = {"format_version": FORMAT_VERSION, "kind": _PIPELINE_KIND,
                "params": {"names": [n for n, _ in est.steps]}, "state": {}}
        group.attrs[_ATTR_KEY] = meta
        for i, (_, step) in enumerate(est.steps):
            _write(step, group.create_group(f"steps/{i}"))
        return
    params = {k: _to_json(v) for k, v in est.get_params(deep=False).items()}
    bad = [k for k, v in params.items() if not _jsonable(v)]
    if bad:
        raise TypeError(f"parameters {bad} of {type(est).__name__} are not JSON-serialisable.")
    state: dict[str, Any] = {}
    for attr, value in vars(est).items():
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        if isinstance(value, np.ndarray):
            group.create_array(attr, data=np.ascontiguousarray(value))
        elif isinstance(value, BaseEstimator) and type(value).__module__.startswith("veob_dask"):
            _write(value, group.create_group(f"fitted/{attr}"))
        elif value is None or _jsonable(_to_json(value)):
            state[attr] = _to_json(value)
        else:
            raise TypeError(
                f"fitted attribute {attr} of {type(est).__name__} ({type(value).__name__}) "
                "cannot be saved; store it as an ndarray or JSON value."
            )
    group.attrs[_ATTR_KEY] = {"format_version": FORMAT_VERSION, "kind": _kind(est),
                              "params": params, "state": state}


def save(estimator: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Save a (fitted or unfitted) veob_dask estimator or Pipeline to a Zarr group.

    Parameters
    ----------
    estimator : estimator
        A veob_dask estimator, or a scikit-learn ``Pipeline`` of them.
    path : str or path-like
        Destination (local path or fsspec URL); written to a temporary path, then renamed.
    overwrite : bool, default=False
        Replace an existing store at ``path``.
    """
    with atomic_store(path, overwrite=overwrite) as tmp:
        group = zarr.open_group(store=tmp if _is_url(tmp) else _local(tmp), mode="w")
        _write(estimator, group)


def _read(group: zarr.Group, where: str) -> Any:
    meta = group.attrs.get(_ATTR_KEY)
    if not isinstance(meta, dict) or "kind" not in meta:
        raise StoreFormatError(f"{where} is not a saved veob_dask model (no '{_ATTR_KEY}' attrs).")
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreFormatError(
            f"{where} has model format_version {meta.get('format_version')!r}; this veob_dask "
            f"reads version {FORMAT_VERSION}."
        )
    cls = _resolve(meta["kind"])
    if cls is Pipeline:
        names = meta["params"]["names"]
        steps = [(n, _read(group[f"steps/{i}"], f"{where}/steps/{i}")) for i, n in enumerate(names)]
        return Pipeline(steps)
    est = cls(**meta["params"])
    for attr, value in meta.get("state", {}).items():
        setattr(est, attr, value)
    for name, arr in group.arrays():
        if name.endswith("_"):
            setattr(est, name, np.asarray(arr[...]))
    if "fitted" in group:
        for name, sub in group["fitted"].groups():
            setattr(est, name, _read(sub, f"{where}/fitted/{name}"))
    return est


def load(path: str | os.PathLike[str]) -> Any:
    """Load an estimator saved by :func:`save`.

    Raises
    ------
    StoreNotFoundError
        If nothing exists at ``path``.
    StoreFormatError
        If the store is not a veob_dask model, or has an unknown format version.
    """
    group = open_group(path, mode="r")
    return _read(group, repr(str(path)))
