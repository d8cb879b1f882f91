"""Direct reads and writes of whole row chunks of local Zarr v3 arrays, without zarr's copies.

zarr-python decodes a chunk of a sharded array into a buffer of its own and copies it into the
selection's buffer, a second copy of every byte after the kernel's; on this project's 2-core
machine those copies cost about 0.6 CPU-s per GB read, about as much as the Gram product of
256 float32 features (``benchmarks/README.md``, "Measurements behind choices in the code").
For the layouts this library writes — chunks of whole rows (every other axis whole), codecs
``bytes`` (little endian) optionally followed by ``zstd``, optionally inside
``sharding_indexed`` with index codecs ``bytes`` (+ ``crc32c``) — a chunk is read here with one
``pread`` straight into the output array, or decompressed straight into it.

:func:`write_rows` writes whole storage files (shards, or chunks) the same way: the bytes zarr
writes (the tests compare every file), no copy of uncompressed rows. The chunks of a shard of
uncompressed chunks are also written one at a time, in place (:func:`in_place_rows`): each
chunk's offset in its shard is known before any is written, so each task writes its own chunk
and the shard's index (the same bytes from every writer), and no task waits for the rest of its
shard nor copies it into one buffer.

:func:`chunk_layout` returns None for anything else (other codecs, big-endian data, string
dtypes, remote stores, chunks that split rows), and so does :func:`read_rows` for a selection
that does not start and end on chunk boundaries; the caller then reads through zarr. Files are
untrusted: a shard index that fails its checksum or points outside its file, a short read, or
a chunk that does not decompress to its size raises :class:`ChunkDecodeError` naming the file;
nothing is trusted to size an allocation.

**Direct I/O.** An array larger than the machine's physical memory cannot stay in the page
cache, and copying it through the cache costs the kernel ~0.6 CPU-s per GB here (a cold pass
over 32.8 GB: 21.7 CPU-s, where the sum took ~2); such arrays are read with ``O_DIRECT``, the
disk writing straight into the (page-aligned) result. Dask config ``veob_dask.direct_io``:
``"auto"`` (default: arrays larger than physical memory), ``True`` (always) or ``False``
(never). A file system that refuses ``O_DIRECT`` (tmpfs) is read through the cache. A thread
waiting for such a read holds no core: run two threads a core (``num_workers=2 * cores`` on the
threaded scheduler, or workers of 2 threads) so that reads overlap compute; a Gram fit of a
32.8 GB store then took 0.98x and 0.99-1.11x its cold read pass, against 1.22-1.51x with one
thread a core (``benchmarks/README.md``, "Scale"). Prefetching the next chunks from background
threads was tried and made those passes slower ("Measurements behind choices in the code").

:func:`write_rows` writes with ``O_DIRECT`` too (:func:`direct_writes_for`: Dask config
``veob_dask.direct_writes``, else ``veob_dask.direct_io``; ``True``, or ``"auto"`` and an array
larger than an eighth of physical memory), through a staging buffer of 8 MiB per thread, the
last page padded and the file then truncated to its size (chunks written in place need whole
pages at page offsets, else go through the cache). The transform of the 32.8 GB store (an 8.2 GB
output) took 27.5 and 60.8 s writing whole shards through the page cache, the second time with
73.7 CPU-s of the kernel's time, and 24.6 and 22.8 s with ``O_DIRECT`` (2 December, 09:45 UTC);
for a 1 GB output both took 2.0-2.6 s. Writing its chunks in place with ``O_DIRECT``: 18.2 and
19.0 s, where the read pass took 10.9 and 12.4 s (2 threads; 20.8 and 21.2 s against 12.5 and
13.1 s with 4; 2 December, 10:58 UTC); with the writes handed to a background thread
(:mod:`~veob_dask.io.writebehind`), 15.8-18.7 s. The writer joins the chunks waiting for it
that meet in one shard into one write (up to 64 MiB); the transform of the 32.8 GB store then
took 1.17x (2 threads) and 1.31x (4 threads) its cold read pass, against 1.39x and 1.52-1.55x
before (sixteenth and fifteenth chains, 4 December). A file system that refuses it is written
through the cache.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np

from . import writebehind

__all__ = ["ChunkDecodeError", "ChunkLayout", "aligned_empty", "chunk_layout", "direct_io_for",
           "direct_writes_for", "in_place_rows", "read_rows", "row_span", "write_rows"]

#: Offset and length of an inner chunk that was never written (the fill value).
_EMPTY = np.uint64(2**64 - 1)
#: Shard indexes kept per process (each is 16 bytes per inner chunk).
_INDEX_CACHE_SIZE = 256
#: Alignment of offsets, lengths and buffers for ``O_DIRECT`` (a page: safe for any device).
_ALIGN = 4096
#: Default of Dask config ``veob_dask.direct_io``.
DIRECT_IO = "auto"
#: Under ``"auto"``, arrays larger than this fraction of physical memory are written with
#: ``O_DIRECT``: writing 8 GB through the page cache took 8.5 s and 6.6 CPU-s of the kernel's
#: copies on this machine, and 3.1 s and 0.1 CPU-s with ``O_DIRECT`` (2 December, 09:27 UTC).
DIRECT_WRITE_FRACTION = 0.125
#: Bytes of the staging buffer each writing thread keeps for ``O_DIRECT`` writes.
_STAGING_BYTES = 8 << 20


class ChunkDecodeError(ValueError):
    """A stored chunk or shard index is inconsistent with the array's metadata."""


