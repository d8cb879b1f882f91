"""Opening and reading stores: read-only groups, artifact headers, lazy chunk-checked arrays.

A *dataset store* is a Zarr group holding an array ``X`` (samples along axis 0) and optionally
``y`` (one label per sample). Arrays are chunked by rows only, so one dask task reads one chunk.

Reads go through :class:`ZarrRowSource`, which raises :class:`StoreFormatError` naming the chunk
when a chunk is missing or cannot be decoded (plain ``da.from_zarr`` would silently return the
fill value for a missing chunk: veob_dask writes every chunk, so an absent one means damage).
Writing is in :mod:`veob_dask.io.writer`; the output rules in :mod:`veob_dask.io.publish`.
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
import threading
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize

from ..errors import StoreFormatError, StoreNotFoundError
from . import layout
from .chunking import TARGET_CHUNK_BYTES, chunk_rows
from .direct import chunk_layout, direct_io_for, read_rows, row_span
from .header import check_header, header_of
from .location import Location, PathLike, as_location
from .metadata import check_chunks_written, check_row_array, check_store_metadata
from .readahead import advise_rows

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "ZarrRowSource",
    "check_fits_in_memory",
    "default_chunk_rows",
    "open_artifact",
    "open_group",
    "provenance",
    "read_array",
    "read_arrays",
    "reads_direct",
    "store_exists",
    "store_header",
]

#: Target uncompressed size of one row chunk when the caller gives none (see
#: :mod:`veob_dask.io.chunking`, which owns the rule).
DEFAULT_CHUNK_BYTES = TARGET_CHUNK_BYTES


def default_chunk_rows(row_shape: tuple[int, ...], dtype: Any, n_rows: int) -> int:
    """Rows per chunk by the library's chunk rule (:func:`veob_dask.io.chunking.chunk_rows`):
    about 24 MiB uncompressed, at least 4 MiB, at least 4 chunks when the data allows."""
    values = max(1, int(np.prod(row_shape, dtype=np.int64)))
    return chunk_rows((values,), dtype, n_rows=max(1, int(n_rows)))


def provenance(source: str, shape: tuple[int, ...], dtype: Any, **extra: Any) -> dict[str, Any]:
    """Provenance attributes recorded on every ingested or computed array."""
    out: dict[str, Any] = {
        "source": source,
        "shape": [int(s) for s in shape],
        "dtype": str(np.dtype(dtype)),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "writer": "veob_dask",
    }
    out.update(extra)
    return out


def store_exists(path: PathLike | Location, *, storage_options: Mapping[str, Any] | None = None
                 ) -> bool:
    """Return True when a Zarr group or array (a root ``zarr.json``) exists at ``path``."""
    loc = as_location(path, storage_options)
    if loc.is_local:
        return (loc.path / "zarr.json").is_file()
    fs, root = loc.filesystem()
    return bool(fs.exists(f"{root.rstrip('/')}/zarr.json"))


def open_group(path: PathLike | Location, mode: str = "r", *,
               storage_options: Mapping[str, Any] | None = None) -> zarr.Group:
    """Open the Zarr group at ``path`` read-only.

    Raises
    ------
    StoreNotFoundError
        Nothing is stored at ``path``.
    StoreFormatError
        The path holds a Zarr array rather than a group, or its metadata cannot be read.
    """
    if mode != "r":
        raise ValueError("open_group opens stores read-only; write through veob_dask.io.writer.")
    loc = as_location(path, storage_options)
    where = repr(str(loc))
    if not store_exists(loc):
        raise StoreNotFoundError(f"no Zarr store at {where}; check the path (ingest first?).")
    check_store_metadata(loc)  # every zarr.json, before zarr parses it
    try:
        node = zarr.open(store=loc.zarr_store(read_only=True), mode="r")
    except (FileNotFoundError, zarr.errors.NodeNotFoundError) as err:
        raise StoreNotFoundError(f"no Zarr store at {where}.") from err
    except Exception as err:  # cut-off JSON, unknown codecs... surface as many types
        raise StoreFormatError(f"cannot open {where} as a Zarr store ({type(err).__name__}: "
                               f"{_first_line(err)}).") from err
    if not isinstance(node, zarr.Group):
        raise StoreFormatError(f"{where} holds a Zarr array, not a group.")
    return node


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""


def store_header(group: zarr.Group) -> dict[str, Any] | None:
    """The (version-mapped) ``veob_dask`` header of an open group, or None."""
    x_attrs = None
    if layout.ATTR_KEY not in group.attrs:
        try:
            x = group.get(layout.DATA)
        except (KeyError, ValueError, TypeError, OSError):  # a damaged X has no header to give
            x = None
        x_attrs = dict(x.attrs) if isinstance(x, zarr.Array) else None
    return header_of(dict(group.attrs), x_attrs)


def open_artifact(path: PathLike | Location, kind: str | tuple[str, ...], *,
                  storage_options: Mapping[str, Any] | None = None
                  ) -> tuple[zarr.Group, dict[str, Any]]:
    """Open an artifact of ``kind`` read-only: ``(group, header)``; version 1 is mapped.

    Raises
    ------
    StoreNotFoundError
        Nothing is stored at ``path``.
    StoreFormatError
        Not a veob_dask store, another kind, or an unreadable format version.
    """
    loc = as_location(path, storage_options)
    group = open_group(loc)
    return group, check_header(store_header(group), repr(str(loc)), kind)


#: Bytes counted per value of a variable-length text array (for the memory check only).
TEXT_ITEMSIZE = 16


def numpy_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype a stored array reads as: variable-length text (numpy ``StringDType``)
    reads as ``object`` in dask arrays and as fixed-width ``str`` when read whole."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return np.dtype(object)
    return np.dtype(object) if dt.kind in "TO" else dt


def plain_text(values: np.ndarray) -> np.ndarray:
    """A text array read from Zarr (``StringDType``) as a fixed-width numpy ``str`` array."""
    if values.dtype.kind in "TO":
        return np.array(values.tolist(), dtype=str).reshape(values.shape)
    return values


def check_fits_in_memory(shape: tuple[int, ...], dtype: Any, where: str) -> None:
    """Raise :class:`StoreFormatError` if an array of ``shape`` would not fit in free memory
    (a damaged or hostile header can claim any size; nothing is allocated before this)."""
    import psutil

    dt = numpy_dtype(dtype)
    itemsize = TEXT_ITEMSIZE if dt.kind == "O" else dt.itemsize
    nbytes = int(np.prod([int(s) for s in shape], dtype=np.float64)) * itemsize
    free = int(psutil.virtual_memory().available)
    if nbytes > free:
        raise StoreFormatError(f"{where} claims {nbytes / 2**30:.3g} GiB (shape {tuple(shape)}, "
                               f"{dt}), more than the {free / 2**30:.3g} GiB of free "
                               "memory; the store is damaged or not meant to be read whole.")


def read_arrays(group: zarr.Group, names: list[str] | tuple[str, ...], where: str,
                *, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Read whole small arrays of an open group into memory, by name.

    Raises
    ------
    StoreFormatError
        A required array is absent, is a group, or cannot be decoded.
    """
    out: dict[str, np.ndarray] = {}
    for name in names:
        try:
            node = group.get(name)
        except Exception as err:
            raise StoreFormatError(f"{where}: cannot open array {name!r} ({_first_line(err)})."
                                   ) from err
        if node is None:
            if name in optional:
                continue
            raise StoreFormatError(f"{where} lacks array {name!r}; the store is incomplete.")
        if not isinstance(node, zarr.Array):
            raise StoreFormatError(f"{where}/{name} is a group, not an array.")
        check_fits_in_memory(tuple(node.shape), node.dtype, f"{where}/{name}")
        check_chunks_written(node, where, name)
        try:
            out[name] = plain_text(np.asarray(node[...]))
        except Exception as err:  # codec errors surface as many types
            raise StoreFormatError(f"{where}: could not decode array {name!r} "
                                   f"({type(err).__name__}: {_first_line(err)}); the store is "
                                   "corrupt.") from err
    return out


