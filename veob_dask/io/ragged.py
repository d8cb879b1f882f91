"""Ragged sequences (values + offsets), in memory or in Zarr, read lazily block by block.

A ragged collection of ``n`` variable-length sequences is two arrays: ``values`` (all items, in
sequence order; shape ``(n_values,)`` for ids/codes or ``(n_values, dim)`` for vectors) and
``offsets`` (``n + 1`` non-decreasing int64, ``offsets[0] == 0``); sequence ``i`` is
``values[offsets[i]:offsets[i + 1]]``. Letters of words (ASCII codes), token ids of sentences
and vectors of a trajectory all fit this layout.

Store layout (a Zarr v3 group of kind ``"ragged"``, written atomically; also nested inside
other artifacts, e.g. a corpus's ``tokens``)::

    attrs["veob_dask"] = {"format_version": 2, "kind": "ragged", "n_sequences": n,
                          "n_values": v, "attrs": {...}}
    values    (v, ...) chunked along axis 0      dims ("value", "item_1", ...)
    offsets   (n + 1,) int64, chunked            dims ("offset",)

Version-1 stores (``attrs["veob_ragged"]``, same arrays) are read too.

:meth:`Ragged.block` returns sequences ``lo..hi`` with rebased offsets; on a Zarr-backed
collection it reads only the needed slices, so a Dask task handling one block of sequences
reads one slice of ``offsets`` and the matching slice of ``values``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from ..errors import DataError, InvalidParameterError, StoreFormatError
from .location import Location, PathLike, as_location
from .metadata import check_chunks_written
from .store import open_artifact, store_header
from .writer import ArtifactWriter, create_artifact

__all__ = ["Ragged", "RaggedWriter", "open_ragged", "read_ragged", "write_ragged"]

#: Offsets of this many sequences per Zarr chunk, by default.
OFFSET_CHUNK = 1 << 18


def _check_offsets(offsets: np.ndarray, n_values: int) -> None:
    if offsets.ndim != 1 or offsets.size < 1:
        raise DataError(f"offsets must be 1-D with n_sequences + 1 >= 1 entries; got shape "
                        f"{offsets.shape}.")
    if offsets[0] != 0 or offsets[-1] != n_values:
        raise DataError(f"offsets must start at 0 and end at n_values={n_values}; got "
                        f"{int(offsets[0])}..{int(offsets[-1])}.")
    if offsets.size > 1 and np.any(np.diff(offsets) < 0):
        bad = int(np.flatnonzero(np.diff(offsets) < 0)[0])
        raise DataError(f"offsets must be non-decreasing; offsets[{bad + 1}] < offsets[{bad}].")


class Ragged:
    """Variable-length sequences as ``values`` + ``offsets`` (numpy or Zarr arrays).

    Parameters
    ----------
    values : array-like
        All items, concatenated; numpy or a Zarr array (read lazily by slices).
    offsets : array-like of int
        ``n_sequences + 1`` non-decreasing positions into ``values``.
    attrs : mapping, optional
        JSON description (e.g. the vocabulary the ids refer to).
    path : str, optional
        Where a Zarr-backed instance lives (for messages).
    check : bool, default=True
        Validate in-memory offsets against ``values``.

    Raises
    ------
    DataError
        If the offsets are not a valid partition of ``values``.

    Notes
    -----
    Laziness: a Zarr-backed instance (from :func:`read_ragged`) holds only open arrays and the
    offsets slices it is asked for. Memory: :meth:`block` holds one block of values.

    Examples
    --------
    >>> r = Ragged.from_sequences([[1, 2, 3], [], [4]])
    >>> len(r), r.lengths().tolist(), r[0].tolist()
    (3, [3, 0, 1], [1, 2, 3])
    """

    def __init__(self, values: Any, offsets: Any, attrs: Mapping[str, Any] | None = None,
                 *, path: str | None = None, check: bool = True) -> None:
        off = offsets if isinstance(offsets, zarr.Array) else np.asarray(offsets)
        vals = values if isinstance(values, zarr.Array) else np.asarray(values)
        if not isinstance(off, zarr.Array):
            if off.dtype.kind not in "iu":
                raise DataError(f"offsets must be integers; got dtype {off.dtype}.")
            off = off.astype(np.int64, copy=False)
        if check and not isinstance(off, zarr.Array):
            if vals.ndim == 0:
                raise DataError("values must have at least one axis (the item axis).")
            _check_offsets(off, int(vals.shape[0]))
        self.values = vals
        self.offsets = off
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.path = path
        #: Where a Zarr-backed instance lives (workers reopen it from here).
        self.location: Location | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[Any] | np.ndarray], *,
                       dtype: Any = None, attrs: Mapping[str, Any] | None = None) -> Ragged:
        """Build from an iterable of sequences (lists or arrays of equal trailing shape)."""
        parts = [np.asarray(s, dtype=dtype) for s in sequences]
        lengths = np.array([p.shape[0] if p.ndim else 1 for p in parts], dtype=np.int64)
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        nonempty = [p.reshape(-1) if p.ndim == 0 else p for p in parts if p.size]
        if nonempty:
            tails = {p.shape[1:] for p in nonempty}
            if len(tails) > 1:
                raise DataError(f"sequence items must share one shape; got {sorted(tails)}.")
            values = np.concatenate(nonempty)
        else:
            values = np.zeros((0,), dtype=dtype or np.float64)
        return cls(values, offsets, attrs)

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def n_values(self) -> int:
        """Total number of items."""
        return int(self.values.shape[0])

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one item (``()`` for ids/codes, ``(dim,)`` for vectors)."""
        return tuple(int(s) for s in self.values.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        """dtype of the values."""
        return np.dtype(str(self.values.dtype))

    def lengths(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Lengths of sequences ``lo..hi-1``."""
        hi = len(self) if hi is None else hi
        off = np.asarray(self.offsets[lo:hi + 1], dtype=np.int64)
        return np.diff(off)

    def block(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Values and rebased offsets (starting at 0) of sequences ``lo..hi-1``.

        Raises
        ------
        InvalidParameterError
            If ``0 <= lo <= hi <= len(self)`` does not hold.
        StoreFormatError
            If a Zarr-backed block's offsets are inconsistent (a corrupt store).
        """
        if not 0 <= lo <= hi <= len(self):
            raise InvalidParameterError(f"block bounds must satisfy 0 <= lo <= hi <= "
                                        f"{len(self)}; got lo={lo}, hi={hi}.")
        off = np.asarray(self.offsets[lo:hi + 1], dtype=np.int64)
        start, stop = int(off[0]), int(off[-1])
        if isinstance(self.offsets, zarr.Array) and (
                stop < start or stop > self.n_values or np.any(np.diff(off) < 0)):
            raise StoreFormatError(f"ragged store {self.path!r}: offsets of sequences {lo}-{hi} "
                                   "are inconsistent; the store is corrupt.")
        vals = np.asarray(self.values[start:stop])
        return vals, off - start

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)} sequences.")
        i %= len(self)
        vals, _ = self.block(i, i + 1)
        return vals

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def iter_blocks(self, chunk_sequences: int) -> Iterator[tuple[int, int]]:
        """``(lo, hi)`` bounds of consecutive blocks of ``chunk_sequences`` sequences."""
        if int(chunk_sequences) < 1:
            raise InvalidParameterError(f"chunk_sequences must be >= 1; got {chunk_sequences}.")
        for lo in range(0, len(self), int(chunk_sequences)):
            yield lo, min(len(self), lo + int(chunk_sequences))

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return (f"Ragged(n_sequences={len(self)}, n_values={self.n_values}, "
                f"item_shape={self.item_shape}, dtype={self.dtype}{where})")

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: PathLike | Location, *, overwrite: bool = False,
             chunk_values: int = 1 << 20, chunk_offsets: int = OFFSET_CHUNK) -> None:
        """Write to a Zarr group (see :func:`write_ragged`)."""
        write_ragged(self, path, overwrite=overwrite, chunk_values=chunk_values,
                     chunk_offsets=chunk_offsets)


