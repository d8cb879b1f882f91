"""Zarr v3 stores: lazy chunk-checked reads, atomic writes, and provenance attributes.

A *dataset store* is a Zarr group holding an array ``X`` (samples along axis 0) and optionally
``y`` (one label per sample). Arrays are chunked by rows only, so one dask task reads one chunk.

Reads go through :class:`ZarrRowSource`, which raises :class:`StoreFormatError` naming the chunk
when a chunk file is missing or cannot be decoded (plain ``da.from_zarr`` would silently return
the fill value for a missing chunk). Writes go to a temporary sibling path that is renamed into
place only once complete, so an interrupted write never leaves a half-written store behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize

from ..errors import DataError, StoreExistsError, StoreFormatError, StoreNotFoundError

__all__ = [
    "ZarrRowSource",
    "atomic_store",
    "default_chunk_rows",
    "open_group",
    "provenance",
    "read_array",
    "read_matrix",
    "store_exists",
    "write_array",
]

#: Zarr skips chunks equal to the fill value unless told otherwise; veob_dask writes every chunk,
#: so that a chunk file that is absent always means damage (see :class:`ZarrRowSource`).
ALL_CHUNKS_WRITTEN = {"write_empty_chunks": True}

#: Target uncompressed size of one row chunk when the caller gives none.
DEFAULT_CHUNK_BYTES = 64 * 2**20


def _is_url(path: str | os.PathLike[str]) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def _local(path: str | os.PathLike[str]) -> Path:
    s = str(path)
    return Path(s.removeprefix("file://"))


def default_chunk_rows(row_shape: tuple[int, ...], dtype: Any, n_rows: int) -> int:
    """Rows per chunk so that one chunk is about 64 MiB uncompressed (at least 1 row)."""
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return int(max(1, min(n_rows, DEFAULT_CHUNK_BYTES // max(1, row_bytes))))


def provenance(source: str, shape: tuple[int, ...], dtype: Any, **extra: Any) -> dict[str, Any]:
    """Provenance attributes recorded on every ingested array."""
    out: dict[str, Any] = {
        "source": source,
        "shape": [int(s) for s in shape],
        "dtype": str(np.dtype(dtype)),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "writer": "veob_dask",
    }
    out.update(extra)
    return out


def store_exists(path: str | os.PathLike[str]) -> bool:
    """Return True when a Zarr group or array exists at ``path``."""
    if not _is_url(path):
        p = _local(path)
        return (p / "zarr.json").exists()
    try:
        zarr.open(store=str(path), mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.NodeNotFoundError):
        return False
    return True


def open_group(path: str | os.PathLike[str], mode: str = "r") -> zarr.Group:
    """Open a Zarr group, raising :class:`StoreNotFoundError` with the path when it is absent."""
    if mode == "r" and not store_exists(path):
        raise StoreNotFoundError(f"no Zarr store at {str(path)!r}; check the path (ingest first?).")
    try:
        node = zarr.open(store=str(path) if _is_url(path) else _local(path), mode=mode)
    except (FileNotFoundError, zarr.errors.NodeNotFoundError) as err:
        raise StoreNotFoundError(f"no Zarr store at {str(path)!r}.") from err
    if not isinstance(node, zarr.Group):
        raise StoreFormatError(f"{str(path)!r} holds a Zarr array, not a group.")
    return node


_OPEN_ARRAYS: dict[tuple[str, str, int, int, int], zarr.Array] = {}
_OPEN_LOCK = threading.Lock()


class ZarrRowSource:
    """Array-like view of a Zarr array that checks chunks exist and decode.

    It is what :func:`read_array` hands to ``da.from_array``. It pickles as (path, name), so
    multi-process Dask workers reopen the store themselves.
    """

    def __init__(self, path: str, name: str) -> None:
        self.path = str(path)
        self.name = name
        arr = self._array()
        self.shape: tuple[int, ...] = tuple(arr.shape)
        self.dtype = np.dtype(str(arr.dtype))
        self.ndim = len(self.shape)
        self.chunks: tuple[int, ...] = tuple(arr.chunks)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "shape": self.shape, "dtype": self.dtype,
                "ndim": self.ndim, "chunks": self.chunks}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

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
        group = open_group(self.path, mode="r")
        try:
            arr = group[self.name]
        except KeyError as err:
            raise StoreFormatError(
                f"store {self.path!r} has no array {self.name!r}; it holds {sorted(group.keys())}."
            ) from err
        if not isinstance(arr, zarr.Array):
            raise StoreFormatError(f"{self.path!r}/{self.name} is a group, not an array.")
        self.__dict__["_cached"] = arr
        if key is not None:
            with _OPEN_LOCK:
                if len(_OPEN_ARRAYS) >= 64:
                    _OPEN_ARRAYS.clear()
                _OPEN_ARRAYS[key] = arr
        return arr

    def _cache_key(self) -> tuple[str, str, int, int, int] | None:
        if _is_url(self.path):
            return None
        try:
            st = (_local(self.path) / self.name / "zarr.json").stat()
        except OSError:
            return None
        # inode too: an atomic replacement renames a new file over the path
        return (self.path, self.name, st.st_ino, st.st_mtime_ns, st.st_size)

    def _check_chunks_present(self, arr: zarr.Array, key: tuple[slice, ...]) -> None:
        from zarr.core.sync import sync

        rows = key[0] if key else slice(None)
        start, stop, _ = rows.indices(self.shape[0])
        if stop <= start:
            return
        c0 = self.chunks[0]
        tail = (0,) * (self.ndim - 1)
        for ci in range(start // c0, (stop - 1) // c0 + 1):
            chunk_key = arr.metadata.encode_chunk_key((ci, *tail))
            full = f"{arr.path}/{chunk_key}" if arr.path else chunk_key
            if not sync(arr.store.exists(full)):
                lo, hi = ci * c0, min(self.shape[0], (ci + 1) * c0)
                raise StoreFormatError(
                    f"chunk {chunk_key} of array {self.name!r} in {self.path!r} is missing "
                    f"(rows {lo}-{hi - 1}); the store is incomplete. Re-ingest it, or restore "
                    "the chunk from a copy."
                )

    def __getitem__(self, key: Any) -> np.ndarray:
        arr = self._array()
        if not isinstance(key, tuple):
            key = (key,)
        self._check_chunks_present(arr, key)
        try:
            return np.asarray(arr[key])
        except StoreFormatError:
            raise
        except Exception as err:  # codec errors surface as many types; name the chunk
            rows = key[0] if key and isinstance(key[0], slice) else slice(None)
            raise StoreFormatError(
                f"could not decode rows {rows.start}-{rows.stop} of array {self.name!r} in "
                f"{self.path!r} ({type(err).__name__}: {err}); the chunk is corrupt. Re-ingest "
                "the store or restore the chunk."
            ) from err


def read_array(
    path: str | os.PathLike[str], name: str = "X", *, chunk_rows: int | None = None
) -> da.Array:
    """Open array ``name`` of the store at ``path`` lazily as a dask array.

    Parameters
    ----------
    path : str or path-like
        Local path or fsspec URL of a Zarr v3 group.
    name : str, default="X"
        Array inside the group.
    chunk_rows : int, optional
        Rows per dask chunk; a multiple of the stored chunk rows keeps one read per chunk.
        Defaults to the stored chunking.

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
    src = ZarrRowSource(str(path), name)
    rows = chunk_rows or src.chunks[0]
    chunks = (rows, *src.shape[1:])
    token = tokenize(str(path), name, src.shape, str(src.dtype), rows)
    return da.from_array(src, chunks=chunks, name=f"veob-read-{name}-{token}", asarray=True,
                         fancy=False, lock=False, inline_array=True)


