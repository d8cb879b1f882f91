"""Ingest NumPy arrays, ``.npy`` files and IDX files into row-chunked Zarr v3 dataset stores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from ..errors import DataError, DimensionMismatchError, InvalidParameterError, StoreNotFoundError
from . import layout
from .chunking import shard_rows
from .files import open_npy
from .idx import idx_header, iter_idx_blocks
from .location import Location, PathLike
from .publish import check_output
from .sparse import ingest_npz
from .store import default_chunk_rows, provenance
from .writer import compressors, create_artifact, write_array

__all__ = ["ingest", "source_kind"]

_IDX_SUFFIXES = ("-ubyte", ".idx", "-ubyte.gz", ".idx.gz", "idx1-ubyte", "idx3-ubyte")


def source_kind(source: Any) -> str:
    """Classify an ingest source: ``"array"``, ``"npy"``, ``"idx"``, ``"npz"`` or ``"zarr"``."""
    if not isinstance(source, (str, os.PathLike)):
        return "array"
    name = str(source).lower().rstrip("/")
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zarr") or (Path(name) / "zarr.json").exists():
        return "zarr"
    if any(name.endswith(s) for s in _IDX_SUFFIXES) or ".idx" in name:
        return "idx"
    raise DataError(
        f"cannot tell the format of {str(source)!r}; expected .npy, .npz, an IDX file "
        "(*-ubyte[.gz], *.idx[.gz]) or a .zarr store."
    )


def read_text_keys(path: PathLike) -> np.ndarray:
    """One key per non-empty line of a text file: int64 when every line is an integer, else
    text."""
    with open(path, encoding="utf-8") as fh:
        lines = [ln.strip() for ln in fh if ln.strip()]
    try:
        return np.array([int(v) for v in lines], dtype=np.int64)
    except ValueError:
        return np.array(lines, dtype=str)


def _label_blocks(labels: Any, block_rows: int, *, what: str = "labels",
                  text_ok: bool = False) -> tuple[tuple[int, ...], np.dtype, Iterator[Any]]:
    """Blocks of a per-sample array: ``.npy``, IDX, a text file (one value per line) or an
    in-memory array. Labels must be numbers; subdomain keys (``text_ok``) may be text."""
    if isinstance(labels, (str, os.PathLike)) and not str(labels).lower().endswith(".npy") \
            and not any(str(labels).lower().endswith(x) for x in _IDX_SUFFIXES):
        if not os.path.isfile(labels):
            raise StoreNotFoundError(f"{str(labels)!r} does not exist.")
        labels = read_text_keys(labels)
    kind = source_kind(labels)
    where = f"{what} {str(labels)!r}" if kind != "array" else what
    if kind == "idx":
        shape, dtype = idx_header(labels)
        dtype = dtype.newbyteorder("=")
        blocks: Iterator[Any] = iter_idx_blocks(labels, block_rows)
    elif kind in ("npy", "array"):
        arr = open_npy(labels, "labels") if kind == "npy" else np.asarray(labels)
        shape, dtype = arr.shape, arr.dtype
        blocks = (arr[i : i + block_rows] for i in range(0, shape[0] if shape else 0, block_rows))
    else:
        raise DataError(f"{where}: expected a .npy or IDX file or an array; got a {kind} source.")
    if len(shape) != 1:
        raise DataError(f"{where} must be 1-D (one label per sample); got shape {shape}.")
    if dtype.kind not in ("fiubUT" if text_ok else "fiub"):
        raise DataError(f"{where} must be numbers; got dtype {dtype}. Map class names to "
                        "integers first, e.g. np.unique(y, return_inverse=True)[1].")
    return shape, dtype, blocks


def _check_chunk_rows(chunk_rows: Any) -> None:
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or not isinstance(
            chunk_rows, (int, np.integer)) or chunk_rows < 1):
        raise InvalidParameterError(f"chunk_rows must be a positive integer; got {chunk_rows!r}.")


def _finite_block(block: np.ndarray, source: str, block_info: Any = None) -> np.ndarray:
    """Block kernel: ``block`` unchanged, or DataError when it holds NaN or inf."""
    if block.dtype.kind == "f" and not np.all(np.isfinite(block)):
        lo, hi = block_info[0]["array-location"][0] if block_info else (0, len(block))
        raise DataError(f"{source} holds NaN or inf in rows {lo}-{hi - 1}; clean or impute them "
                        "before ingesting.")
    return block


def _array_source(source: Any, kind: str) -> tuple[Any, str]:
    """The array of a ``.npy`` (memory-mapped) or in-memory source, checked, and its name."""
    if kind == "npy":
        arr = open_npy(source, "data")  # header checked against the file size first
        src_name = os.path.abspath(source)
    else:
        arr = source if isinstance(source, da.Array) else np.asarray(source)
        src_name = f"in-memory {type(source).__name__}"
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise DataError(f"cannot ingest an empty array (shape {arr.shape}).")
    if arr.dtype == object or arr.dtype.kind not in "fiub":
        raise DataError(f"cannot ingest dtype {arr.dtype}; expected numbers (ragged rows?).")
    return arr, src_name


def _write_streams(out: PathLike | Location, streams: dict[str, tuple[tuple[int, ...], np.dtype,
                   Iterable[np.ndarray]]], chunk_rows: int, attrs: dict[str, dict[str, Any]],
                   overwrite: bool, inputs: list[Any],
                   storage_options: Mapping[str, Any] | None,
                   progress: Callable[[int, int], None] | None = None,
                   shard_above: int | None = None, codec: str = "zstd") -> None:
    nbytes = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                 for shape, dtype, _ in streams.values())
    with create_artifact(out, "dataset", overwrite=overwrite, inputs=inputs,
                         storage_options=storage_options, nbytes=nbytes,
                         arrays=list(streams)) as w:
        for name, (shape, dtype, blocks) in streams.items():
            dims = (layout.dataset_dims(len(shape)) if name == layout.DATA
                    else layout.extra_dims(name, len(shape)))
            rows = min(chunk_rows, shape[0])
            per_shard = shard_rows(shape[0], rows, shard_above=shard_above)
            arr = w.array(name, shape=shape, dtype=dtype, dims=dims,
                          chunks=(rows, *shape[1:]), attrs=attrs[name], codec=codec,
                          shards=(per_shard, *shape[1:]) if per_shard else None)
            _write_blocks(arr, name, shape, np.dtype(dtype), blocks, per_shard, progress)


def _write_blocks(arr: Any, name: str, shape: tuple[int, ...], dtype: np.dtype,
                  blocks: Iterable[np.ndarray], per_shard: int | None,
                  progress: Callable[[int, int], None] | None) -> None:
    """Write ``blocks`` (consecutive rows) into ``arr``: each as it comes, or, into a sharded
    array, gathered in a one-shard buffer and written a whole shard at a time (writing part
    of a shard rewrites all of it). Memory: one shard plus one block."""
    buf = None if per_shard is None else np.empty((min(per_shard, shape[0]), *shape[1:]), dtype)
    done = filled = 0  # rows read; rows in the buffer (written: done - filled)
    for block in blocks:
        if block.dtype.kind == "f" and not np.all(np.isfinite(block)):
            raise DataError(f"{name} holds NaN or inf in rows {done}-{done + len(block)}.")
        if done + len(block) > shape[0]:
            raise DataError(f"{name}: expected {shape[0]} rows, read more.")
        if buf is None:
            arr[done : done + len(block)] = block
        else:
            taken = 0
            while taken < len(block):
                n = min(len(block) - taken, len(buf) - filled)
                buf[filled : filled + n] = block[taken : taken + n]
                filled, taken = filled + n, taken + n
                start = done + taken - filled  # first row of the buffer
                if filled == len(buf) or start + filled == shape[0]:
                    arr[start : start + filled] = buf[:filled]
                    filled = 0
        done += len(block)
        if progress is not None:
            progress(done, shape[0])
    if done != shape[0]:
        raise DataError(f"{name}: expected {shape[0]} rows, read {done}.")


def ingest(
    source: Any,
    out: PathLike | Location,
    *,
    labels: Any = None,
    domains: Any = None,
    chunk_rows: int | None = None,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    shard_above: int | None = None,
    codec: str = "zstd",
) -> str:
    """Write ``source`` (and optional ``labels`` and subdomain keys) to a dataset store at ``out``.

    Parameters
    ----------
    source : numpy.ndarray, dask.array.Array, or path
        Samples along axis 0. Paths: ``.npy`` (memory-mapped), IDX (``*-ubyte``, gzipped or
        not), ``.npz`` (scipy.sparse, via :mod:`veob_dask.io.sparse`).
    out : str or path-like
        Destination store (local path or fsspec URL); written atomically.
    labels : array or path, optional
        One label per sample (``.npy``, IDX, or text with one value per line), stored as
        array ``y``.
    domains : array or path, optional
        One subdomain key per sample (integers or text; same sources as ``labels``), stored as
        array ``domains`` (see :class:`~veob_dask.subdomain.SubdomainEmbedding`).
    chunk_rows : int, optional
        Rows per Zarr chunk (default: :func:`~veob_dask.io.chunking.chunk_rows`, ~24 MiB).
    overwrite : bool, default=False
        Replace an existing veob_dask store (never anything else).
    storage_options : dict, optional
        fsspec options when ``out`` is a URL.
    progress : callable, optional
        ``progress(rows_written, rows)`` per block streamed (IDX sources, or with labels).
    shard_above : int, optional
        Shard arrays of more row chunks than this (default 1,024; ``0``: always), 16 chunks
        per file; see :func:`~veob_dask.io.chunking.shard_rows`.
    codec : {"zstd", "none"}, default="zstd"
        Chunk compression (see :func:`~veob_dask.io.write_array`); ``.npz`` sources are
        always zstd.

    Returns
    -------
    str
        ``out``.

    Notes
    -----
    Memory: IDX and ``.npy`` sources are streamed one chunk (or shard) at a time.
    """
    _check_chunk_rows(chunk_rows)
    compressors(codec)
    kind = source_kind(source)
    inputs = [p for p in (source, labels, domains) if isinstance(p, (str, os.PathLike))]
    extras = {k: v for k, v in ((layout.LABELS, labels), (layout.DOMAINS, domains)) if v is not None}
    check_output(out, overwrite=overwrite, inputs=inputs, storage_options=storage_options)
    if kind == "npz":
        return _ingest_sparse(source, out, extras, chunk_rows=chunk_rows, overwrite=overwrite,
                              storage_options=storage_options)
    if kind == "zarr":
        raise DataError(f"{str(source)!r} is already a Zarr store; open it with read_matrix.")
    if kind == "idx":
        rows, streams, attrs = _idx_stream(source, chunk_rows)
    else:
        arr, src_name = _array_source(source, kind)
        rows = chunk_rows or default_chunk_rows(arr.shape[1:], arr.dtype, arr.shape[0])
        if not extras:
            _write_lazy(arr, out, src_name, kind, rows, overwrite=overwrite, inputs=inputs,
                        storage_options=storage_options, shard_above=shard_above,
                        codec=codec)
            return str(out)
        streams, attrs = _array_stream(arr, src_name, kind, rows)
    for name, values in extras.items():
        streams[name], attrs[name] = _key_stream(name, values, rows, streams["X"][0][0])
    _write_streams(out, streams, rows, attrs, overwrite, inputs, storage_options, progress,
                   shard_above, codec)
    return str(out)


def _ingest_sparse(source: Any, out: PathLike | Location, extras: dict[str, Any],
                   **kwargs: Any) -> str:
    """A scipy.sparse ``.npz`` source, through :func:`~veob_dask.io.sparse.ingest_npz`."""
    if extras:
        raise DataError("labels and domains are not supported for sparse .npz sources; "
                        "pass the keys to `veob subdomains fit --domains FILE` instead.")
    ingest_npz(source, out, **kwargs)
    return str(out)


def _array_stream(arr: Any, src_name: str, kind: str,
                  rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The block stream and provenance of an array source written beside labels or keys."""
    shape, dtype = tuple(arr.shape), np.dtype(arr.dtype)
    blocks = (np.asarray(arr[i : i + rows]) for i in range(0, shape[0], rows))
    return ({"X": (shape, dtype, blocks)},
            {"X": provenance(src_name, shape, dtype, format=kind)})


