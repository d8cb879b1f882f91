"""Checks of untrusted input files before their values are read.

A header (``.npy``, a member of an ``.npz``, IDX) states a shape and a dtype; a damaged or
hostile one can claim terabytes. Each reader here compares what the header claims with the
bytes the file really holds *before* anything is allocated, and names the file, the claim and
the size in one :class:`~veob_dask.errors.DataError` line ("its header claims 4,000,000,000
samples × 28×28 uint8 = 3.14 TB, but the file holds 47 MB").
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import IO, Any

import numpy as np

from ..errors import DataError, StoreNotFoundError

__all__ = ["check_in_memory", "format_bytes", "memory_bytes", "npy_header", "npz_headers",
           "open_npy"]

#: Largest header of a ``.npy`` file or ``.npz`` member read (numpy's own default).
MAX_NPY_HEADER = 10_000

#: deflate expands at most about 1032-fold; a zip entry claiming more is damaged.
_ZIP_MAX_RATIO = 1100


def format_bytes(n: float) -> str:
    """``3.14e12`` -> ``"3.14 TB"`` (decimal units), for messages."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"


def memory_bytes() -> int:
    """Physical memory of this machine (bytes); 2⁶³ when it cannot be told."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 2**63


def check_in_memory(nbytes: int, what: str) -> None:
    """Refuse to build an in-memory object of ``nbytes`` larger than this machine's memory."""
    total = memory_bytes()
    if nbytes > total:
        raise DataError(f"{what} would take {format_bytes(nbytes)} in memory, more than this "
                        f"machine's {format_bytes(total)}; the input's header is wrong or the "
                        "input is too large for this reader.")


def _describe(shape: tuple[int, ...], dtype: np.dtype) -> str:
    dims = " × ".join(f"{d:,}" for d in shape) or "a scalar"
    return f"shape {dims} of {dtype} = {format_bytes(math.prod(shape) * dtype.itemsize)}"


def npy_header(fh: IO[bytes], where: str, *, kinds: str = "fiub"
               ) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Read a ``.npy`` header from ``fh``: ``(shape, dtype, fortran_order)``, checked.

    Raises
    ------
    DataError
        Not a ``.npy`` file, a cut header, a negative shape, or a dtype whose kind is not in
        ``kinds`` (default: plain numbers) or that holds objects (which need pickle, never
        used) or fields.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                fh, max_header_size=MAX_NPY_HEADER)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                fh, max_header_size=MAX_NPY_HEADER)
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise DataError(f"{where} is not a readable .npy file ({err}).") from err
    if any(d < 0 for d in shape):
        raise DataError(f"{where}: the .npy header claims the negative shape {shape}; the file "
                        "is damaged.")
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects (pickled data), which are never loaded; "
                        "save plain numbers, e.g. np.save(path, x.astype('float32')).")
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{where} holds dtype {dtype}; expected plain numbers (float, int, uint "
                        "or bool).")
    return tuple(int(d) for d in shape), dtype, bool(fortran)


def open_npy(path: str | os.PathLike[str], what: str = "data") -> np.ndarray:
    """Memory-map a ``.npy`` file after checking its header against its size.

    Raises
    ------
    StoreNotFoundError
        If the file does not exist.
    DataError
        A bad header (see :func:`npy_header`), or a file shorter or longer than its header
        claims.
    """
    where = f"{what} file {str(path)!r}"
    if not os.path.exists(path):
        raise StoreNotFoundError(f".npy file {str(path)!r} does not exist.")
    if os.path.isdir(path):
        raise DataError(f"{where} is a folder, not a .npy file.")
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        shape, dtype, _ = npy_header(fh, where)
        offset = fh.tell()
    claimed = math.prod(shape) * dtype.itemsize
    if offset + claimed > size:
        raise DataError(f"{where} is truncated or its header is wrong: the header claims "
                        f"{_describe(shape, dtype)} after {offset} header bytes, but the file "
                        f"holds {format_bytes(size)}.")
    if offset + claimed < size:
        raise DataError(f"{where} has {size - offset - claimed:,} bytes after its data (the "
                        f"header claims {_describe(shape, dtype)}); it is damaged or not one "
                        ".npy array.")
    if claimed == 0:
        return np.empty(shape, dtype)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def npz_headers(zf: zipfile.ZipFile, where: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Check the header of every ``.npy`` member of an open ``.npz`` against the member's size.

    Returns
    -------
    dict
        Member name without ``.npy`` -> ``(shape, dtype)``.

    Raises
    ------
    DataError
        A member that is not a plain numeric ``.npy``, or whose header claims more or fewer
        bytes than the member holds (as the zip directory records it).
    """
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            continue
        name = info.filename[:-4]
        member = f"{where} (entry {name!r})"
        stored = info.compress_type == zipfile.ZIP_STORED
        if (stored and info.file_size != info.compress_size) or \
                info.file_size > info.compress_size * _ZIP_MAX_RATIO + 4096:
            raise DataError(f"{member}: the zip directory claims {format_bytes(info.file_size)} "
                            f"from {format_bytes(info.compress_size)} stored; the file is "
                            "damaged.")
        with zf.open(info) as fh:
            shape, dtype, _ = _npz_member_header(fh, member)  # numbers or text
            offset = fh.tell()
        claimed = math.prod(shape) * dtype.itemsize
        if offset + claimed != info.file_size:
            raise DataError(f"{member} is truncated or its header is wrong: the header claims "
                            f"{_describe(shape, dtype)}, but the entry holds "
                            f"{format_bytes(max(0, info.file_size - offset))}.")
        out[name] = (shape, dtype)
    return out


def _npz_member_header(fh: Any, where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    try:
        return npy_header(fh, where, kinds="fiubSU")
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{where} cannot be read ({err}).") from err