@dataclass(frozen=True)
class ChunkLayout:
    """Where and how the row chunks of one local Zarr v3 array are stored.

    Attributes
    ----------
    root : str
        Directory of the array (holding its ``zarr.json``).
    shape : tuple of int
        Array shape; chunks span every axis but the first.
    dtype : numpy.dtype
        Native-order dtype of the data.
    chunk_rows : int
        Rows of one (inner) chunk.
    shard_rows : int or None
        Rows of one shard file, None when every chunk is its own file.
    zstd : bool
        Whether each chunk's bytes are zstd-compressed.
    index_crc : bool
        Whether a shard index ends with its crc32c.
    index_at_end : bool
        Whether a shard's index follows its chunks (else precedes them).
    fill_value : Any
        Value of a chunk a shard index marks as never written.
    encode_key : callable
        Relative path of a storage file (shard or chunk) from its grid position.
    zstd_level, zstd_checksum : int, bool
        The zstd codec's settings (what a writer must use to write the bytes zarr would).
    """

    root: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunk_rows: int
    shard_rows: int | None
    zstd: bool
    index_crc: bool
    index_at_end: bool
    fill_value: Any
    encode_key: Callable[[tuple[int, ...]], str] = field(compare=False, repr=False)
    zstd_level: int = 0
    zstd_checksum: bool = False

    @property
    def row_bytes(self) -> int:
        return int(self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))

    @property
    def chunk_bytes(self) -> int:
        """Bytes of one decoded chunk (edge chunks are stored at full size too)."""
        return self.chunk_rows * self.row_bytes


def _inner_codecs(codecs: Any) -> bool | None:
    """True (zstd), False (plain bytes) or None (unsupported) for a chunk's codec chain."""
    names = [type(c).__name__ for c in codecs]
    if not names or names[0] != "BytesCodec":
        return None
    endian = getattr(codecs[0], "endian", None)
    if endian is not None and getattr(endian, "value", endian) != "little":
        return None
    if names[1:] == []:
        return False
    if names[1:] == ["ZstdCodec"]:
        return True
    return None