def _write_lazy(arr: Any, out: PathLike | Location, src_name: str, kind: str, rows: int,
                **kwargs: Any) -> None:
    """Write a (memory-mapped, in-memory or dask) array as a dataset through
    :func:`write_array`, checked finite chunk by chunk."""
    x = arr if isinstance(arr, da.Array) else da.from_array(arr, chunks=(rows, *arr.shape[1:]))
    x = da.map_blocks(_finite_block, x, src_name, dtype=x.dtype)
    write_array(x, out, attrs=provenance(src_name, arr.shape, arr.dtype, format=kind),
                chunk_rows=rows, **kwargs)


def _idx_stream(source: Any, chunk_rows: int | None) -> tuple[int, dict[str, Any],
                                                               dict[str, Any]]:
    """Rows per chunk, the block stream and the provenance of an IDX file's samples."""
    shape, dtype = idx_header(source)
    dtype = dtype.newbyteorder("=")
    rows = chunk_rows or default_chunk_rows(shape[1:], dtype, shape[0])
    if shape[0] == 0:
        raise DataError(f"IDX file {str(source)!r} holds no samples.")
    streams = {"X": (shape, dtype, iter_idx_blocks(source, rows))}
    return rows, streams, {"X": provenance(os.path.abspath(source), shape, dtype, format="idx")}


def _key_stream(name: str, values: Any, rows: int, n_samples: int) -> tuple[Any, Any]:
    """The block stream and provenance of the labels or subdomain keys, one per sample."""
    lshape, ldtype, lblocks = _label_blocks(
        values, rows, what="labels" if name == layout.LABELS else "domains",
        text_ok=name == layout.DOMAINS)
    if lshape[0] != n_samples:
        raise DimensionMismatchError(
            f"{'labels' if name == layout.LABELS else name} hold {lshape[0]} entries but the "
            f"data has {n_samples} samples."
        )
    src = os.path.abspath(values) if isinstance(values, (str, os.PathLike)) else "array"
    return (lshape, ldtype, lblocks), provenance(src, lshape, ldtype)
