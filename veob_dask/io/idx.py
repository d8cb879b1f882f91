"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzipped), streamed in row blocks.

An IDX file is 4 magic bytes (0, 0, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from typing import IO

import numpy as np

from ..errors import DataError, StoreNotFoundError

__all__ = ["IDX_TYPES", "idx_header", "iter_idx_blocks", "read_idx"]

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: str | os.PathLike[str]) -> IO[bytes]:
    if not os.path.exists(path):
        raise StoreNotFoundError(f"IDX file {str(path)!r} does not exist.")
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_exact(fh: IO[bytes], n: int, path: str, what: str) -> bytes:
    try:
        data = fh.read(n)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
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


def idx_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], np.dtype]:
    """Return (shape, big-endian dtype) of an IDX file without reading its values."""
    with _open(path) as fh:
        return _header(fh, str(path))


def iter_idx_blocks(path: str | os.PathLike[str], block_rows: int) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of at most ``block_rows`` samples, in native byte order.

    Raises
    ------
    StoreNotFoundError
        If the file does not exist.
    DataError
        If it is not IDX, or is truncated (checked as each block is read).
    """
    with _open(path) as fh:
        shape, dtype = _header(fh, str(path))
        row = int(np.prod(shape[1:], dtype=np.int64))
        done = 0
        while done < shape[0]:
            n = min(block_rows, shape[0] - done)
            raw = _read_exact(fh, n * row * dtype.itemsize, str(path),
                              f"samples {done}-{done + n - 1} of {shape[0]}")
            block = np.frombuffer(raw, dtype=dtype).reshape((n, *shape[1:]))
            yield block.astype(dtype.newbyteorder("="), copy=False)
            done += n


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a whole IDX file into memory (fine for MNIST-sized files)."""
    shape, _ = idx_header(path)
    blocks = list(iter_idx_blocks(path, max(1, shape[0])))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