def chunk_layout(arr: Any, root: str) -> ChunkLayout | None:
    """The direct-read layout of zarr array ``arr`` stored under local directory ``root``
    (the store's), or None when this module does not read it (zarr then does)."""
    meta = arr.metadata
    if getattr(meta, "zarr_format", None) != 3 or np.little_endian is False:
        return None
    try:
        dtype = np.dtype(arr.dtype)
    except TypeError:
        return None
    if dtype.kind not in "biufc?" or not arr.shape:
        return None
    shape = tuple(int(s) for s in arr.shape)
    codecs = list(meta.codecs)
    shard_rows = None
    index_crc, index_at_end = False, True
    grid = getattr(getattr(meta, "chunk_grid", None), "chunk_shape", None)
    if grid is None or len(grid) != len(shape):
        return None
    chunks = tuple(int(c) for c in grid)  # the storage files' shape
    if len(codecs) == 1 and type(codecs[0]).__name__ == "ShardingCodec":
        sharding = codecs[0]
        index = [type(c).__name__ for c in sharding.index_codecs]
        if index not in (["BytesCodec"], ["BytesCodec", "Crc32cCodec"]):
            return None
        index_crc = len(index) == 2
        index_at_end = getattr(sharding.index_location, "value", "end") == "end"
        codecs = list(sharding.codecs)
        inner = tuple(int(c) for c in sharding.chunk_shape)
        if chunks[1:] != shape[1:] or len(inner) != len(shape) or chunks[0] % inner[0]:
            return None
        shard_rows, chunks = chunks[0], inner
    zstd = _inner_codecs(codecs)
    if zstd is None or chunks[1:] != shape[1:] or chunks[0] < 1:
        return None
    level = int(getattr(codecs[-1], "level", 0)) if zstd else 0
    checksum = bool(getattr(codecs[-1], "checksum", False)) if zstd else False
    return ChunkLayout(root=root, shape=shape, dtype=dtype, chunk_rows=chunks[0],
                       shard_rows=shard_rows, zstd=zstd, index_crc=index_crc,
                       index_at_end=index_at_end, fill_value=meta.fill_value,
                       encode_key=meta.encode_chunk_key, zstd_level=level,
                       zstd_checksum=checksum)