def _value_dims(item_ndim: int) -> tuple[str, ...]:
    return ("value", *(f"item_{i}" for i in range(1, item_ndim + 1)))


class RaggedWriter:
    """Appends sequences to a ragged group being written (inside any artifact).

    Parameters
    ----------
    parent : ArtifactWriter
        The writer of the artifact that holds the group.
    name : str
        Group name (``"tokens"``, ``"text"``...).
    dtype : dtype
        Value dtype.
    item_shape : tuple of int, default=()
        Shape of one item (``()`` for ids/bytes, ``(dim,)`` for vectors).
    chunk : int, default=2**20
        Values per Zarr chunk.
    attrs : mapping, optional
        JSON description stored with the group.

    Attributes
    ----------
    values, offsets : zarr.Array
        The arrays being filled (``values`` may be rewritten in place before the end).
    """

    def __init__(self, parent: ArtifactWriter, name: str, dtype: Any, *,
                 item_shape: tuple[int, ...] = (), chunk: int = 1 << 20,
                 chunk_offsets: int = OFFSET_CHUNK,
                 attrs: Mapping[str, Any] | None = None) -> None:
        self.writer = parent.subgroup(name, "ragged", attrs=dict(attrs or {}))
        self.item_shape = tuple(int(s) for s in item_shape)
        self.values = self.writer.array("values", shape=(0, *self.item_shape), dtype=dtype,
                                        chunks=(max(1, int(chunk)), *self.item_shape),
                                        dims=_value_dims(len(self.item_shape)))
        self.offsets = self.writer.array("offsets", np.zeros(1, np.int64), dims=("offset",),
                                         chunks=(max(1, int(chunk_offsets)),))
        self._n_values = 0
        self._n_sequences = 0
        parent.on_finish(self._finish)

    def append(self, values: np.ndarray, lengths: np.ndarray) -> None:
        """Append sequences: their concatenated ``values`` and their ``lengths``."""
        values = np.asarray(values)
        lengths = np.asarray(lengths, dtype=np.int64)
        if values.shape[1:] != self.item_shape or int(lengths.sum()) != values.shape[0]:
            raise DataError(f"appending {lengths.size} sequences of total length "
                            f"{int(lengths.sum())} needs that many items of shape "
                            f"{self.item_shape}; got values of shape {values.shape}.")
        if values.shape[0]:
            self.values.append(values)
        new = self._n_values + np.cumsum(lengths, dtype=np.int64)
        if new.size:
            self.offsets.resize((self._n_sequences + 1 + new.size,))
            self.offsets[self._n_sequences + 1:] = new
        self._n_values += int(values.shape[0])
        self._n_sequences += int(lengths.size)

    def append_bytes(self, items: Sequence[bytes]) -> None:
        """Append byte strings (UTF-8 text) as sequences of uint8."""
        blob = np.frombuffer(b"".join(items), dtype=np.uint8)
        self.append(blob, np.array([len(b) for b in items], dtype=np.int64))

    def __len__(self) -> int:
        return self._n_sequences

    def _finish(self) -> None:
        assert self.writer.header is not None
        self.writer.header.update(n_sequences=self._n_sequences, n_values=self._n_values)


