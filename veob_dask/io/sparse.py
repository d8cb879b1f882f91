"""Row-chunked CSR matrices in a Zarr group, read lazily as dask arrays of scipy CSR blocks.

Zarr has no sparse chunk layout (zarr-specs#48, #245 are open), so a sparse dataset store is a
Zarr group holding the three CSR arrays of the whole matrix:

``indptr``  int64, shape (n_rows + 1,): row ``i`` holds entries ``indptr[i]:indptr[i + 1]``;
``indices`` int32 (int64 beyond 2³¹ columns), shape (nnz,): column of each entry;
``data``    float, shape (nnz,): value of each entry;

and the root header (kind ``"sparse"``) ``{"format": "csr", "layout": "row-chunked",
"shape": [n, m], "nnz": nnz, "chunk_rows": r, "dtype": "float32", ...}`` (version-1 stores kept
the same fields in a group attribute ``"sparse"``; they are read too). Logical row
chunk ``c`` covers rows ``c·r … (c+1)·r - 1``; one dask task reads its ``indptr`` slice and then
the matching ``indices``/``data`` slices (stored in 1-D Zarr chunks of a fixed number of
entries), so a task touches only the bytes of its rows plus at most two partial edge chunks.

Reads go through :class:`~veob_dask.io.store.ZarrRowSource`, so a missing or undecodable chunk
raises :class:`~veob_dask.errors.StoreFormatError`; indices are checked against the shape in
every task (a corrupt store cannot index out of bounds). Ingest validates indices before writing
anything, and writes through :func:`~veob_dask.io.writer.create_artifact`.
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
import zarr
from dask.base import tokenize

from .._parallelism import parallelism
from ..errors import DataError, StoreFormatError, StoreNotFoundError
from .files import check_in_memory, npz_headers
from .location import Location, PathLike, as_location
from .publish import check_output
from .store import ZarrRowSource, open_artifact, open_group, provenance
from .writer import create_artifact

__all__ = ["balanced_row_bounds", "ingest_coo", "ingest_npz", "read_sparse", "sparse_info",
           "write_sparse"]

#: Default target of stored entries per logical row chunk (about 12–16 MiB of data + indices).
TARGET_CHUNK_NNZ = 1 << 21

#: Entries per 1-D Zarr chunk of ``indices`` and ``data``.
ENTRY_CHUNK = 1 << 19

#: Most entries in one dask block by default when reading (about 64 MiB of values + indices).
MAX_BLOCK_NNZ = 1 << 23

#: Stores with at most this many rows are read in blocks of equal entry counts (their row
#: offsets, 8 bytes a row, are read once when the graph is built); larger ones in the stored
#: row chunks.
BALANCE_MAX_ROWS = 1 << 24


def _default_chunk_rows(n_rows: int, nnz: int) -> int:
    if nnz == 0:
        return max(1, n_rows)
    return int(max(1, min(n_rows, math.ceil(n_rows * TARGET_CHUNK_NNZ / nnz))))


def _check_csr_parts(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                     shape: tuple[int, int], where: str) -> None:
    """Raise :class:`DataError` unless the CSR triple is consistent with ``shape``."""
    n, m = shape
    if indptr.shape != (n + 1,):
        raise DataError(f"{where}: indptr must have n_rows + 1 = {n + 1} entries; got "
                        f"{indptr.shape[0]}. The file is not a valid CSR matrix.")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != indices.shape[0]:
        raise DataError(f"{where}: indptr must start at 0, never decrease and end at nnz = "
                        f"{indices.shape[0]}; got start {indptr[0]}, end {indptr[-1]}.")
    if indices.shape != data.shape:
        raise DataError(f"{where}: indices ({indices.shape[0]}) and data ({data.shape[0]}) "
                        "must have the same length.")
    _check_range(indices, m, "column", where)


def _check_range(idx: np.ndarray, bound: int, what: str, where: str) -> None:
    if idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= bound:
        bad = lo if lo < 0 else hi
        raise DataError(
            f"{where}: {what} index {bad} is outside [0, {bound}) for a matrix with {bound} "
            f"{what}s. Fix the source or give the right shape."
        )


def _value_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "f":
        return dtype
    if dtype.kind in "iub":
        return np.dtype(np.float64) if dtype.itemsize > 2 else np.dtype(np.float32)
    raise DataError(f"sparse values must be real numbers; got dtype {dtype}.")


def write_sparse(x: Any, out: PathLike | Location, *, chunk_rows: int | None = None,
                 overwrite: bool = False, source: str = "array",
                 extra_attrs: dict[str, Any] | None = None,
                 inputs: tuple[Any, ...] = (),
                 storage_options: Mapping[str, Any] | None = None) -> None:
    """Write a scipy.sparse matrix as a row-chunked CSR store (atomically).

    Parameters
    ----------
    x : scipy.sparse matrix or array
        Any format; converted to CSR with duplicates summed and indices sorted.
    out : str, path-like or Location
        Destination store.
    chunk_rows : int, optional
        Rows per logical chunk; default so that a chunk holds about 2 million entries.
    overwrite : bool, default=False
        Replace an existing veob_dask store.
    source : str
        Recorded in the provenance.
    extra_attrs : dict, optional
        More header fields.
    inputs : tuple of paths, optional
        Stores or files the matrix was read from (an output equal to, inside or holding one
        is refused).
    storage_options : dict, optional
        fsspec options for a URL.

    Raises
    ------
    DataError
        NaN/inf values, out-of-range indices, or a non-positive ``chunk_rows``.
    StoreExistsError
        If ``out`` may not be written.
    """
    if not sp.issparse(x):
        raise DataError(f"write_sparse needs a scipy.sparse matrix; got {type(x).__name__}.")
    csr = sp.csr_matrix(x)
    csr.sum_duplicates()
    csr.sort_indices()
    n, m = csr.shape
    if n == 0 or m == 0:
        raise DataError(f"the sparse matrix is empty: shape {csr.shape}.")
    _check_csr_parts(csr.indptr, csr.indices, csr.data, (n, m), source)
    dtype = _value_dtype(csr.data.dtype)
    if not np.all(np.isfinite(csr.data)):
        raise DataError(f"{source}: the matrix holds NaN or inf values; clean them first.")
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or int(chunk_rows) < 1):
        raise DataError(f"chunk_rows must be a positive int; got {chunk_rows!r}.")
    rows = int(chunk_rows) if chunk_rows else _default_chunk_rows(n, csr.nnz)
    index_dtype = np.int32 if m < 2**31 else np.int64
    arrays = {"indptr": csr.indptr.astype(np.int64),
              "indices": csr.indices.astype(index_dtype),
              "data": csr.data.astype(dtype)}
    dims = {"indptr": ("row_offset",), "indices": ("entry",), "data": ("entry",)}
    meta = {"format": "csr", "layout": "row-chunked", "shape": [int(n), int(m)],
            "nnz": int(csr.nnz), "chunk_rows": rows, "dtype": str(dtype),
            "provenance": provenance(source, (n, m), dtype, nnz=int(csr.nnz)),
            **(extra_attrs or {})}
    with create_artifact(out, "sparse", overwrite=overwrite, inputs=inputs,
                         storage_options=storage_options,
                         nbytes=sum(int(a.nbytes) for a in arrays.values()), **meta) as w:
        for name, values in arrays.items():
            chunk = min(max(1, values.shape[0]), ENTRY_CHUNK if name != "indptr" else
                        max(rows * 64, 1 << 16))
            w.array(name, values, dims=dims[name], chunks=(chunk,))


def _read_csr_rows(path: Location, r0: int, r1: int, m: int, dtype: str) -> sp.csr_matrix:
    """Task: rows ``r0:r1`` of a sparse store as a CSR block (checked)."""
    indptr = ZarrRowSource(path, "indptr")[r0:r1 + 1].astype(np.int64)
    if indptr.shape[0] != r1 - r0 + 1 or np.any(np.diff(indptr) < 0):
        raise StoreFormatError(f"{str(path)!r}: indptr of rows {r0}-{r1 - 1} is corrupt "
                               "(decreasing offsets). Re-ingest the store.")
    p0, p1 = int(indptr[0]), int(indptr[-1])
    if p1 > p0:
        indices = ZarrRowSource(path, "indices")[p0:p1]
        data = ZarrRowSource(path, "data")[p0:p1]
    else:
        indices = np.empty(0, np.int32)
        data = np.empty(0, dtype)
    if indices.shape[0] != p1 - p0 or data.shape[0] != p1 - p0:
        raise StoreFormatError(f"{str(path)!r}: rows {r0}-{r1 - 1} point past the stored entries "
                               f"({p0}:{p1}); the store is truncated. Re-ingest it.")
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= m):
        raise StoreFormatError(f"{str(path)!r}: rows {r0}-{r1 - 1} hold column indices outside "
                               f"[0, {m}); the store is corrupt. Re-ingest it.")
    return sp.csr_matrix((data, indices, indptr - p0), shape=(r1 - r0, m))


def sparse_info(path: PathLike | Location, *,
                storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CSR description (format, shape, nnz, chunk_rows, dtype) of a sparse store, checked."""
    loc = as_location(path, storage_options)
    where = repr(str(loc))
    group, header = open_artifact(loc, "sparse")
    info = dict(header.get("legacy") or {}) if header.get("format_version") == 1 else header
    if info.get("format") != "csr" or info.get("layout", "row-chunked") != "row-chunked":
        raise StoreFormatError(f"{where}: sparse format {info.get('format')!r} is not "
                               "supported (expected row-chunked 'csr'); re-ingest it with this "
                               "veob_dask.")
    try:
        n, m = (int(v) for v in info["shape"])
        nnz, rows = int(info.get("nnz", 0)), int(info["chunk_rows"])
        np.dtype(str(info["dtype"]))
    except (KeyError, TypeError, ValueError) as err:
        raise StoreFormatError(f"{where}: the sparse header is incomplete or damaged "
                               f"({err}).") from err
    if n < 1 or m < 1 or nnz < 0 or rows < 1:
        raise StoreFormatError(f"{where}: the sparse header claims shape {(n, m)}, nnz {nnz}, "
                               f"chunk_rows {rows}; the store is damaged.")
    for key in ("indptr", "indices", "data"):
        if key not in group:
            raise StoreFormatError(f"{where}: sparse store lacks array {key!r}.")
    return {**info, "shape": [n, m], "nnz": nnz, "chunk_rows": rows}