def _create_array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any,
                  chunk_rows: int, attrs: Mapping[str, Any] | None) -> zarr.Array:
    chunks = (max(1, min(chunk_rows, max(1, shape[0]))), *shape[1:])
    arr = group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                             config=ALL_CHUNKS_WRITTEN)
    if attrs:
        arr.attrs.update(dict(attrs))
    return arr


@contextlib.contextmanager
def atomic_store(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path to write a store to; rename it to ``path`` on success.

    If the body raises, the temporary store is removed and any existing store at ``path`` is
    left untouched. Without ``overwrite``, an existing store raises :class:`StoreExistsError`
    before anything is written. For fsspec URLs the final move uses the filesystem's ``mv``.
    """
    if store_exists(path) and not overwrite:
        raise StoreExistsError(
            f"{str(path)!r} already exists; pass overwrite=True (CLI: --overwrite) to replace it."
        )
    if _is_url(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(str(path))
        tmp_root = f"{root.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
        protocol = str(path).split("://", 1)[0]
        try:
            yield f"{protocol}://{tmp_root}"
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(tmp_root, recursive=True)
            raise
        if fs.exists(root):
            fs.rm(root, recursive=True)
        fs.mv(tmp_root, root, recursive=True)
        return
    final = _local(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield str(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _regular_rows(x: da.Array, chunk_rows: int | None) -> da.Array:
    rows = chunk_rows or x.chunks[0][0]
    regular = all(c == rows for c in x.chunks[0][:-1]) and x.chunks[0][-1] <= rows
    rest = tuple(-1 for _ in x.shape[1:])
    if not regular or (len(x.chunks) > 1 and any(len(c) > 1 for c in x.chunks[1:])):
        x = x.rechunk((rows, *rest))
    return x


def write_array(
    x: Any,
    path: str | os.PathLike[str],
    name: str = "X",
    *,
    attrs: Mapping[str, Any] | None = None,
    group_attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    chunk_rows: int | None = None,
    overwrite: bool = False,
) -> None:
    """Write ``x`` (and optional ``extra`` arrays) as a new dataset store, atomically.

    Parameters
    ----------
    x : dask.array.Array or numpy.ndarray
        Data; row chunks become Zarr chunks (rechunked to a regular size first when needed).
    path : str or path-like
        Destination store (local path or fsspec URL).
    name : str, default="X"
        Name of the array for ``x``.
    attrs, group_attrs : mapping, optional
        JSON attributes for the array and for the group.
    extra : mapping of str to array, optional
        More arrays with the same number of rows (e.g. ``{"y": labels}``).
    chunk_rows : int, optional
        Rows per chunk; defaults to the dask row chunks, or ~64 MiB chunks for numpy input.
    overwrite : bool, default=False
        Replace an existing store.

    Notes
    -----
    Laziness: computes ``x`` chunk by chunk (one ``dask.compute``); nothing is gathered.
    Memory: one chunk per worker thread. The store appears at ``path`` only once complete.
    """
    arrays: dict[str, Any] = {name: x, **dict(extra or {})}
    with atomic_store(path, overwrite=overwrite) as tmp:
        group = zarr.open_group(store=tmp if _is_url(tmp) else Path(tmp), mode="w")
        if group_attrs:
            group.attrs.update(dict(group_attrs))
        stores = []
        for key, value in arrays.items():
            if not isinstance(value, da.Array):
                value = np.asarray(value)
                rows = chunk_rows or default_chunk_rows(value.shape[1:], value.dtype,
                                                        max(1, value.shape[0]))
                value = da.from_array(value, chunks=(rows, *value.shape[1:]))
            value = _regular_rows(value, chunk_rows if key == name else None)
            if value.shape[0] == 0:
                raise DataError(f"cannot write an empty array {key!r} (shape {value.shape}).")
            arr = _create_array(group, key, value.shape, value.dtype, value.chunks[0][0],
                                attrs if key == name else None)
            stores.append(da.store(value, arr, lock=False, compute=False))
        dask.compute(*stores)


def read_matrix(path: str | os.PathLike[str], name: str = "X") -> da.Array:
    """Open the data matrix of a dataset store lazily, dense or sparse.

    A store whose group attributes hold ``"sparse"`` is a row-chunked CSR store (see
    :mod:`veob_dask.io.sparse`) and opens as a dask array of ``scipy.sparse`` CSR blocks; any
    other store opens array ``name`` with :func:`read_array`.
    """
    group = open_group(path, mode="r")
    if "sparse" in group.attrs:
        from .sparse import read_sparse

        return read_sparse(path)
    return read_array(path, name)