def row_span(key: Any, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(start, stop)`` of a selection of whole rows (a step-1 row slice, every other axis
    whole) of an array of ``shape``, or None for any other selection."""
    key = key if isinstance(key, tuple) else (key,)
    if not key or len(key) > len(shape):
        return None
    rows = key[0]
    if not isinstance(rows, slice) or rows.step not in (None, 1) or any(
            not isinstance(k, slice) or k.indices(n) != (0, n, 1)
            for k, n in zip(key[1:], shape[1:], strict=False)):
        return None
    start, stop, _ = rows.indices(shape[0])
    return start, stop


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _direct_for(nbytes: int, fraction: float, key: str = "veob_dask.direct_io") -> bool:
    """Dask config ``key`` (default ``veob_dask.direct_io``) for an array of ``nbytes``:
    ``"auto"`` (the default) when it is larger than ``fraction`` of physical memory; True;
    False."""
    if not hasattr(os, "O_DIRECT"):
        return False
    mode = dask.config.get(key, DIRECT_IO)
    if isinstance(mode, str) and mode.lower() in ("auto", ""):
        memory = _physical_memory()
        return bool(memory) and nbytes > fraction * memory
    if isinstance(mode, str):
        return mode.lower() in ("true", "on", "1", "yes")
    return bool(mode)


def direct_io_for(layout: ChunkLayout) -> bool:
    """Whether reads of ``layout`` bypass the page cache (Dask config ``veob_dask.direct_io``:
    ``"auto"``, the default, for arrays larger than physical memory; True; False)."""
    return _direct_for(layout.shape[0] * layout.row_bytes, 1.0)


def aligned_empty(nbytes: int) -> np.ndarray:
    """A uint8 buffer of ``nbytes`` starting on an :data:`_ALIGN` boundary."""
    raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    skip = (-raw.ctypes.data) % _ALIGN
    return raw[skip:skip + nbytes]


#: Flags of a storage file opened to be written whole.
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _open(path: str, direct: bool, flags: int = os.O_RDONLY) -> tuple[int, bool]:
    """A descriptor of ``path`` (read-only, or ``flags``), with ``O_DIRECT`` when asked and
    allowed; and whether it has it."""
    if direct:
        try:
            return os.open(path, flags | os.O_DIRECT, 0o666), True
        except FileNotFoundError:
            raise
        except OSError:  # EINVAL: the file system does not do direct I/O
            pass
    return os.open(path, flags, 0o666), False


_INDEXES: dict[tuple[Any, ...], np.ndarray] = {}
_INDEX_LOCK = threading.Lock()


def _shard_index(layout: ChunkLayout, path: str, size: int, st: os.stat_result) -> np.ndarray:
    """The (offset, length) pairs of a shard's inner chunks, checked against the file."""
    key = (path, st.st_ino, st.st_mtime_ns, st.st_size)
    with _INDEX_LOCK:
        hit = _INDEXES.get(key)
    if hit is not None:
        return hit
    assert layout.shard_rows is not None
    n_inner = layout.shard_rows // layout.chunk_rows
    n_bytes = 16 * n_inner + (4 if layout.index_crc else 0)
    if size < n_bytes:
        raise ChunkDecodeError(f"shard {path} holds {size} bytes, less than its index "
                               f"({n_bytes} bytes)")
    with open(path, "rb", buffering=0) as fh:  # a few bytes: through the page cache
        raw = os.pread(fh.fileno(), n_bytes, size - n_bytes if layout.index_at_end else 0)
    if len(raw) != n_bytes:
        raise ChunkDecodeError(f"shard {path}: short read of its index")
    if layout.index_crc:
        import google_crc32c

        if int(google_crc32c.value(raw[:-4])) != int.from_bytes(raw[-4:], "little"):
            raise ChunkDecodeError(f"shard {path}: the index fails its crc32c checksum")
        raw = raw[:-4]
    index = np.frombuffer(raw, dtype="<u8").reshape(n_inner, 2)
    lo, hi = (0, size - n_bytes) if layout.index_at_end else (n_bytes, size)
    used = ~((index[:, 0] == _EMPTY) & (index[:, 1] == _EMPTY))
    off, length = index[used, 0], index[used, 1]
    # compare without overflow: offsets and lengths are each below the file size
    if np.any(off < lo) or np.any(off > hi) or np.any(length > hi - off):
        raise ChunkDecodeError(f"shard {path}: its index points outside the file")
    with _INDEX_LOCK:
        if len(_INDEXES) >= _INDEX_CACHE_SIZE:
            _INDEXES.clear()
        _INDEXES[key] = index
    return index


def _fill(dest: np.ndarray, layout: ChunkLayout) -> None:
    dest[...] = layout.fill_value if layout.fill_value is not None else 0


def _zstd_content_size(raw: Any) -> int | None:
    """The decompressed size a zstd frame's header declares (None: absent or not a frame)."""
    head = bytes(raw[:18])  # magic, descriptor and at most 13 bytes of header fields
    if len(head) < 6 or head[:4] != b"\x28\xb5\x2f\xfd":
        return None
    raw = head
    desc = raw[4]
    fcs_flag, single, did_flag = desc >> 6, (desc >> 5) & 1, desc & 3
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[did_flag]
    size = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if size == 0 or len(raw) < pos + size:
        return None
    value = int.from_bytes(raw[pos:pos + size], "little")
    return value + 256 if size == 2 else value


def _pread_direct(fd: int, offset: int, length: int, path: str) -> memoryview:
    """``length`` bytes at ``offset`` read with ``O_DIRECT``: the aligned span around them
    into an aligned buffer, then the slice."""
    lo = offset - offset % _ALIGN
    hi = -(-(offset + length) // _ALIGN) * _ALIGN
    buf = aligned_empty(hi - lo)
    got = os.preadv(fd, [memoryview(buf)], lo)
    if got < offset + length - lo:
        raise ChunkDecodeError(f"{path}: short read ({max(0, got - (offset - lo))} of "
                               f"{length} bytes)")
    return memoryview(buf)[offset - lo:offset - lo + length]


def _read_chunk(layout: ChunkLayout, fd: int, path: str, offset: int, length: int,
                dest: np.ndarray, direct: bool = False) -> None:
    """Decode one stored chunk (``length`` bytes at ``offset``) into ``dest``, its valid rows
    (``direct``: ``fd`` was opened with ``O_DIRECT``)."""
    want = dest.nbytes
    flat = memoryview(dest.reshape(-1).view(np.uint8))
    if not layout.zstd:
        if length != layout.chunk_bytes:
            raise ChunkDecodeError(f"{path}: a chunk of {length} bytes, expected "
                                   f"{layout.chunk_bytes}")
        if not want:
            return
        if direct and (offset % _ALIGN or want % _ALIGN or dest.ctypes.data % _ALIGN):
            flat[:] = _pread_direct(fd, offset, want, path)  # unaligned: through a buffer
            return
        got = os.preadv(fd, [flat], offset)
        if got != want:
            raise ChunkDecodeError(f"{path}: short read ({got} of {want} bytes)")
        return
    from numcodecs import zstd

    raw: Any = _pread_direct(fd, offset, length, path) if direct else os.pread(fd, length,
                                                                                offset)
    if len(raw) != length:
        raise ChunkDecodeError(f"{path}: short read ({len(raw)} of {length} bytes)")
    # decompressing into a buffer does not say how much was written: the frame must declare
    # the chunk's size (a shorter frame would leave the rest of the output uninitialised)
    declared = _zstd_content_size(raw)
    if declared != layout.chunk_bytes:
        raise ChunkDecodeError(f"{path}: the zstd chunk declares {declared} bytes, expected "
                               f"{layout.chunk_bytes}")
    try:
        if want == layout.chunk_bytes:
            zstd.decompress(raw, flat)
        else:  # an edge chunk: stored at full size, its first rows are the array's
            full = np.empty(layout.chunk_bytes, dtype=np.uint8)
            zstd.decompress(raw, full)
            flat[:] = full[:want]
    except (RuntimeError, ValueError) as err:
        raise ChunkDecodeError(f"{path}: the zstd chunk does not decode to "
                               f"{layout.chunk_bytes} bytes ({err})") from err


def _read_file(layout: ChunkLayout, file_no: int, first: int, last: int, out: np.ndarray,
               start: int, direct: bool) -> None:
    """Chunks ``first..last`` (inclusive, global numbers) of storage file ``file_no`` into
    ``out`` (rows from ``start``), bypassing the page cache when ``direct``."""
    path = os.path.join(layout.root,
                        layout.encode_key((file_no, *(0,) * (len(layout.shape) - 1))))
    c = layout.chunk_rows
    try:
        fd, direct = _open(path, direct)
    except FileNotFoundError as err:
        raise ChunkDecodeError(f"{path} is missing") from err
    try:
        st = os.fstat(fd)
        index = _shard_index(layout, path, st.st_size, st) if layout.shard_rows else None
        for ci in range(first, last + 1):
            rows = min(c, layout.shape[0] - ci * c)
            dest = out[ci * c - start: ci * c - start + rows]
            if index is None:
                _read_chunk(layout, fd, path, 0, st.st_size, dest, direct)
                continue
            off, length = index[ci - file_no * (layout.shard_rows // c)]
            if off == _EMPTY and length == _EMPTY:
                _fill(dest, layout)
            else:
                _read_chunk(layout, fd, path, int(off), int(length), dest, direct)
    finally:
        os.close(fd)


def read_rows(layout: ChunkLayout, start: int, stop: int, *,
              direct_io: bool | None = None) -> np.ndarray | None:
    """Rows ``[start, stop)`` read directly, or None unless both ends fall on chunk
    boundaries (or ``stop`` is the array's end). ``direct_io`` (default:
    :func:`direct_io_for`) bypasses the page cache.

    Raises
    ------
    ChunkDecodeError
        A file is missing, short, or inconsistent with the metadata.
    """
    n, c = layout.shape[0], layout.chunk_rows
    start, stop = max(0, start), min(n, stop)
    if start % c or (stop % c and stop != n) or stop < start:
        return None
    direct = direct_io_for(layout) if direct_io is None else direct_io
    nbytes = (stop - start) * layout.row_bytes
    out = (aligned_empty(nbytes).view(layout.dtype).reshape(stop - start, *layout.shape[1:])
           if direct else np.empty((stop - start, *layout.shape[1:]), dtype=layout.dtype))
    if stop == start:
        return out
    per_file = (layout.shard_rows or c) // c
    first, last = start // c, (stop - 1) // c
    for file_no in range(first // per_file, last // per_file + 1):
        lo = max(first, file_no * per_file)
        hi = min(last, (file_no + 1) * per_file - 1)
        _read_file(layout, file_no, lo, hi, out, start, direct)
    return out


def _encoded_chunk(layout: ChunkLayout, rows: np.ndarray) -> Any:
    """One chunk's stored bytes: its rows, padded to the chunk's shape with the fill value,
    compressed when the layout says so."""
    if len(rows) < layout.chunk_rows:
        full = np.empty((layout.chunk_rows, *layout.shape[1:]), dtype=layout.dtype)
        full[:len(rows)] = rows
        _fill(full[len(rows):], layout)
        rows = full
    raw = memoryview(np.ascontiguousarray(rows, dtype=layout.dtype).reshape(-1).view(np.uint8))
    if not layout.zstd:
        return raw
    from numcodecs import Zstd

    return Zstd(level=layout.zstd_level, checksum=layout.zstd_checksum).encode(raw)


def _file_parts(layout: ChunkLayout, block: np.ndarray) -> list[Any]:
    """The buffers of one storage file holding ``block`` (its rows from the file's start)."""
    c = layout.chunk_rows
    chunks = [_encoded_chunk(layout, block[i:i + c]) for i in range(0, len(block), c)]
    if layout.shard_rows is None:
        return chunks
    tail = _index_bytes(layout, [len(part) for part in chunks])
    return [*chunks, tail] if layout.index_at_end else [tail, *chunks]


def _index_start(layout: ChunkLayout) -> int:
    """Offset of a shard's first chunk (after its index when the index comes first)."""
    n_inner = (layout.shard_rows or layout.chunk_rows) // layout.chunk_rows
    return 0 if layout.index_at_end else 16 * n_inner + (4 if layout.index_crc else 0)


def _index_bytes(layout: ChunkLayout, sizes: list[int]) -> bytes:
    """The stored index of a shard whose first ``len(sizes)`` chunks hold ``sizes`` bytes, in
    order, and the rest were never written."""
    assert layout.shard_rows is not None
    index = np.full((layout.shard_rows // layout.chunk_rows, 2), _EMPTY, dtype="<u8")
    index[:len(sizes), 1] = sizes
    index[:len(sizes), 0] = _index_start(layout) + np.concatenate(
        ([0], np.cumsum(sizes, dtype=np.uint64)[:-1])).astype(np.uint64)
    tail = index.tobytes()
    if layout.index_crc:
        import google_crc32c

        tail += int(google_crc32c.value(tail)).to_bytes(4, "little")
    return tail


def write_rows(layout: ChunkLayout, start: int, block: np.ndarray) -> bool:
    """Write ``block`` as rows ``[start, start + len(block))`` of a new array, the bytes zarr
    would write; False (nothing written) unless the rows start and end on storage-file
    boundaries (or end at the array's end), or lie on chunk boundaries inside one shard of an
    uncompressed array (:func:`in_place_rows`).

    Whole files are written from their chunks and index, no copy of uncompressed rows
    (through the page cache); zstd chunks with the array's codec settings. Chunks inside a shard are
    written in place, at their offsets in the shard file, with the shard's index (the same
    bytes from every writer of the shard), so tasks may write the chunks of one shard at once.
    """
    per_file = layout.shard_rows or layout.chunk_rows
    n, stop = layout.shape[0], start + len(block)
    if stop > n or tuple(block.shape[1:]) != layout.shape[1:]:
        return False
    if start % per_file or (stop % per_file and stop != n):
        if not _in_place(layout, start, stop):
            return False
        _write_in_shard(layout, start, block)
        return True
    direct = direct_writes_for(layout)
    for first in range(start, stop, per_file):
        file_no = first // per_file
        parts = _file_parts(layout, block[first - start:first - start + per_file])
        path = _file_path(layout, file_no)
        write = functools.partial(_write_file, path, parts, direct)
        if not writebehind.submit(path, write, sum(len(p) for p in parts)):
            write()
    return True


def in_place_rows(layout: ChunkLayout) -> bool:
    """Whether :func:`write_rows` writes single chunks of ``layout`` in place in their shard
    (a sharded array of uncompressed chunks: each chunk's offset is known before it is
    written)."""
    return layout.shard_rows is not None and not layout.zstd


def _in_place(layout: ChunkLayout, start: int, stop: int) -> bool:
    c, n = layout.chunk_rows, layout.shape[0]
    return (in_place_rows(layout) and stop > start and not start % c
            and (not stop % c or stop == n)
            and start // layout.shard_rows == (stop - 1) // layout.shard_rows)


def _file_path(layout: ChunkLayout, file_no: int) -> str:
    path = os.path.join(layout.root,
                        layout.encode_key((file_no, *(0,) * (len(layout.shape) - 1))))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _write_in_shard(layout: ChunkLayout, start: int, block: np.ndarray) -> None:
    """Chunks of rows ``[start, start + len(block))`` (inside one shard, uncompressed) written
    at their offsets in the shard file, then the shard's index, which every writer of the
    shard writes alike: the shard holds its chunks in order, each at full size."""
    c, per = layout.chunk_rows, layout.shard_rows
    assert per is not None
    file_no = start // per
    present = -(-(min(layout.shape[0], (file_no + 1) * per) - file_no * per) // c)
    base, cb = _index_start(layout), layout.chunk_bytes
    tail = _index_bytes(layout, [cb] * present)
    parts = [_encoded_chunk(layout, block[i:i + c]) for i in range(0, len(block), c)]
    offset = base + cb * ((start - file_no * per) // c)
    path = _file_path(layout, file_no)
    direct = direct_writes_for(layout) and not offset % _ALIGN and not cb % _ALIGN
    write = _ChunksAt(path, parts, offset, tail,
                      base + cb * present if layout.index_at_end else 0, direct)
    if not writebehind.submit(path, write, write.nbytes):
        write()


@dataclass(frozen=True)
class _ChunksAt:
    """A write of chunks ``parts`` at ``offset`` of shard file ``path`` (its index ``tail`` at
    ``tail_at``); the write-behind thread joins two whose bytes meet (:meth:`merged`)."""

    path: str
    parts: list[Any]
    offset: int
    tail: bytes
    tail_at: int
    direct: bool

    @property
    def nbytes(self) -> int:
        return sum(memoryview(p).nbytes for p in self.parts)

    def __call__(self) -> None:
        _write_chunks_at(self.path, self.parts, self.offset, self.tail, self.tail_at,
                         self.direct)

    def merged(self, other: Any) -> _ChunksAt | None:
        """One write of this one's chunks then ``other``'s, when ``other`` writes the same
        shard file the same way and starts where this one ends; else None."""
        if (not isinstance(other, _ChunksAt) or other.path != self.path
                or other.direct != self.direct or other.tail_at != self.tail_at
                or other.tail != self.tail or other.offset != self.offset + self.nbytes):
            return None
        return _ChunksAt(self.path, self.parts + other.parts, self.offset, self.tail,
                         self.tail_at, self.direct)


def _write_chunks_at(path: str, parts: list[Any], offset: int, tail: bytes, tail_at: int,
                     direct: bool) -> None:
    """``parts`` at ``offset`` of the shard file ``path`` (``O_DIRECT`` when ``direct`` and the
    file system takes it), after its index ``tail`` at ``tail_at``."""
    # the index first: the file takes its final size before its chunks fill it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        _pwrite_all(fd, [tail], tail_at)
    finally:
        os.close(fd)
    _write_file(path, parts, direct, offset)


def _pwrite_all(fd: int, parts: list[Any], offset: int) -> None:
    """``parts`` at ``offset`` of ``fd``, one after the other, through the page cache."""
    for part in parts:
        view, done = memoryview(part).cast("B"), 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
        offset += len(view)


def direct_writes_for(layout: ChunkLayout) -> bool:
    """Whether :func:`write_rows` writes ``layout`` with ``O_DIRECT``: Dask config
    ``veob_dask.direct_writes`` where set, else ``veob_dask.direct_io``; each True, False or
    ``"auto"`` (the default): the array is larger than :data:`DIRECT_WRITE_FRACTION` of
    physical memory."""
    key = ("veob_dask.direct_writes"
           if dask.config.get("veob_dask.direct_writes", None) is not None
           else "veob_dask.direct_io")
    return _direct_for(layout.shape[0] * layout.row_bytes, DIRECT_WRITE_FRACTION, key)


def _write_file(path: str, parts: list[Any], direct: bool, offset: int | None = None) -> None:
    """``parts`` as the file ``path`` (or, with ``offset``, at that offset of it, the rest of
    the file kept): with ``O_DIRECT`` when ``direct`` and the file system takes it, else
    through the page cache."""
    fd, o_direct = _open(path, direct, _WRITE if offset is None else os.O_WRONLY | os.O_CREAT)
    try:
        if not o_direct:
            _pwrite_all(fd, parts, offset or 0)
            return
        try:
            _write_direct(fd, parts, offset)
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    finally:
        os.close(fd)
    # alignment the device does not take: through the cache
    _write_file(path, parts, False, offset)


_STAGING = threading.local()


def _staging() -> np.ndarray:
    """This thread's aligned staging buffer for ``O_DIRECT`` writes (kept between files):
    :data:`_STAGING_BYTES`, or :data:`~veob_dask.io.writebehind.MERGE_BYTES` in the
    write-behind thread, whose joined writes then reach the disk whole."""
    buf = getattr(_STAGING, "buf", None)
    if buf is None:
        size = writebehind.MERGE_BYTES if writebehind.in_writer_thread() else _STAGING_BYTES
        buf = _STAGING.buf = aligned_empty(size)
    return buf


def _write_direct(fd: int, parts: list[Any], offset: int | None = None) -> None:
    """``parts`` into ``fd``, opened with ``O_DIRECT``, through a staging buffer of whole pages.
    Without ``offset``: the whole file from its start (the last page padded, then the file
    truncated to its size); with one (page-aligned, the parts whole pages): written there."""
    buf = _staging()
    size = fill = 0
    at = offset or 0

    def flush(n: int) -> None:
        nonlocal at
        view, done = memoryview(buf)[:n], 0
        while done < n:
            done += os.pwrite(fd, view[done:], at + done)
        at += n

    for part in parts:
        src = np.frombuffer(part, dtype=np.uint8)
        size += len(src)
        while len(src):
            take = min(len(src), len(buf) - fill)
            buf[fill:fill + take] = src[:take]
            fill, src = fill + take, src[take:]
            if fill == len(buf):
                flush(fill)
                fill = 0
    if fill:
        padded = -(-fill // _ALIGN) * _ALIGN
        buf[fill:padded] = 0
        flush(padded)
    if offset is None:
        os.ftruncate(fd, size)
