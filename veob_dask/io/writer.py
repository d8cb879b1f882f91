"""Writing artifacts: one writer for every kind, arrays with dimension names, guarded chunk writes.

:func:`create_artifact` opens a temporary store through :func:`~veob_dask.io.publish.publishing`
and yields an :class:`ArtifactWriter`; on leaving the block, pending lazy writes are computed,
the root header (``attrs["veob_dask"]``) is written and the store is published. Everything that
writes a store — datasets, models, indexes, ragged sequences, corpora, word vectors, sentence
models, sparse matrices, checkpoints — goes through it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import zarr

from ..errors import DataError, InvalidParameterError, StoreError
from . import layout
from .chunking import shard_rows
from .direct import chunk_layout, in_place_rows, row_span, write_rows
from .header import make_header
from .location import Location, PathLike
from .publish import Publication, publishing
from .store import default_chunk_rows

__all__ = ["CODECS", "ArtifactWriter", "compressors", "create_artifact", "write_array",
           "write_artifact"]

#: Zarr skips chunks equal to the fill value unless told otherwise; veob_dask writes every chunk,
#: so that a chunk file that is absent always means damage (see ``ZarrRowSource``).
ALL_CHUNKS_WRITTEN = {"write_empty_chunks": True}

#: Chunk codecs a writer takes: zarr's default zstd, or none (plain little-endian bytes). Float
#: data seldom compresses (the synthetic benchmark matrix and embeddings to 0.87-0.93 of their
#: size) while zstd costs ~2 CPU-s per GB to write and ~1.5 to read on this project's machine;
#: ``"none"`` is for such data on a fast disk (benchmarks/README.md, "Scale").
CODECS = ("zstd", "none")


def compressors(codec: str) -> Any:
    """zarr's ``compressors`` argument for ``codec`` (one of :data:`CODECS`)."""
    if codec not in CODECS:
        raise InvalidParameterError(f"codec must be one of {CODECS}; got {codec!r}.")
    return "auto" if codec == "zstd" else None


class _GuardedTarget:
    """``da.store`` target that writes one region of a temporary array, only while the
    temporary store's sentinel (its root metadata object: ``zarr.json``, or the held one of a
    store written in place on an object store) exists. Pickles as plain data."""

    def __init__(self, tmp: Location, array_path: str, array: zarr.Array | None = None, *,
                 in_place: bool = False) -> None:
        self.tmp = tmp
        self.array_path = array_path
        self._array = array
        self.in_place = in_place  # chunks of a shard come one per task: only direct writes

    def __getstate__(self) -> dict[str, Any]:
        return {"tmp": self.tmp, "array_path": self.array_path, "_array": None,
                "in_place": self.in_place}  # no _layout

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _open(self) -> zarr.Array:
        if self._array is None:
            key = (self.tmp.url, self.tmp.held_root, self.array_path)
            with _TARGETS_LOCK:
                arr = _TARGETS.get(key)
            if arr is None:
                arr = zarr.open_array(store=self.tmp.zarr_store(read_only=False),
                                      path=self.array_path, mode="r+")
                with _TARGETS_LOCK:
                    if len(_TARGETS) >= 64:
                        _TARGETS.clear()
                    _TARGETS[key] = arr
            self._array = arr
        return self._array

    def _sentinel_exists(self) -> bool:
        if self.tmp.is_local:
            return os.path.isfile(os.path.join(self.tmp.url, "zarr.json"))
        fs, root = self.tmp.filesystem()
        sentinel = f"{root.rstrip('/')}/{self.tmp.root_meta}"
        with contextlib.suppress(Exception):
            fs.invalidate_cache(sentinel)  # listings cached by this process may be stale
        return bool(fs.exists(sentinel))

    def __setitem__(self, key: Any, value: Any) -> None:
        if not self._sentinel_exists():
            raise StoreError(f"the temporary store {self.tmp.url!r} was removed (the write was "
                             "stopped); this chunk was not written.")
        arr = self._open()
        if self.in_place and not isinstance(value, np.ndarray):
            value = np.asarray(value.toarray() if hasattr(value, "toarray") else value)
        if self.in_place and value.dtype != arr.dtype:
            value = value.astype(arr.dtype)
        if self._write_direct(arr, key, value):
            return
        if self.in_place:  # zarr would rewrite the whole shard under the other chunks' writers
            raise StoreError(f"chunk {key!r} of {self.array_path!r} could not be written in "
                             "place in its shard.")
        arr[key] = value

    def _write_direct(self, arr: zarr.Array, key: Any, value: Any) -> bool:
        """Whole shards (or chunks) of a local store written by :mod:`veob_dask.io.direct`
        (the bytes zarr would write, without its copies); False where zarr writes."""
        span = row_span(key, tuple(arr.shape))
        if not self.tmp.is_local or not isinstance(value, np.ndarray) or span is None:
            return False
        layout = self.__dict__.get("_layout", False)
        if layout is False:
            layout = self.__dict__["_layout"] = chunk_layout(
                arr, os.path.join(self.tmp.url, self.array_path))
        if layout is None or value.dtype != layout.dtype:
            return False
        start, stop = span
        return value.shape[0] == stop - start and write_rows(layout, start, value)