def write_ragged(data: Ragged | Iterable[Sequence[Any]], path: PathLike | Location, *,
                 overwrite: bool = False, chunk_values: int = 1 << 20,
                 chunk_offsets: int = OFFSET_CHUNK, attrs: Mapping[str, Any] | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ragged sequences to a Zarr group at ``path``, atomically.

    Parameters
    ----------
    data : Ragged or iterable of sequences
    path : str, path-like or Location
        Destination group; a temporary sibling is published once complete.
    overwrite : bool, default=False
        Replace an existing veob_dask store (otherwise :class:`StoreExistsError`).
    chunk_values, chunk_offsets : int
        Chunk lengths of the two arrays (values chunks keep every trailing axis whole).
    attrs : mapping, optional
        Extra JSON attributes (merged over ``data.attrs``).
    storage_options : dict, optional
        fsspec options for a URL.

    Notes
    -----
    Memory: copies a Zarr-backed source slice by slice (one values chunk at a time).
    """
    rag = data if isinstance(data, Ragged) else Ragged.from_sequences(data)
    meta = {**rag.attrs, **dict(attrs or {})}
    inputs = [rag.path] if rag.path else []
    with create_artifact(path, "ragged", overwrite=overwrite, inputs=inputs,
                         storage_options=storage_options, n_sequences=len(rag),
                         n_values=rag.n_values, attrs=meta) as w:
        vchunk = (max(1, min(int(chunk_values), rag.n_values)), *rag.item_shape)
        varr = w.array("values", shape=(rag.n_values, *rag.item_shape), dtype=rag.dtype,
                       chunks=vchunk, dims=_value_dims(len(rag.item_shape)))
        for lo in range(0, rag.n_values, vchunk[0]):
            hi = min(rag.n_values, lo + vchunk[0])
            varr[lo:hi] = np.asarray(rag.values[lo:hi])
        n_off = len(rag) + 1
        oarr = w.array("offsets", shape=(n_off,), dtype=np.int64, dims=("offset",),
                       chunks=(max(1, min(int(chunk_offsets), n_off)),))
        for lo in range(0, n_off, oarr.chunks[0]):
            hi = min(n_off, lo + oarr.chunks[0])
            oarr[lo:hi] = np.asarray(rag.offsets[lo:hi], dtype=np.int64)


def _ragged_info(header: Mapping[str, Any]) -> dict[str, Any]:
    return dict(header.get("legacy") or {}) if header.get("format_version") == 1 \
        else dict(header)


def open_ragged(group: zarr.Group, where: str, *, load_offsets: bool = False,
                location: Location | None = None, headerless: bool = False) -> Ragged:
    """A lazy :class:`Ragged` over an open ragged group (e.g. one nested in a corpus).

    ``headerless`` accepts a group without a header (version-1 sentence models wrote their
    text groups so), taking the counts from the arrays.

    Raises
    ------
    StoreFormatError
        If the group is not a ragged group or its arrays disagree with its counts.
    """
    header = store_header(group)
    try:
        values, offsets = group["values"], group["offsets"]
    except KeyError as err:
        raise StoreFormatError(f"{where} lacks array {err}; the store is incomplete.") from err
    if header is None and headerless and isinstance(values, zarr.Array) and \
            isinstance(offsets, zarr.Array) and offsets.ndim == 1 and offsets.shape[0] >= 1:
        header = {"format_version": 2, "kind": "ragged", "n_values": int(values.shape[0]),
                  "n_sequences": int(offsets.shape[0]) - 1}
    if header is None or header.get("kind") != "ragged":
        raise StoreFormatError(f"{where} is not a ragged-sequence group; write one with "
                               "write_ragged().")
    info = _ragged_info(header)
    try:
        n_seq, n_val = int(info["n_sequences"]), int(info["n_values"])
    except (KeyError, TypeError, ValueError) as err:
        raise StoreFormatError(f"{where}: the ragged header lacks its counts; the store is "
                               "corrupt.") from err
    if (not isinstance(values, zarr.Array) or not isinstance(offsets, zarr.Array)
            or offsets.ndim != 1 or values.ndim < 1
            or offsets.shape[0] != n_seq + 1 or values.shape[0] != n_val):
        raise StoreFormatError(f"{where}: array shapes disagree with the recorded counts; the "
                               "store is corrupt.")
    if np.dtype(str(offsets.dtype)).kind not in "iu":
        raise StoreFormatError(f"{where}: offsets must be integers; got {offsets.dtype}.")
    for name, arr in (("values", values), ("offsets", offsets)):
        check_chunks_written(arr, where, name)  # read lazily: a missing chunk would read as 0
    off: Any = offsets
    if load_offsets:
        off = np.asarray(offsets[...], dtype=np.int64)
        try:
            _check_offsets(off, int(values.shape[0]))
        except DataError as err:
            raise StoreFormatError(f"{where}: {err}") from err
    rag = Ragged(values, off, info.get("attrs") or {},
                 path=str(location) if location else where, check=False)
    rag.location = location
    return rag


def read_ragged(path: PathLike | Location, *, load_offsets: bool = False,
                storage_options: Mapping[str, Any] | None = None) -> Ragged:
    """Open a ragged store lazily (values and offsets stay in Zarr until sliced).

    Parameters
    ----------
    path : str, path-like or Location
        A ragged store, or a ragged group inside another artifact (``corpus.zarr/tokens``).
    load_offsets : bool, default=False
        Read the whole offsets array into memory (8 bytes per sequence) and check it; faster
        for many small blocks.
    storage_options : dict, optional
        fsspec options for a URL.

    Raises
    ------
    StoreNotFoundError
        If nothing is stored at ``path``.
    StoreFormatError
        If the group is not a ragged store or its arrays disagree.
    """
    loc = as_location(path, storage_options)
    group, _ = open_artifact(loc, "ragged")
    return open_ragged(group, repr(str(loc)), load_offsets=load_offsets, location=loc)
