"""Save and load estimators as Zarr groups: loading is data, never code.

Layout of a saved estimator (an artifact of kind ``"model"``)::

    attrs["veob_dask"] = {"format_version": 2, "kind": "model", "estimator": "SVDEmbedding",
                          "params": {...get_params(deep=False)...},
                          "state": {...fitted scalars, strings, lists...}, ...}
    <attr>_            one Zarr array per fitted ndarray attribute, with dimension names
    fitted/<attr>_     a nested group per fitted attribute that is itself a saved estimator
    steps/<i>/         for a scikit-learn Pipeline (estimator "Pipeline"): one group per step

The file names its class only by a short name looked up in an explicit :class:`ModelTable`
(held by :mod:`veob_dask.persistence`, the one module that knows every class); nothing in the
file can name a module, a function, an address or a path that gets used. On load, parameters
are checked against the class signature, JSON types and the table's per-parameter rules before
the class is built (its ``__init__`` only assigns); fitted arrays against the table's schema —
dtype kind, rank, sizes shared through dimension names (``components_`` is
``("component", "feature")``, so its shape must agree with ``singular_values_`` and
``n_features_in_``), finite floats, index arrays in range and monotone where that is their
meaning. Anything else is a one-line :class:`~veob_dask.errors.StoreFormatError`.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from ..errors import InvalidParameterError, StoreFormatError
from . import layout
from .location import Location, PathLike, as_location
from .store import open_artifact, read_arrays, store_header
from .writer import ArtifactWriter, create_artifact

__all__ = [
    "ArraySpec",
    "Check",
    "EstimatorSpec",
    "ModelTable",
    "ScalarSpec",
    "build_estimator",
    "check_arrays",
    "is_bool",
    "is_choice",
    "is_float",
    "is_int",
    "is_json",
    "is_str",
    "load_estimator",
    "read_estimator",
    "rename_fitted",
    "save_estimator",
    "write_estimator",
]

PIPELINE = "Pipeline"
_ATTR_NAME = re.compile(r"^[a-z][a-z0-9_]*_$")
_MAX_DEPTH = 8


# -- parameter rules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """A rule for one parameter value: ``ok(value)`` and what it expects (for messages)."""

    ok: Callable[[Any], bool]
    expects: str

    def __or__(self, other: Check) -> Check:
        return Check(lambda v: self.ok(v) or other.ok(v), f"{self.expects} or {other.expects}")


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(low: int | None = None, high: int | None = None) -> Check:
    """An int in ``[low, high]``."""
    rng = f" in [{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
    return Check(lambda v: isinstance(v, int) and not isinstance(v, bool)
                 and (low is None or v >= low) and (high is None or v <= high), f"an int{rng}")


def is_float(low: float | None = None, high: float | None = None, *,
             low_open: bool = False) -> Check:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    def ok(v: Any) -> bool:
        if not _num(v) or not math.isfinite(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or v <= high
    lo = "(" if low_open else "["
    return Check(ok, f"a number in {lo}{low}, {high}]")


def is_choice(*values: Any) -> Check:
    """One of ``values``."""
    return Check(lambda v: any(v == c and type(v) is type(c) for c in values),
                 f"one of {list(values)}")


def is_bool() -> Check:
    """True or False."""
    return Check(lambda v: isinstance(v, bool), "True or False")


def is_str(max_len: int = 10_000) -> Check:
    """A string of at most ``max_len`` characters."""
    return Check(lambda v: isinstance(v, str) and len(v) <= max_len, "a string")


NONE = is_choice(None)


def _json_ok(v: Any, depth: int = 0) -> bool:
    if depth > 16:
        return False
    if v is None or isinstance(v, (bool, str)):
        return True
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_json_ok(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_ok(x, depth + 1) for k, x in v.items())
    return False


def is_json() -> Check:
    """Any JSON value (nesting at most 16 deep, finite numbers)."""
    return Check(_json_ok, "a JSON value")


# -- state schemas ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArraySpec:
    """What a fitted array must look like.

    Parameters
    ----------
    dims : tuple of str or int
        One entry per axis: a dimension name (all arrays and scalars naming it share one size)
        or a fixed size. Also the array's Zarr ``dimension_names``.
    kinds : str
        Allowed numpy dtype kinds (``"f"`` float, ``"iu"`` integers, ``"b"`` bool...).
    optional : bool
        May be absent (or ``None``).
    low, high : int or str, optional
        Integer arrays: every value ``>= low`` and ``< high``; a str names a dimension or a
        fitted scalar whose value is the bound.
    monotone : bool
        Values never decrease (offsets).
    first, last : int or str, optional
        Required first / last value (``last="member"``: offsets end at the member count).
    permutation : bool
        Values are a permutation of ``0..len-1``.
    """

    dims: tuple[str | int, ...]
    kinds: str = "f"
    optional: bool = False
    low: int | str | None = None
    high: int | str | None = None
    monotone: bool = False
    first: int | str | None = None
    last: int | str | None = None
    permutation: bool = False


@dataclass(frozen=True)
class ScalarSpec:
    """A fitted scalar (or small JSON value): its type and, optionally, the dimension it sizes."""

    check: Check
    dim: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class EstimatorSpec:
    """What the loader knows about one class: how to check its parameters and fitted state.

    Parameters
    ----------
    cls : type
        The class (built as ``cls(**params)``; its ``__init__`` must only assign).
    params : mapping of str to Check
        Rules for parameter values (parameters without a rule must still be JSON).
    arrays : mapping of str to ArraySpec
        Fitted ndarray attributes.
    scalars : mapping of str to ScalarSpec
        Fitted non-array attributes.
    nested : mapping of str to tuple of str
        Fitted attributes that are estimators, with the table kinds they may be.
    check : callable, optional
        Extra consistency check of a loaded estimator; raises ``ValueError`` with a message.
    upgrade : callable, optional
        ``upgrade(state, arrays)`` brings the fitted state of a file written by an earlier
        release up to date in place (a renamed attribute, a value derived from the others),
        before anything is checked.
    """

    cls: type
    params: Mapping[str, Check] = field(default_factory=dict)
    arrays: Mapping[str, ArraySpec] = field(default_factory=dict)
    scalars: Mapping[str, ScalarSpec] = field(default_factory=dict)
    nested: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    check: Callable[[Any], None] | None = None
    upgrade: Callable[[dict[str, Any], dict[str, np.ndarray]], None] | None = None


def rename_fitted(old: str, new: str) -> Callable[[dict[str, Any], dict[str, np.ndarray]], None]:
    """An :attr:`EstimatorSpec.upgrade` that renames the fitted attribute ``old`` to ``new``
    (as a scalar or an array, wherever the file has it)."""
    def upgrade(state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for part in (state, arrays):
            if old in part and new not in state and new not in arrays:
                part[new] = part.pop(old)  # type: ignore[arg-type]
    return upgrade


ModelTable = Mapping[str, EstimatorSpec]


def _bound(value: int | str | None, sizes: Mapping[str, int], scalars: Mapping[str, Any]
           ) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if value in sizes:
        return sizes[value]
    got = scalars.get(value)
    return int(got) if isinstance(got, int) and not isinstance(got, bool) else None


def _bind(sizes: dict[str, int], name: str, size: int, what: str) -> None:
    if sizes.setdefault(name, size) != size:
        raise ValueError(f"{what} has {name} size {size}, but other fitted values give "
                         f"{sizes[name]}")


def _check_shapes(spec: EstimatorSpec, shapes: Mapping[str, tuple[int, ...]],
                  scalars: Mapping[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, shape in shapes.items():
        a = spec.arrays.get(name)
        if a is None:
            continue
        if len(shape) != len(a.dims):
            raise ValueError(f"{name} must have {len(a.dims)} axes {a.dims}; got shape {shape}")
        for d, n in zip(a.dims, shape, strict=True):
            if isinstance(d, int):
                if n != d:
                    raise ValueError(f"{name} must have {d} entries along that axis; got {n}")
            else:
                _bind(sizes, d, int(n), name)
    for name, value in scalars.items():
        s = spec.scalars.get(name)
        if s is not None and s.dim is not None and value is not None:
            _bind(sizes, s.dim, int(value), name)
    return sizes


def _check_values(name: str, a: ArraySpec, arr: np.ndarray, sizes: Mapping[str, int],
                  scalars: Mapping[str, Any]) -> None:
    if arr.dtype.kind not in a.kinds:
        raise ValueError(f"{name} must have dtype kind {a.kinds!r}; got {arr.dtype}")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf")
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return
    lo, hi = _bound(a.low, sizes, scalars), _bound(a.high, sizes, scalars)
    if lo is not None and int(arr.min()) < lo:
        raise ValueError(f"{name} holds {int(arr.min())}, below its lower bound {lo}")
    if hi is not None and int(arr.max()) >= hi:
        raise ValueError(f"{name} holds {int(arr.max())}, not below its bound {hi}")
    flat = arr.reshape(-1)
    if a.monotone and np.any(np.diff(flat) < 0):
        raise ValueError(f"{name} must never decrease")
    first, last = _bound(a.first, sizes, scalars), _bound(a.last, sizes, scalars)
    if first is not None and int(flat[0]) != first:
        raise ValueError(f"{name} must start at {first}; got {int(flat[0])}")
    if last is not None and int(flat[-1]) != last:
        raise ValueError(f"{name} must end at {last}; got {int(flat[-1])}")
    if a.permutation and (int(flat.min()) < 0 or int(flat.max()) >= flat.size or np.any(
            np.bincount(flat.astype(np.int64), minlength=flat.size) != 1)):
        raise ValueError(f"{name} must be a permutation of 0..{flat.size - 1}")


def check_arrays(spec: EstimatorSpec, arrays: Mapping[str, np.ndarray],
                 scalars: Mapping[str, Any]) -> None:
    """Check fitted ``arrays`` and ``scalars`` against ``spec``; raise ``ValueError``."""
    for name, s in spec.scalars.items():
        value = scalars.get(name)
        if name not in scalars or value is None:
            if not s.optional and name in scalars:
                raise ValueError(f"{name} must not be empty")
            continue
        if not s.check.ok(value):
            raise ValueError(f"{name} must be {s.check.expects}; got {_short(value)}")
    sizes = _check_shapes(spec, {k: v.shape for k, v in arrays.items()}, scalars)
    for name, arr in arrays.items():
        a = spec.arrays.get(name)
        if a is None:
            if arr.dtype.kind not in "fiub":
                raise ValueError(f"{name} must be numeric; got {arr.dtype}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} holds NaN or inf")
            continue
        _check_values(name, a, arr, sizes, scalars)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- saving ----------------------------------------------------------------------------------------
def _kind_of(est: Any, table: ModelTable) -> str:
    for kind, spec in table.items():
        if type(est) is spec.cls:
            return kind
    raise TypeError(f"{type(est).__name__} cannot be saved: it is not in the table of loadable "
                    f"classes ({', '.join(table)}).")


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _dims_of(spec: EstimatorSpec | None, name: str, ndim: int) -> tuple[str, ...]:
    a = spec.arrays.get(name) if spec else None
    if a is not None and len(a.dims) == ndim:
        return tuple(d if isinstance(d, str) else f"{name.rstrip('_')}_{i}"
                     for i, d in enumerate(a.dims))
    return tuple(f"{name.rstrip('_')}_{i}" for i in range(ndim))


def _fitted(est: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(est).items() if _ATTR_NAME.match(k)}


def write_estimator(writer: ArtifactWriter, est: Any, table: ModelTable, *,
                    depth: int = 0) -> None:
    """Write ``est`` into the (root or nested) group of ``writer``; the header goes in
    ``writer.header``."""
    if depth > _MAX_DEPTH:
        raise TypeError("estimators are nested too deeply to save.")
    kind = _kind_of(est, table)
    assert writer.header is not None
    if kind == PIPELINE:
        steps = getattr(est, "steps", [])
        writer.header.update(estimator=kind, params={"names": [n for n, _ in steps]}, state={})
        steps_w = writer.subgroup(layout.MODEL_STEPS)
        for i, (_, step) in enumerate(steps):
            write_estimator(steps_w.subgroup(str(i), "model"), step, table, depth=depth + 1)
        return
    spec = table[kind]
    params = {k: _to_json(v) for k, v in est.get_params(deep=False).items()}
    bad = [k for k, v in params.items() if not _json_ok(v)]
    if bad:
        raise TypeError(f"parameters {bad} of {type(est).__name__} are not JSON values and "
                        "cannot be saved.")
    state: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    nested: dict[str, Any] = {}
    for attr, value in _fitted(est).items():
        if isinstance(value, np.ndarray):
            arrays[attr] = value
        elif hasattr(value, "get_params") and any(type(value) is s.cls for s in table.values()):
            nested[attr] = value
        elif value is None or _json_ok(_to_json(value)):
            state[attr] = _to_json(value)
        else:
            raise TypeError(f"fitted attribute {attr} of {type(est).__name__} "
                            f"({type(value).__name__}) cannot be saved; store it as an ndarray "
                            "or a JSON value.")
    try:
        check_arrays(spec, arrays, state)
    except ValueError as err:
        raise TypeError(f"{type(est).__name__} cannot be saved: {err} (update its entry in "
                        "veob_dask.persistence if the fitted state changed).") from err
    for attr, value in arrays.items():
        writer.array(attr, value, dims=_dims_of(spec, attr, value.ndim))
    if nested:
        fitted = writer.subgroup(layout.MODEL_FITTED)
        for attr, value in nested.items():
            write_estimator(fitted.subgroup(attr, "model"), value, table, depth=depth + 1)
    writer.header.update(estimator=kind, params=params, state=state)


def save_estimator(est: Any, path: PathLike | Location, table: ModelTable, *,
                   overwrite: bool = False, inputs: Sequence[Any] = (),
                   storage_options: Mapping[str, Any] | None = None,
                   provenance: Mapping[str, Any] | None = None) -> None:
    """Save ``est`` (an estimator or Pipeline whose classes are in ``table``) to ``path``.

    ``provenance`` (JSON values, e.g. :func:`~veob_dask.io.matrix.describe_store` of the
    training store) is recorded in the root header as ``"input"``: what the model was fitted on.

    Raises
    ------
    TypeError
        A class not in ``table``, or parameters/state that are not arrays or JSON values.
    StoreExistsError
        The output may not be written (see :func:`~veob_dask.io.publish.check_output`).
    """
    _kind_of(est, table)  # fail before creating anything
    fields = {} if provenance is None else {"input": dict(provenance)}
    if fields and not _json_ok(fields["input"]):
        raise TypeError("the provenance recorded in a model must hold JSON values only.")
    with create_artifact(path, "model", overwrite=overwrite, inputs=inputs,
                         storage_options=storage_options, **fields) as w:
        write_estimator(w, est, table)


# -- loading ---------------------------------------------------------------------------------------
def _model_header(header: Mapping[str, Any], where: str) -> tuple[str, Any, Any]:
    if header.get("format_version") == 1:
        legacy = header.get("legacy") or {}
        old = legacy.get("kind")
        kind = layout.LEGACY_MODEL_KINDS.get(old) if isinstance(old, str) else None
        if kind is None:
            raise StoreFormatError(f"refusing to load {where}: estimator kind {_short(old)} is "
                                   "not a class this veob_dask can load.")
        return kind, legacy.get("params", {}), legacy.get("state", {})
    return header.get("estimator"), header.get("params", {}), header.get("state", {})


def _check_params(spec: EstimatorSpec, params: Any, kind: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise TypeError(f"its parameters must be a JSON object; got {_short(params)}")
    sig = inspect.signature(spec.cls)
    allowed = {n for n, p in sig.parameters.items()
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{kind} has no parameter(s) {unknown}")
    for name, value in params.items():
        if not _json_ok(value):
            raise ValueError(f"parameter {name} must be a JSON value; got {_short(value)}")
        rule = spec.params.get(name)
        if rule is not None and not rule.ok(value):
            raise ValueError(f"parameter {name} must be {rule.expects}; got {_short(value)}")
    return dict(params)


def _read_fitted_arrays(group: zarr.Group, spec: EstimatorSpec, where: str
                        ) -> dict[str, zarr.Array]:
    out: dict[str, zarr.Array] = {}
    for name, arr in group.arrays():
        if not _ATTR_NAME.match(name) or hasattr(spec.cls, name):
            raise ValueError(f"array {name!r} is not a fitted attribute name")
        out[name] = arr
    return out


def _read_estimator(group: zarr.Group, where: str, table: ModelTable, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise StoreFormatError(f"{where}: estimators are nested too deeply.")
    header = store_header(group)
    if header is None or header.get("kind") != "model":
        raise StoreFormatError(f"{where} is not a saved veob_dask model (no "
                               f"'{layout.ATTR_KEY}' model header).")
    kind, params, state = _model_header(header, where)
    if not isinstance(kind, str) or kind not in table:
        raise StoreFormatError(
            f"refusing to load {where}: estimator kind {_short(kind)} is not a class this "
            f"veob_dask can load ({', '.join(table)}).")
    try:
        if kind == PIPELINE:
            return _read_pipeline(group, where, table, depth, params)
        return _build(group, where, table, depth, kind, params, state)
    except (ValueError, TypeError, KeyError, InvalidParameterError) as err:
        if isinstance(err, StoreFormatError):
            raise
        raise StoreFormatError(f"{where}: the saved {kind} is invalid: {err}.") from err


def _read_pipeline(group: zarr.Group, where: str, table: ModelTable, depth: int,
                   params: Any) -> Any:
    names = params.get("names") if isinstance(params, dict) else None
    if (not isinstance(names, list) or not names or len(set(map(str, names))) != len(names)
            or not all(isinstance(n, str) and n.isidentifier() for n in names)):
        raise ValueError(f"pipeline step names must be distinct identifiers; got "
                         f"{_short(names)}")
    steps = []
    for i, name in enumerate(names):
        sub = group.get(f"{layout.MODEL_STEPS}/{i}")
        if not isinstance(sub, zarr.Group):
            raise TypeError(f"step {i} ({name}) is missing")
        steps.append((name, _read_estimator(sub, f"{where}/steps/{i}", table, depth + 1)))
    return table[PIPELINE].cls(steps)


def _build(group: zarr.Group, where: str, table: ModelTable, depth: int, kind: str,
           params: Any, state: Any) -> Any:
    spec = table[kind]
    zarrays = _read_fitted_arrays(group, spec, where)
    _check_shapes(spec, {k: tuple(a.shape) for k, a in zarrays.items()},
                  state if isinstance(state, dict) else {})  # before reading any data
    arrays = read_arrays(group, list(zarrays), where)
    nested: dict[str, Any] = {}
    fitted = group.get(layout.MODEL_FITTED)
    if isinstance(fitted, zarr.Group):
        for attr, sub in fitted.groups():
            allowed = spec.nested.get(attr, ())
            est = _read_estimator(sub, f"{where}/fitted/{attr}", table, depth + 1)
            if not any(type(est) is table[k].cls for k in allowed if k in table):
                raise ValueError(f"fitted/{attr} may not hold a {type(est).__name__}")
            nested[attr] = est
    return _construct(spec, kind, params, state, arrays, nested)


def _construct(spec: EstimatorSpec, kind: str, params: Any, state: Any,
               arrays: Mapping[str, np.ndarray], nested: Mapping[str, Any]) -> Any:
    params = _check_params(spec, params, kind)
    if spec.upgrade is not None and isinstance(state, dict):
        state, arrays = dict(state), dict(arrays)
        spec.upgrade(state, arrays)
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and _ATTR_NAME.match(k) and not hasattr(spec.cls, k)
            and _json_ok(v) for k, v in state.items()):
        raise ValueError("its fitted state must map attribute names to JSON values")
    check_arrays(spec, arrays, state)
    _check_complete(spec, arrays, state, nested)
    est = spec.cls(**params)
    for attr, value in {**state, **arrays, **nested}.items():
        setattr(est, attr, value)
    if spec.check is not None:
        spec.check(est)
    return est


def build_estimator(table: ModelTable, kind: str, params: Any, state: Any,
                    arrays: Mapping[str, np.ndarray], where: str) -> Any:
    """Build a ``kind`` estimator of ``table`` from checked parts (used by other loaders).

    Raises
    ------
    StoreFormatError
        An unknown kind, or parameters/state that fail the table's rules.
    """
    if kind not in table or kind == PIPELINE:
        raise StoreFormatError(f"refusing to load {where}: {_short(kind)} is not a class this "
                               f"loader builds ({', '.join(table)}).")
    try:
        return _construct(table[kind], kind, params, state, arrays, {})
    except (ValueError, TypeError, KeyError, InvalidParameterError) as err:
        if isinstance(err, StoreFormatError):
            raise
        raise StoreFormatError(f"{where}: the saved {kind} is invalid: {err}.") from err


def read_estimator(group: zarr.Group, where: str, table: ModelTable) -> Any:
    """Read the estimator saved in an open (possibly nested) group, building only ``table``'s
    classes (see :func:`load_estimator`)."""
    return _read_estimator(group, where, table, 0)


def _check_complete(spec: EstimatorSpec, arrays: Mapping[str, Any], state: Mapping[str, Any],
                    nested: Mapping[str, Any]) -> None:
    present = set(arrays) | set(state) | set(nested)
    if not present:
        return  # an unfitted estimator
    required = [n for n, a in spec.arrays.items() if not a.optional]
    required += [n for n, s in spec.scalars.items() if not s.optional]
    required += list(spec.nested)
    missing = [n for n in required if n not in present]
    if missing:
        raise ValueError(f"fitted attribute(s) {missing} are missing")


def load_estimator(path: PathLike | Location, table: ModelTable, *,
                   storage_options: Mapping[str, Any] | None = None) -> Any:
    """Load an estimator saved by :func:`save_estimator`, building only classes in ``table``.

    Raises
    ------
    StoreNotFoundError
        Nothing exists at ``path``.
    StoreFormatError
        Not a model, an unknown class, or parameters/state that fail the table's rules.
    """
    loc = as_location(path, storage_options)
    group, _ = open_artifact(loc, "model")
    return _read_estimator(group, repr(str(loc)), table, 0)
