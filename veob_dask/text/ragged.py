"""Ragged sequences (values + offsets), in memory or in Zarr, read lazily block by block.

A ragged collection of ``n`` variable-length sequences is two arrays: ``values`` (all items, in
sequence order; shape ``(n_values,)`` for ids/codes or ``(n_values, dim)`` for vectors) and
``offsets`` (``n + 1`` non-decreasing int64, ``offsets[0] == 0``); sequence ``i`` is
``values[offsets[i]:offsets[i + 1]]``. Letters of words (ASCII codes), token ids of sentences
and vectors of a trajectory all fit this layout.

Store layout (a Zarr v3 group, written atomically)::

    attrs["veob_ragged"] = {"format_version": 1, "n_sequences": n, "n_values": v, ...}
    values    (v, ...) chunked along axis 0
    offsets   (n + 1,) int64, chunked

:meth:`Ragged.block` returns sequences ``lo..hi`` with rebased offsets; on a Zarr-backed
collection it reads only the needed slices, so a Dask task handling one block of sequences
reads one slice of ``offsets`` and the matching slice of ``values``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..errors import DataError, InvalidParameterError, StoreFormatError
from ..io.store import _is_url, atomic_store, open_group

__all__ = ["Ragged", "read_ragged", "write_ragged"]

FORMAT_VERSION = 1
_ATTR_KEY = "veob_ragged"


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
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False,
             chunk_values: int = 1 << 20, chunk_offsets: int = 1 << 18) -> None:
        """Write to a Zarr group (see :func:`write_ragged`)."""
        write_ragged(self, path, overwrite=overwrite, chunk_values=chunk_values,
                     chunk_offsets=chunk_offsets)


def write_ragged(data: Ragged | Iterable[Sequence[Any]], path: str | os.PathLike[str], *,
                 overwrite: bool = False, chunk_values: int = 1 << 20,
                 chunk_offsets: int = 1 << 18, attrs: Mapping[str, Any] | None = None) -> None:
    """Write ragged sequences to a Zarr group at ``path``, atomically.

    Parameters
    ----------
    data : Ragged or iterable of sequences
    path : path-like
        Destination group; a temporary sibling is renamed into place once complete.
    overwrite : bool, default=False
        Replace an existing store (otherwise :class:`StoreExistsError`).
    chunk_values, chunk_offsets : int
        Chunk lengths of the two arrays (values chunks keep every trailing axis whole).
    attrs : mapping, optional
        Extra JSON attributes (merged over ``data.attrs``).

    Notes
    -----
    Memory: copies a Zarr-backed source slice by slice (one values chunk at a time).
    """
    rag = data if isinstance(data, Ragged) else Ragged.from_sequences(data)
    meta = {**rag.attrs, **dict(attrs or {})}
    with atomic_store(path, overwrite=overwrite) as tmp:
        group = zarr.open_group(store=tmp if _is_url(tmp) else Path(tmp), mode="w")
        group.attrs[_ATTR_KEY] = {"format_version": FORMAT_VERSION, "n_sequences": len(rag),
                                  "n_values": rag.n_values, "attrs": meta}
        vshape = (rag.n_values, *rag.item_shape)
        vchunk = (max(1, min(int(chunk_values), rag.n_values)), *rag.item_shape)
        varr = group.create_array("values", shape=vshape, chunks=vchunk, dtype=rag.dtype)
        for lo in range(0, rag.n_values, vchunk[0]):
            hi = min(rag.n_values, lo + vchunk[0])
            varr[lo:hi] = np.asarray(rag.values[lo:hi])
        n_off = len(rag) + 1
        oarr = group.create_array("offsets", shape=(n_off,),
                                  chunks=(max(1, min(int(chunk_offsets), n_off)),), dtype=np.int64)
        for lo in range(0, n_off, oarr.chunks[0]):
            hi = min(n_off, lo + oarr.chunks[0])
            oarr[lo:hi] = np.asarray(rag.offsets[lo:hi], dtype=np.int64)


def read_ragged(path: str | os.PathLike[str], *, load_offsets: bool = False) -> Ragged:
    """Open a ragged store lazily (values and offsets stay in Zarr until sliced).

    Parameters
    ----------
    path : path-like
    load_offsets : bool, default=False
        Read the whole offsets array into memory (8 bytes per sequence) and check it; faster
        for many small blocks.

    Raises
    ------
    StoreNotFoundError
        If nothing is stored at ``path``.
    StoreFormatError
        If the group is not a ragged store or its arrays disagree.
    """
    group = open_group(path, mode="r")
    info = group.attrs.get(_ATTR_KEY)
    if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
        raise StoreFormatError(f"{str(path)!r} is not a ragged-sequence store (format "
                               f"{FORMAT_VERSION}); write one with write_ragged().")
    try:
        values, offsets = group["values"], group["offsets"]
    except KeyError as err:
        raise StoreFormatError(f"{str(path)!r} lacks array {err}; the store is incomplete.") from err
    if (offsets.shape[0] != int(info["n_sequences"]) + 1
            or values.shape[0] != int(info["n_values"])):
        raise StoreFormatError(f"{str(path)!r}: array shapes disagree with the recorded counts; "
                               "the store is corrupt.")
    off: Any = offsets
    if load_offsets:
        off = np.asarray(offsets[...], dtype=np.int64)
        try:
            _check_offsets(off, int(values.shape[0]))
        except DataError as err:
            raise StoreFormatError(f"{str(path)!r}: {err}") from err
    return Ragged(values, off, info.get("attrs") or {}, path=str(path), check=False)