_TARGETS: dict[tuple[str, str, str], zarr.Array] = {}
_TARGETS_LOCK = threading.Lock()


class ArtifactWriter:
    """Fills one group of a temporary store (see :func:`create_artifact`).

    Attributes
    ----------
    publication : Publication
        The temporary store and its output rules.
    header : dict
        The root header fields; update it (``writer.header["n_rows"] = n``) before the end.
    """

    def __init__(self, publication: Publication, group: zarr.Group, path: str,
                 header: dict[str, Any] | None) -> None:
        self.publication = publication
        self.group = group
        self.path = path
        self.header = header
        self._pending: list[Any] = []
        self._children: list[ArtifactWriter] = []
        self._finishers: list[Callable[[], None]] = []

    @property
    def location(self) -> Location:
        """Where this group is being written (inside the temporary store)."""
        tmp = self.publication.tmp
        return tmp.child(*self.path.split("/")) if self.path else tmp

    # -- arrays -------------------------------------------------------------------------------
    def array(self, name: str, data: Any = None, *, dims: Sequence[str],
              shape: tuple[int, ...] | None = None, dtype: Any = None,
              chunks: tuple[int, ...] | None = None,
              attrs: Mapping[str, Any] | None = None,
              shards: tuple[int, ...] | None = None, codec: str = "zstd") -> zarr.Array:
        """Create array ``name`` with ``dims`` (Zarr ``dimension_names``); write ``data`` if given.

        Without ``data``, ``shape`` and ``dtype`` say what to create (fill it by slices).
        ``chunks`` defaults to about 16 MiB along axis 0, other axes whole. ``shards`` (a
        multiple of ``chunks`` on every axis) stores the chunks in shards of that shape, one
        file each (rule 6 of :mod:`veob_dask.io.chunking`); fill a sharded array by whole
        shards, since writing part of a shard rewrites all of it. ``codec`` is one of
        :data:`CODECS` (text arrays always take zarr's default).
        """
        comp = compressors(codec)
        if data is not None:
            data = np.ascontiguousarray(data)
            shape, dtype = data.shape, data.dtype
        if shape is None or dtype is None:
            raise ValueError("array() needs data, or shape and dtype.")
        text = np.dtype(dtype).kind in "UTO"
        if text:
            # Zarr's fixed-width str dtype has no stable v3 spec; variable-length UTF-8 has.
            dtype = zarr.dtype.VariableLengthUTF8()
        shape = tuple(int(s) for s in shape)
        dims = tuple(dims)
        if len(dims) != len(shape):
            raise ValueError(f"array {name!r}: {len(dims)} dimension names for {len(shape)} axes.")
        if chunks is None:
            item = 16 if text else np.dtype(dtype).itemsize
            row = int(np.prod(shape[1:], dtype=np.int64)) * item
            rows = max(1, min(max(shape[0], 1) if shape else 1, (1 << 24) // max(1, row)))
            chunks = (rows, *shape[1:]) if shape else ()
        chunks = tuple(max(1, int(c)) for c in chunks)
        if shards is not None:
            shards = tuple(int(s) for s in shards)
            if len(shards) != len(chunks) or any(s < 1 or s % c for s, c in zip(shards, chunks,
                                                                                 strict=True)):
                raise ValueError(f"array {name!r}: shards {shards} are not whole chunks "
                                 f"{chunks}.")
        arr = self.group.create_array(name, shape=shape, dtype=dtype, chunks=chunks,
                                      shards=shards, dimension_names=dims,
                                      config=ALL_CHUNKS_WRITTEN,
                                      **({} if text else {"compressors": comp}))
        if attrs:
            arr.attrs.update(dict(attrs))
        if data is not None and data.size:
            arr[...] = data
        return arr

    def store(self, name: str, x: Any, *, dims: Sequence[str], chunk_rows: int | None = None,
              attrs: Mapping[str, Any] | None = None, shard_above: int | None = None,
              codec: str = "zstd") -> None:
        """Schedule the (dask or numpy) array ``x`` to be written as ``name``, row chunk by row
        chunk; the writes run at :meth:`flush` or at the end of the block.

        Chunks are ``chunk_rows`` rows (default: the dask row chunks). An array of more row
        chunks than ``shard_above`` (default
        :data:`~veob_dask.io.chunking.SHARD_ABOVE_CHUNKS`) is sharded by
        :func:`~veob_dask.io.chunking.shard_rows` and written one whole shard per task.
        ``codec``: one of :data:`CODECS`.
        """
        if not isinstance(x, da.Array):
            x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] == 0:
            raise DataError(f"cannot write an empty array {name!r} (shape {x.shape}).")
        if not isinstance(x, da.Array):
            rows = chunk_rows or default_chunk_rows(x.shape[1:], x.dtype, x.shape[0])
            x = da.from_array(x, chunks=(rows, *x.shape[1:]))
        rows = min(chunk_rows or x.chunks[0][0], x.shape[0])
        per_shard = shard_rows(x.shape[0], rows, shard_above=shard_above)
        arr = self.array(name, shape=x.shape, dtype=x.dtype, dims=dims,
                         chunks=(rows, *x.shape[1:]), attrs=attrs, codec=codec,
                         shards=(per_shard, *x.shape[1:]) if per_shard else None)
        path = f"{self.path}/{name}" if self.path else name
        tmp = self.publication.tmp
        layout = chunk_layout(arr, os.path.join(tmp.url, path)) if tmp.is_local else None
        in_place = layout is not None and in_place_rows(layout)
        # a sharded array is written a whole shard per task: concurrent writes of chunks of
        # one shard through zarr would each read, modify and rewrite the shard (lost updates,
        # and O(n^2)). Uncompressed chunks of a local store are written in place, a chunk per
        # task, at offsets known in advance: no task waits for the rest of its shard, and no
        # copy joins them.
        x = _regular_rows(x, rows if in_place else (per_shard or rows))
        target = _GuardedTarget(tmp, path, arr, in_place=in_place)
        self._pending.append(da.store(x, target, lock=False, compute=False))

    def flush(self) -> None:
        """Compute every scheduled write (see :meth:`Publication.compute`)."""
        pending = [w for c in self._walk() for w in c._pending]
        for c in self._walk():
            c._pending = []
        if pending:
            self.publication.compute(*pending)

    # -- groups -------------------------------------------------------------------------------
    def subgroup(self, name: str, kind: str | None = None, **fields: Any) -> ArtifactWriter:
        """A writer for group ``name`` inside this one (a nested artifact when ``kind`` given)."""
        group = self.group.create_group(name)
        path = f"{self.path}/{name}" if self.path else name
        child = ArtifactWriter(self.publication, group, path,
                               make_header(kind, **fields) if kind else None)
        self._children.append(child)
        return child

    def on_finish(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` just before the headers are written (to record final counts)."""
        self._finishers.append(fn)

    def _walk(self) -> Iterator[ArtifactWriter]:
        yield self
        for c in self._children:
            yield from c._walk()

    def finish(self) -> None:
        """Run pending writes and finishers, then write every header (root last)."""
        self.flush()
        writers = list(self._walk())
        for w in writers:
            for fn in w._finishers:
                fn()
        for w in reversed(writers):
            if w.header is not None:
                w.group.attrs[layout.ATTR_KEY] = w.header


def _regular_rows(x: da.Array, chunk_rows: int | None) -> da.Array:
    rows = chunk_rows or x.chunks[0][0]
    regular = all(c == rows for c in x.chunks[0][:-1]) and x.chunks[0][-1] <= rows
    rest = tuple(-1 for _ in x.shape[1:])
    if not regular or (len(x.chunks) > 1 and any(len(c) > 1 for c in x.chunks[1:])):
        x = x.rechunk((rows, *rest))
    return x


@contextlib.contextmanager
def create_artifact(path: PathLike | Location, kind: str, *, overwrite: bool = False,
                    inputs: Iterable[PathLike | Location | None] = (),
                    storage_options: Mapping[str, Any] | None = None,
                    nbytes: int | None = None, **fields: Any) -> Iterator[ArtifactWriter]:
    """Write a new artifact of ``kind`` at ``path``: yield its :class:`ArtifactWriter`.

    The store is filled in a temporary sibling and published when the block ends without error
    (see :mod:`veob_dask.io.publish` for what may be replaced and how failures are cleaned up).
    ``fields`` go into the root header beside ``format_version``, ``kind``, ``created`` and
    ``writer``; ``nbytes`` (when known) is checked against the free space first.

    Raises
    ------
    StoreExistsError
        The output may not be written (see :func:`~veob_dask.io.publish.check_output`).
    StoreError
        Not enough space, a read-only or forbidden target.
    """
    with publishing(path, overwrite=overwrite, inputs=inputs, storage_options=storage_options,
                    nbytes=nbytes) as pub:
        group = zarr.open_group(store=pub.tmp.zarr_store(read_only=False), mode="w-")
        writer = ArtifactWriter(pub, group, "", make_header(kind, **fields))
        yield writer
        writer.finish()


def write_artifact(path: PathLike | Location, kind: str, arrays: Mapping[str, Any], *,
                   dims: Mapping[str, Sequence[str]], overwrite: bool = False,
                   inputs: Iterable[PathLike | Location | None] = (),
                   storage_options: Mapping[str, Any] | None = None,
                   **fields: Any) -> None:
    """Write in-memory ``arrays`` (name → numpy) plus header ``fields`` as an artifact of ``kind``.

    Every array needs its dimension names in ``dims``.
    """
    data = {k: np.asarray(v) for k, v in arrays.items()}
    nbytes = sum(int(v.nbytes) for v in data.values())
    with create_artifact(path, kind, overwrite=overwrite, inputs=inputs,
                         storage_options=storage_options, nbytes=nbytes, **fields) as w:
        for name, value in data.items():
            w.array(name, value, dims=dims[name])


def write_array(
    x: Any,
    path: PathLike | Location,
    name: str = "X",
    *,
    attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    chunk_rows: int | None = None,
    overwrite: bool = False,
    inputs: Iterable[PathLike | Location | None] = (),
    storage_options: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    shard_above: int | None = None,
    codec: str = "zstd",
) -> None:
    """Write ``x`` (and optional ``extra`` arrays) as a new dataset store, atomically.

    Parameters
    ----------
    x : dask.array.Array or numpy.ndarray
        Data; row chunks become Zarr chunks (rechunked to a regular size first when needed).
    path : str, path-like or Location
        Destination store (local path or fsspec URL).
    name : str, default="X"
        Name of the array for ``x``.
    attrs : mapping, optional
        JSON attributes of the array ``x`` (e.g. its provenance).
    extra : mapping of str to array, optional
        More arrays with the same number of rows (e.g. ``{"y": labels}``).
    dims : mapping of str to tuple of str, optional
        Dimension names per array; default ``("sample", "feature")`` for a 2-D ``x`` (see
        :func:`~veob_dask.io.layout.dataset_dims`) and ``("sample", "<name>_1", ...)`` for
        extras.
    chunk_rows : int, optional
        Rows per chunk; defaults to the dask row chunks, or the chunk rule's (~24 MiB) for
        numpy input.
    overwrite : bool, default=False
        Replace an existing veob_dask store (never anything else).
    inputs : iterable of paths, optional
        Stores read to compute ``x``: an output equal to, inside or holding one is refused.
    storage_options : dict, optional
        fsspec options for a URL.
    meta : mapping, optional
        More root header fields.
    shard_above : int, optional
        An array of more row chunks than this is stored in shards of 16 chunks, one file each
        (default :data:`~veob_dask.io.chunking.SHARD_ABOVE_CHUNKS`, 1,024; ``0`` always
        shards); see :func:`~veob_dask.io.chunking.shard_rows`.
    codec : {"zstd", "none"}, default="zstd"
        Chunk compression of every array (:data:`CODECS`): zstd, or none for data that does
        not compress (most float data), which then writes and reads with less CPU.

    Notes
    -----
    Laziness: computes ``x`` chunk by chunk (one compute, on a pool stopped before any cleanup);
    nothing is gathered. Memory: one chunk (one shard when sharded) per worker thread. The
    store appears at ``path`` only once complete.
    """
    arrays: dict[str, Any] = {name: x, **dict(extra or {})}
    shapes = {k: tuple(getattr(v, "shape", np.shape(v))) for k, v in arrays.items()}
    sizes = [int(np.prod(s, dtype=np.int64)) * np.dtype(getattr(v, "dtype", None) or
             np.asarray(v).dtype).itemsize for (k, v), s in zip(arrays.items(), shapes.values(),
                                                                  strict=True)]
    names = dict(dims or {})
    with create_artifact(path, "dataset", overwrite=overwrite, inputs=inputs,
                         storage_options=storage_options, nbytes=sum(sizes),
                         arrays=list(arrays), **dict(meta or {})) as w:
        for key, value in arrays.items():
            ndim = len(shapes[key])
            default = layout.dataset_dims(ndim) if key == name else layout.extra_dims(key, ndim)
            w.store(key, value, dims=names.get(key, default),
                    chunk_rows=chunk_rows if key == name else None,
                    attrs=attrs if key == name else None, shard_above=shard_above,
                    codec=codec)