def read_sparse(path: PathLike | Location, *, chunk_rows: int | None = None,
                n_blocks: int | None = None,
                storage_options: Mapping[str, Any] | None = None) -> da.Array:
    """Open a sparse store lazily as a dask array of ``scipy.sparse.csr_matrix`` blocks.

    Parameters
    ----------
    path : str or path-like
        A store written by :func:`write_sparse`, :func:`ingest_npz` or :func:`ingest_coo`.
    chunk_rows : int, optional
        Rows per dask block (uniform row chunks).
    n_blocks : int, optional
        Number of blocks of (nearly) equal entry counts. Default, when ``chunk_rows`` is not
        given either: enough blocks that none holds more than :data:`MAX_BLOCK_NNZ` entries,
        rounded up to a multiple of :func:`veob_dask.runtime.parallelism` so that every
        thread has the same work to the end of a pass. Stores of more than
        :data:`BALANCE_MAX_ROWS` rows are read in their stored row chunks instead.

    Raises
    ------
    StoreNotFoundError
        No store at ``path``.
    StoreFormatError
        Not a sparse store, an unknown version, or (when computed) a missing/corrupt chunk.
    DataError
        A non-positive ``chunk_rows`` or ``n_blocks``.

    Notes
    -----
    Laziness: reads the metadata and, for a balanced split, the row offsets (8 bytes a row);
    each task reads its rows' entries when computed.
    Why balanced: a block's product with a panel, ``X_bᵀ (X_b Q)``, writes a dense
    ``n_features x l`` result whatever its size, so for wide matrices few blocks of equal
    work are much faster than many small or uneven ones (benchmarks/README.md,
    "Measurements behind choices in the code").
    Determinism: the graph name depends on the path, shape and block boundaries; the
    default boundaries depend on the parallelism, so results can differ at rounding level
    between machines (pass ``n_blocks`` or ``chunk_rows`` to pin them).
    """
    loc = as_location(path, storage_options)
    info = sparse_info(loc)
    n, m = (int(v) for v in info["shape"])
    nnz = int(info.get("nnz", 0))
    dtype = str(info["dtype"])
    spath = loc
    for label, value in (("chunk_rows", chunk_rows), ("n_blocks", n_blocks)):
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise DataError(f"{label} must be a positive int; got {value!r}.")
    if chunk_rows is not None:
        bounds = _uniform_bounds(n, int(chunk_rows))
    elif n_blocks is None and n > BALANCE_MAX_ROWS:
        bounds = _uniform_bounds(n, int(info["chunk_rows"]))
    else:
        if n_blocks is None:
            par = parallelism()
            n_blocks = max(par, -(-nnz // MAX_BLOCK_NNZ))
            n_blocks = -(-n_blocks // par) * par
        indptr = ZarrRowSource(spath, "indptr")[0:n + 1].astype(np.int64)
        bounds = balanced_row_bounds(indptr, int(n_blocks))
    name = "veob-read-sparse-" + tokenize(loc.url, loc.options, n, m, bounds, dtype, nnz)
    # A Blockwise layer over the (tiny) array of row ranges, so that dask fuses each read with
    # the kernel that consumes the block into one task (a separate read task costs a scheduling
    # gap per block and pass; benchmarks/README.md, "Measurements behind choices in the code").
    ranges = da.from_array(np.array(list(itertools.pairwise(bounds)), dtype=np.int64),
                           chunks=(1, 2), name=name + "-ranges")
    meta = sp.csr_matrix((0, m), dtype=np.dtype(dtype))
    out: da.Array = da.blockwise(
        _read_block, "ij", ranges, "ik", spath, None, m, None, dtype, None,
        new_axes={"j": m}, adjust_chunks={"i": tuple(int(b) for b in np.diff(bounds))},
        concatenate=True, meta=meta, name=name)
    return out


def _read_block(ranges: np.ndarray, path: Location, m: int, dtype: str) -> sp.csr_matrix:
    r0, r1 = (int(v) for v in ranges[0])
    return _read_csr_rows(path, r0, r1, m, dtype)


def _uniform_bounds(n: int, rows: int) -> list[int]:
    return [*range(0, n, rows), n]


def balanced_row_bounds(indptr: np.ndarray, n_blocks: int) -> list[int]:
    """Row boundaries ``[0, ..., n]`` splitting the entries of a CSR ``indptr`` (cumulative
    entry counts) into ``n_blocks`` nearly equal runs (no empty blocks; fewer blocks if
    there are fewer rows)."""
    n = indptr.shape[0] - 1
    nnz = int(indptr[-1])
    if nnz == 0:
        return _uniform_bounds(n, max(1, -(-n // n_blocks)))
    targets = nnz * np.arange(1, n_blocks) / n_blocks
    inner = np.searchsorted(indptr, targets, side="left")
    return sorted({0, n, *(int(b) for b in inner if 0 < b < n)})


def _load_npz_parts(src: str | os.PathLike[str]) -> sp.csr_matrix:
    """Read a scipy ``save_npz`` file without pickle, validating it before any conversion."""
    where = str(src)
    if not os.path.exists(src):
        raise StoreNotFoundError(f"no such file {where!r}.")
    if os.path.isdir(src):
        raise DataError(f"{where!r} is a folder, not a .npz file.")
    try:
        with zipfile.ZipFile(src) as zf:
            headers = npz_headers(zf, repr(where))
        check_in_memory(sum(math.prod(s) * d.itemsize for s, d in headers.values()),
                        f"reading {where!r}")
        with np.load(src, allow_pickle=False) as npz:
            parts = {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise DataError(f"{where!r} is not a readable .npz file ({err}).") from err
    if "format" not in parts or "shape" not in parts:
        raise DataError(f"{where!r} is not a scipy.sparse .npz (no 'format'/'shape' entries; "
                        "write it with scipy.sparse.save_npz).")
    fmt = parts["format"].item() if parts["format"].size == 1 else parts["format"]
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    needed = {"csr": ("indptr", "indices"), "csc": ("indptr", "indices"), "coo": ("row", "col")}
    if fmt not in needed:
        raise DataError(f"{where!r}: sparse format {fmt!r} is not supported; save it as csr, csc "
                        "or coo.")
    for key in ("shape", *needed[fmt]):
        if key not in parts:
            raise DataError(f"{where!r}: a {fmt} .npz needs the entries shape, data, "
                            f"{', '.join(needed[fmt])}; {key!r} is missing (it holds "
                            f"{sorted(parts)}).")
        if parts[key].dtype.kind not in "iu" or parts[key].ndim != 1:
            raise DataError(f"{where!r}: entry {key!r} must be a 1-D array of whole numbers "
                            f"(an integer dtype); got dtype {parts[key].dtype}, shape "
                            f"{parts[key].shape}.")
    shape = tuple(int(s) for s in parts["shape"])
    if len(shape) != 2 or min(shape) < 1:
        raise DataError(f"{where!r}: shape must be 2-D and non-empty; got {shape}.")
    data = parts.get("data")
    if data is None:
        raise DataError(f"{where!r}: no 'data' entry.")
    check_in_memory(8 * (shape[0] + 1) + 16 * data.size,
                    f"the CSR form of the {shape[0]:,} × {shape[1]:,} matrix in {where!r}")
    if fmt in ("csr", "csc"):
        indptr, indices = parts["indptr"], parts["indices"]
        major, minor = (shape[0], shape[1]) if fmt == "csr" else (shape[1], shape[0])
        _check_csr_parts(indptr, indices, data, (major, minor), where)
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        return sp.csr_matrix(cls((data, indices, indptr), shape=shape))
    if fmt == "coo":
        row, col = parts["row"], parts["col"]
        if not (row.shape == col.shape == data.shape):
            raise DataError(f"{where!r}: row, col and data must have the same length.")
        _check_range(row, shape[0], "row", where)
        _check_range(col, shape[1], "column", where)
        return sp.csr_matrix(sp.coo_matrix((data, (row, col)), shape=shape))
    raise AssertionError(fmt)  # unreachable: checked above


def ingest_npz(src: str | os.PathLike[str], out: PathLike | Location, *,
               chunk_rows: int | None = None, overwrite: bool = False,
               storage_options: Mapping[str, Any] | None = None) -> None:
    """Ingest a ``scipy.sparse.save_npz`` file (csr, csc or coo) into a sparse store.

    Raises
    ------
    StoreNotFoundError
        ``src`` does not exist.
    DataError
        Not a sparse ``.npz``, inconsistent offsets, out-of-range indices or NaN/inf values;
        nothing is written then.
    StoreExistsError
        ``out`` exists and ``overwrite`` is False.

    Notes
    -----
    Memory: the whole matrix (a ``.npz`` is read whole); the store is written atomically.
    """
    check_output(out, overwrite=overwrite, inputs=[src], storage_options=storage_options)
    x = _load_npz_parts(src)
    write_sparse(x, out, chunk_rows=chunk_rows, overwrite=overwrite,
                 source=os.path.abspath(str(src)), extra_attrs={"ingest": {"format": "npz"}},
                 inputs=(src,), storage_options=storage_options)


def _read_coo_piece(arr: zarr.Array, sl: slice, where: str, name: str) -> np.ndarray:
    try:
        return np.asarray(arr[sl])
    except Exception as err:  # codec errors surface as many types
        raise StoreFormatError(
            f"could not decode entries {sl.start}-{sl.stop - 1} of {name!r} in {where!r} "
            f"({type(err).__name__}: {err}); the chunk is corrupt.") from err


def ingest_coo(src_store: PathLike | Location, out: PathLike | Location, *,
               chunk_rows: int | None = None, overwrite: bool = False,
               storage_options: Mapping[str, Any] | None = None) -> None:
    """Ingest a COO triple stored in Zarr (arrays ``row``, ``col``, ``data``; attr ``shape``).

    Duplicate (row, col) pairs are summed. The triple is read Zarr chunk by chunk and each
    piece is range-checked before anything is written.

    Raises
    ------
    StoreNotFoundError
        ``src_store`` does not exist.
    StoreFormatError
        A missing array, a missing/invalid ``shape`` attribute, or a missing/corrupt chunk.
    DataError
        Arrays of different lengths, out-of-range indices or NaN/inf values.
    StoreExistsError
        ``out`` exists and ``overwrite`` is False.

    Notes
    -----
    Memory: O(nnz) for the CSR being built (the COO entries are not sorted out of core).
    """
    check_output(out, overwrite=overwrite, inputs=[src_store], storage_options=storage_options)
    src_loc = as_location(src_store, storage_options)
    where = str(src_loc)
    group = open_group(src_loc)
    for key in ("row", "col", "data"):
        if key not in group:
            raise StoreFormatError(f"{where!r}: a COO store needs arrays 'row', 'col' and "
                                   f"'data'; {key!r} is missing (it holds {sorted(group)}).")
    shape_attr = group.attrs.get("shape")
    try:
        shape = tuple(int(s) for s in shape_attr)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise StoreFormatError(f"{where!r}: group attribute 'shape' must be [n_rows, n_cols]; "
                               f"got {shape_attr!r}.") from err
    if len(shape) != 2 or min(shape) < 1:
        raise StoreFormatError(f"{where!r}: 'shape' must be 2-D and non-empty; got {shape}.")
    values = list(shape_attr)  # type: ignore[arg-type]
    if any(isinstance(s, bool) or not isinstance(s, int) for s in values):
        raise StoreFormatError(f"{where!r}: group attribute 'shape' must hold integers; got "
                               f"{shape_attr!r}.")
    # Plain zarr reads: in a user's COO store an absent chunk legitimately means "all fill
    # value" (zarr skips writing such chunks by default); undecodable chunks still raise.
    sources = {k: group[k] for k in ("row", "col", "data")}
    if any(not isinstance(a, zarr.Array) or a.ndim != 1 for a in sources.values()) or len(
            {a.shape[0] for a in sources.values()}) != 1:
        raise DataError(f"{where!r}: row, col and data must be 1-D arrays of one length; got "
                        f"{ {k: getattr(a, 'shape', None) for k, a in sources.items()} }.")
    nnz = sources["row"].shape[0]
    for k, a in sources.items():
        kinds = "iu" if k != "data" else "iufb"
        if np.dtype(str(a.dtype)).kind not in kinds:
            raise DataError(f"{where!r}: array {k!r} must hold "
                            f"{'integers' if k != 'data' else 'numbers'}; got dtype {a.dtype}.")
    check_in_memory(8 * (shape[0] + 1) + 24 * nnz,
                    f"the CSR form of the {shape[0]:,} × {shape[1]:,} matrix with {nnz:,} entries "
                    f"in {where!r}")
    step = max(sources["row"].chunks[0], 1 << 20)
    pieces = []
    for start in range(0, nnz, step):
        sl = slice(start, min(nnz, start + step))
        row, col, val = (_read_coo_piece(sources[k], sl, where, k) for k in ("row", "col", "data"))
        piece = f"{where} (entries {sl.start}-{sl.stop - 1})"
        _check_range(row, shape[0], "row", piece)
        _check_range(col, shape[1], "column", piece)
        if val.size and not np.all(np.isfinite(val)):
            raise DataError(f"{piece}: NaN or inf values; clean them first.")
        pieces.append(sp.csr_matrix(sp.coo_matrix((val, (row, col)), shape=shape)))
    if not pieces:
        x = sp.csr_matrix(shape, dtype=np.dtype(str(sources["data"].dtype)))  # no entries
    else:
        x = pieces[0]
        for p in pieces[1:]:
            x = x + p
    write_sparse(x, out, chunk_rows=chunk_rows, overwrite=overwrite, source=where,
                 extra_attrs={"ingest": {"format": "coo-zarr"}}, inputs=(src_loc,),
                 storage_options=storage_options)
