"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzipped), streamed in row blocks.

An IDX file is 4 magic bytes (0, 0, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Iterator
from typing import IO

import numpy as np

from ..errors import DataError, StoreNotFoundError
from .files import format_bytes

__all__ = ["IDX_TYPES", "idx_header", "iter_idx_blocks", "read_idx"]

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


#: A gzip stream expands at most about 1032-fold (deflate's limit); a header claiming more
#: data than that from the compressed size is refused before reading.
_GZIP_MAX_RATIO = 1100


def _open(path: str | os.PathLike[str]) -> tuple[IO[bytes], bool]:
    if not os.path.exists(path):
        raise StoreNotFoundError(f"IDX file {str(path)!r} does not exist.")
    if os.path.isdir(path):
        raise DataError(f"IDX path {str(path)!r} is a folder, not a file.")
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return (gzip.open(path, "rb") if gz else open(path, "rb")), gz


def _read_exact(fh: IO[bytes], n: int, path: str, what: str) -> bytes:
    try:
        data = fh.read(n)
    except (EOFError, OSError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"IDX file {path!r} is truncated or corrupt while reading {what}: {err}") \
            from err
    if len(data) != n:
        raise DataError(
            f"IDX file {path!r} is truncated: expected {n} bytes of {what}, got {len(data)}."
        )
    return data


def _header(fh: IO[bytes], path: str) -> tuple[tuple[int, ...], np.dtype]:
    magic = _read_exact(fh, 4, path, "the magic number")
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES or magic[3] == 0:
        raise DataError(
            f"{path!r} is not an IDX file (magic bytes {magic.hex()}); expected 0000 + type code "
            "+ number of dimensions."
        )
    ndim = magic[3]
    dims = struct.unpack(f">{ndim}I", _read_exact(fh, 4 * ndim, path, "the dimensions"))
    return tuple(int(d) for d in dims), np.dtype(IDX_TYPES[magic[2]])


def _check_size(path: str, shape: tuple[int, ...], dtype: np.dtype, gz: bool) -> None:
    """Compare the size the header claims with the file's, before reading any value."""
    head = 4 + 4 * len(shape)
    claimed = math.prod(shape) * dtype.itemsize
    size = os.path.getsize(path)
    what = (f"its header claims {shape[0]:,} samples"
            + (f" × {'×'.join(str(d) for d in shape[1:])}" if len(shape) > 1 else "")
            + f" {dtype.newbyteorder('=').name} = {format_bytes(claimed)}")
    if gz:
        if claimed + head > size * _GZIP_MAX_RATIO + 4096:
            raise DataError(
                f"IDX file {path!r} is truncated or its header is wrong: {what}, but the file "
                f"holds {format_bytes(size)} compressed, which cannot expand to more than about "
                f"{format_bytes(size * _GZIP_MAX_RATIO)}.")
        return
    if claimed + head > size:
        raise DataError(
            f"IDX file {path!r} is truncated or its header is wrong: {what} after {head} header "
            f"bytes, but the file holds {format_bytes(size)}.")
    if claimed + head < size:
        raise DataError(
            f"IDX file {path!r} has {size - claimed - head:,} bytes after its last sample: {what} "
            f"after {head} header bytes, but the file holds {size:,} bytes. It is not one IDX "
            "array (concatenated files?).")


def idx_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype]:
    """Return (shape, big-endian dtype) of an IDX file without reading its values.

    Raises
    ------
    StoreNotFoundError
        If the file does not exist.
    DataError
        If it is not IDX, or (uncompressed) its size differs from what the header claims, or
        (gzipped) the header claims more than the compressed size can hold.
    """
    fh, gz = _open(path)
    with fh:
        shape, dtype = _header(fh, str(path))
    _check_size(str(path), shape, dtype, gz)
    return shape, dtype


def iter_idx_blocks(path: str | os.PathLike[str], block_rows: int) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of at most ``block_rows`` samples, in native byte order.

    Raises
    ------
    StoreNotFoundError
        If the file does not exist.
    DataError
        If it is not IDX, its size does not match its header (checked before any value is
        read), or (gzipped) it is truncated, corrupt or has bytes after the last sample
        (checked as the blocks are read).
    """
    fh, gz = _open(path)
    with fh:
        shape, dtype = _header(fh, str(path))
        _check_size(str(path), shape, dtype, gz)
        row = int(np.prod(shape[1:], dtype=np.int64))
        done = 0
        while done < shape[0]:
            n = min(block_rows, shape[0] - done)
            raw = _read_exact(fh, n * row * dtype.itemsize, str(path),
                              f"samples {done}-{done + n - 1} of {shape[0]}")
            block = np.frombuffer(raw, dtype=dtype).reshape((n, *shape[1:]))
            yield block.astype(dtype.newbyteorder("="), copy=False)
            done += n
        if gz:
            try:
                extra = fh.read(1)
            except (EOFError, OSError, zlib.error) as err:
                raise DataError(f"IDX file {str(path)!r} is corrupt after its last sample: "
                                f"{err}") from err
            if extra:
                raise DataError(f"IDX file {str(path)!r} has bytes after its last sample (its "
                                f"header claims {shape[0]:,} samples); it is not one IDX array.")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a whole IDX file into memory (fine for MNIST-sized files)."""
    shape, dtype = idx_header(path)
    row_bytes = max(1, math.prod(shape[1:]) * dtype.itemsize)
    blocks = list(iter_idx_blocks(path, max(1, min(shape[0], 2**26 // row_bytes))))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