_OPEN_ARRAYS: dict[tuple[Any, ...], zarr.Array] = {}
_OPEN_LOCK = threading.Lock()


class ZarrRowSource:
    """Array-like view of a Zarr array that checks chunks exist and decode.

    It is what :func:`read_array` hands to ``da.from_array``. It pickles as (location, name),
    so multi-process Dask workers reopen the store themselves.
    """

    def __init__(self, path: PathLike | Location, name: str, *,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.location = as_location(path, storage_options)
        self.path = str(self.location)
        self.name = name
        key = self._cache_key()
        if key is None or key not in _OPEN_ARRAYS:  # checked when it was first opened
            check_row_array(self.location, name)
        arr = self._array()
        self.shape: tuple[int, ...] = tuple(arr.shape)
        self.dtype = numpy_dtype(arr.dtype)
        self.ndim = len(self.shape)
        self.chunks: tuple[int, ...] = tuple(arr.chunks)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_cached", "_layout")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _direct_layout(self, arr: zarr.Array) -> Any:
        """The :mod:`veob_dask.io.direct` layout of ``arr`` (None where zarr reads it)."""
        layout = self.__dict__.get("_layout", False)
        if layout is False:
            root = os.path.join(self.location.url, arr.path) if arr.path else self.location.url
            layout = self.__dict__["_layout"] = chunk_layout(arr, root)
        return layout

    def reads_direct(self) -> bool:
        """Whether whole row chunks of this array are read with ``O_DIRECT`` (a local store
        larger than memory, by :func:`veob_dask.io.direct.direct_io_for`)."""
        if not self.location.is_local or not self.ndim:
            return False
        layout = self._direct_layout(self._array())
        return layout is not None and direct_io_for(layout)

    def _array(self) -> zarr.Array:
        cached = self.__dict__.get("_cached")
        if cached is not None:
            return cached
        # Each task of a worker process unpickles its own copy of this source; opening the
        # store (two metadata reads) per chunk cost about 1 CPU-s per 80 chunks. Arrays are
        # shared per process, keyed by the array metadata file's inode, mtime and size, so a
        # store replaced at the same path is reopened.
        key = self._cache_key()
        if key is not None:
            with _OPEN_LOCK:
                hit = _OPEN_ARRAYS.get(key)
            if hit is not None:
                self.__dict__["_cached"] = hit
                return hit
        group = open_group(self.location)
        try:
            arr = group[self.name]
        except KeyError as err:
            raise StoreFormatError(
                f"store {self.path!r} has no array {self.name!r}; it holds {sorted(group.keys())}."
            ) from err
        except Exception as err:
            raise StoreFormatError(f"cannot open array {self.name!r} of {self.path!r} "
                                   f"({type(err).__name__}: {_first_line(err)}).") from err
        if not isinstance(arr, zarr.Array):
            raise StoreFormatError(f"{self.path!r}/{self.name} is a group, not an array.")
        self.__dict__["_cached"] = arr
        if key is not None:
            with _OPEN_LOCK:
                if len(_OPEN_ARRAYS) >= 64:
                    _OPEN_ARRAYS.clear()
                _OPEN_ARRAYS[key] = arr
        return arr

    def _cache_key(self) -> tuple[Any, ...] | None:
        if not self.location.is_local:
            return None
        try:
            st = (self.location.path / self.name / "zarr.json").stat()
        except OSError:
            return None
        # inode too: an atomic replacement renames a new file over the path
        return (self.path, self.name, st.st_ino, st.st_mtime_ns, st.st_size)

    def _chunk_exists(self, arr: zarr.Array, chunk_key: str) -> bool:
        """Whether the storage object ``chunk_key`` (a chunk, or a shard) exists; a shard must
        also be non-empty (zarr never writes an empty one, and reads it as the fill value)."""
        rel = f"{arr.path}/{chunk_key}" if arr.path else chunk_key
        if self.location.is_local:
            try:
                st = os.stat(os.path.join(self.location.url, rel))
            except OSError:
                return False
            return stat.S_ISREG(st.st_mode) and (st.st_size > 0 or not arr.shards)
        fs, root = self.location.filesystem()
        return bool(fs.exists(f"{root.rstrip('/')}/{rel}"))

    def _check_chunks_present(self, arr: zarr.Array, key: tuple[Any, ...]) -> None:
        """Check the storage objects holding the rows of ``key`` exist: one file per row chunk,
        or per shard (many inner chunks) in a sharded array."""
        rows = key[0] if key else slice(None)
        if not isinstance(rows, slice):
            return
        start, stop, _ = rows.indices(self.shape[0])
        stored = tuple(arr.shards or arr.chunks)  # the grid of the storage objects
        if stop <= start or not stored or stored[0] < 1:
            return
        c0 = stored[0]
        what = "shard" if arr.shards else "chunk"
        tail = (0,) * (self.ndim - 1)
        for ci in range(start // c0, (stop - 1) // c0 + 1):
            chunk_key = arr.metadata.encode_chunk_key((ci, *tail))
            if not self._chunk_exists(arr, chunk_key):
                lo, hi = ci * c0, min(self.shape[0], (ci + 1) * c0)
                raise StoreFormatError(
                    f"{what} {chunk_key} of array {self.name!r} in {self.path!r} is missing "
                    f"(rows {lo}-{hi - 1}); the store is incomplete. Re-ingest it, or restore "
                    f"the {what} from a copy."
                )

    def _read_ahead(self, arr: zarr.Array, key: tuple[Any, ...]) -> None:
        """Hint the kernel to fetch the files of the next rows (local stores; see
        :mod:`veob_dask.io.readahead`)."""
        rows = key[0] if key else slice(None)
        if self.location.is_local and isinstance(rows, slice) and self.ndim:
            start, stop, _ = rows.indices(self.shape[0])
            advise_rows(self.location.url, arr, start, stop)

    def _read_direct(self, arr: zarr.Array, key: tuple[Any, ...]) -> np.ndarray | None:
        """Whole row chunks of a local store read by :mod:`veob_dask.io.direct` (one copy),
        or None where zarr reads them."""
        span = row_span(key, self.shape) if self.location.is_local else None
        if span is None:
            return None
        layout = self._direct_layout(arr)
        return None if layout is None else read_rows(layout, *span)

    def __getitem__(self, key: Any) -> np.ndarray:
        arr = self._array()
        if not isinstance(key, tuple):
            key = (key,)
        self._check_chunks_present(arr, key)
        self._read_ahead(arr, key)
        try:
            direct = self._read_direct(arr, key)
            if direct is not None:
                return direct
            out = np.asarray(arr[key])
            return out.astype(object) if out.dtype.kind == "T" else out
        except StoreFormatError:
            raise
        except Exception as err:  # codec errors surface as many types; name the chunk
            rows = key[0] if key and isinstance(key[0], slice) else slice(None)
            what = "chunk (or the shard holding it)" if arr.shards else "chunk"
            raise StoreFormatError(
                f"could not decode rows {rows.start}-{rows.stop} of array {self.name!r} in "
                f"{self.path!r} ({type(err).__name__}: {_first_line(err)}); the {what} is "
                "corrupt. Re-ingest the store or restore it from a copy."
            ) from err


def reads_direct(path: PathLike | Location, name: str = "X", *,
                 storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether :func:`read_array` reads array ``name`` of the store at ``path`` with
    ``O_DIRECT``: a local sharded or chunked Zarr v3 array larger than the machine's physical
    memory (Dask config ``veob_dask.direct_io``, see :mod:`veob_dask.io.direct`).

    A task waiting for such a read holds no core, so a pass over the array keeps the cores
    busy only with two threads a core; the ``veob fit`` command asks for them when this holds.

    Raises
    ------
    StoreNotFoundError
        If no store exists at ``path``.
    StoreFormatError
        If the array is absent or not a row array.
    """
    return ZarrRowSource(path, name, storage_options=storage_options).reads_direct()


def read_array(
    path: PathLike | Location, name: str = "X", *, chunk_rows: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> da.Array:
    """Open array ``name`` of the store at ``path`` lazily as a dask array.

    Parameters
    ----------
    path : str, path-like or Location
        Local path or fsspec URL of a Zarr v3 group.
    name : str, default="X"
        Array inside the group.
    chunk_rows : int, optional
        Rows per dask chunk; a multiple of the stored chunk rows keeps one read per chunk.
        Defaults to the stored chunking.
    storage_options : dict, optional
        fsspec options for a URL (credentials, endpoint...).

    Returns
    -------
    dask.array.Array
        Lazy array; each task reads (and checks) one stored row chunk.

    Raises
    ------
    StoreNotFoundError
        If no store exists at ``path``.
    StoreFormatError
        If the array is absent; later, at compute time, if a chunk is missing or corrupt.

    Notes
    -----
    Laziness: builds a graph only. Chunks: stored row chunks, all other axes whole.
    Memory: one stored chunk per task. Determinism: the graph name depends on path and name.
    """
    src = ZarrRowSource(path, name, storage_options=storage_options)
    if src.ndim == 0:
        raise StoreFormatError(f"array {name!r} of {src.path!r} is a scalar; expected rows.")
    rows = chunk_rows or src.chunks[0]
    chunks = (rows, *src.shape[1:])
    token = tokenize(src.path, src.location.options, name, src.shape, str(src.dtype), rows)
    return da.from_array(src, chunks=chunks, name=f"veob-read-{name}-{token}", asarray=True,
                         fancy=False, lock=False, inline_array=True)
