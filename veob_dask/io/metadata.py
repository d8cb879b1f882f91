"""Checks of the Zarr v3 metadata of a store on read, before zarr parses it.

A ``zarr.json`` is data from wherever the store came from. Parsed as is, an edited one ends in
tracebacks (``ZeroDivisionError`` for a chunk size of 0, ``RecursionError`` for JSON nested
100,000 deep, ``UnknownCodecError``), in allocations of petabytes (a shape of 10¹⁵ rows), or in
silently wrong values (a shape claiming fewer columns than the chunks hold). The functions here
read every ``zarr.json`` of a store themselves and refuse, with one
:class:`~veob_dask.errors.StoreFormatError` naming the store and the node, anything outside
what this library reads:

* ``zarr_format`` 3, ``node_type`` ``"group"`` or ``"array"``, attributes a JSON object;
* arrays: a shape of non-negative integers; a numeric ``data_type`` (bool, int, uint, float) or
  zarr's variable-length ``"string"``/``"bytes"``; a regular chunk grid of positive integers
  with one entry per axis; the ``default`` or ``v2`` chunk key encoding; a non-empty list of
  known codecs; no storage transformers; a fill value of the data type's kind; chunks of at
  most :data:`MAX_CHUNK_BYTES` and a claimed size of at most :data:`MAX_CLAIMED_BYTES`;
* groups: no array fields, and every sub-folder a node with its own ``zarr.json``;
* arrays read as rows (:func:`check_row_array`, used by
  :class:`~veob_dask.io.store.ZarrRowSource`): numeric, chunked along the first axis only (the
  chunk spans every other axis, as every veob_dask writer makes it), and the last row chunk is
  present (veob_dask writes every chunk, so a shape claiming more rows than were written is
  refused before a dask graph of that size is built).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import StoreFormatError
from .location import Location, PathLike, as_location

__all__ = ["MAX_CHUNK_BYTES", "MAX_CLAIMED_BYTES", "MAX_METADATA_BYTES", "check_array_metadata",
           "check_chunks_written", "check_row_array", "check_store_metadata", "read_metadata"]

#: Largest ``zarr.json`` read (attributes included).
MAX_METADATA_BYTES = 64 * 2**20

#: Largest uncompressed size an array may claim (1 PiB); more is taken as an edited shape.
MAX_CLAIMED_BYTES = 2**50

#: Largest uncompressed size of one chunk (64 GiB; veob_dask writes about 64 MiB).
MAX_CHUNK_BYTES = 2**36

#: Most nodes (groups and arrays) and nesting levels visited in one store.
MAX_NODES = 10_000
MAX_DEPTH = 32

_NUMERIC = {"bool": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2,
            "uint32": 4, "uint64": 8, "float16": 2, "float32": 4, "float64": 8}
_VARIABLE = {"string": 16, "bytes": 16, "variable_length_bytes": 16}
_CODECS = {"bytes", "transpose", "zstd", "blosc", "gzip", "crc32c", "sharding_indexed",
           "vlen-utf8", "vlen-bytes"}
_FLOAT_WORDS = {"NaN", "Infinity", "-Infinity"}
_GROUP_KEYS = {"zarr_format", "node_type", "attributes", "consolidated_metadata"}


class _Tree:
    """Reads files and lists folders of a store, local or behind fsspec."""

    def __init__(self, loc: Location) -> None:
        self.fs: Any = None
        if loc.is_local:
            self.base = str(loc.path)
        else:
            self.fs, root = loc.filesystem()
            self.base = root.rstrip("/")

    def _join(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def read(self, rel: str) -> bytes | None:
        path = self._join(rel)
        if self.fs is not None:
            if not self.fs.isfile(path):
                return None
            size = self.fs.size(path)
            if size is not None and size > MAX_METADATA_BYTES:
                raise ValueError(f"it is {size} bytes, more than {MAX_METADATA_BYTES}")
            return bytes(self.fs.cat_file(path))
        if not os.path.isfile(path):
            return None
        size = os.path.getsize(path)
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"it is {size} bytes, more than {MAX_METADATA_BYTES}")
        with open(path, "rb") as fh:
            return fh.read()

    def children(self, rel: str) -> list[str]:
        path = self._join(rel)
        if self.fs is not None:
            names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in self.fs.ls(path, detail=True)
                     if e.get("type") == "directory"]
        else:
            with os.scandir(path) as it:
                names = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        return sorted(n for n in names if not n.startswith(".") and n != "zarr.json")

    def exists(self, rel: str) -> bool:
        path = self._join(rel)
        return bool(self.fs.isfile(path)) if self.fs is not None else os.path.isfile(path)


def _fail(where: str, node: str, why: str) -> StoreFormatError:
    what = f"{node}/zarr.json" if node else "zarr.json"
    return StoreFormatError(
        f"{where}: {what} is damaged or was edited ({why}); this store cannot be read. Write it "
        "again (e.g. re-ingest), or restore it from a copy.")


def read_metadata(raw: bytes, where: str, node: str = "") -> dict[str, Any]:
    """Parse the bytes of one ``zarr.json`` as a JSON object, or raise StoreFormatError."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise _fail(where, node, f"not UTF-8 text: {err.reason} at byte {err.start}") from err
    except json.JSONDecodeError as err:
        raise _fail(where, node, f"not valid JSON: {err.msg} at line {err.lineno} column "
                    f"{err.colno}") from err
    except RecursionError as err:
        raise _fail(where, node, "JSON nested too deeply") from err
    if not isinstance(meta, dict):
        raise _fail(where, node, f"a JSON {type(meta).__name__}, not an object")
    if meta.get("zarr_format") != 3 or isinstance(meta.get("zarr_format"), bool):
        raise _fail(where, node, f"zarr_format {meta.get('zarr_format')!r}; this library reads "
                    "Zarr format 3")
    if meta.get("node_type") not in ("group", "array"):
        raise _fail(where, node, f"node_type {meta.get('node_type')!r}")
    if not isinstance(meta.get("attributes", {}), dict):
        raise _fail(where, node, "its attributes are not a JSON object")
    if meta["node_type"] == "group" and meta.keys() - _GROUP_KEYS:
        raise _fail(where, node, "a group's metadata holds the array fields "
                    f"{sorted(meta.keys() - _GROUP_KEYS)}")
    return meta


def _int_list(value: Any, least: int) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= least for v in value)


def _check_fill(fill: Any, dtype: str) -> bool:
    if dtype in _VARIABLE:
        return True
    if dtype == "bool":
        return isinstance(fill, bool)
    if isinstance(fill, bool):
        return False
    if dtype.startswith(("int", "uint")):
        return isinstance(fill, int)
    if isinstance(fill, (int, float)):
        return True
    return isinstance(fill, str) and (fill in _FLOAT_WORDS or fill.startswith("0x"))


def check_array_metadata(meta: dict[str, Any], where: str, node: str) -> None:
    """Refuse array metadata this library cannot read safely (see the module notes)."""
    shape = meta.get("shape")
    if not _int_list(shape, 0) or len(shape) > 32:
        raise _fail(where, node, f"shape {shape!r} is not a list of non-negative integers")
    dtype = meta.get("data_type")
    if not isinstance(dtype, str) or dtype not in _NUMERIC.keys() | _VARIABLE.keys():
        raise _fail(where, node, f"data_type {dtype!r} is not one this library reads (numbers: "
                    + ", ".join(_NUMERIC) + ")")
    grid = meta.get("chunk_grid")
    chunks = grid.get("configuration", {}).get("chunk_shape") if isinstance(grid, dict) and \
        isinstance(grid.get("configuration"), dict) else None
    if not isinstance(grid, dict) or grid.get("name") != "regular" or not _int_list(chunks, 1):
        raise _fail(where, node, f"chunk grid {grid!r} is not a regular grid of positive "
                    "chunk sizes")
    if len(chunks) != len(shape):
        raise _fail(where, node, f"chunk shape {chunks} and shape {shape} have different "
                    "numbers of axes")
    enc = meta.get("chunk_key_encoding")
    if not isinstance(enc, dict) or enc.get("name") not in ("default", "v2") or \
            (enc.get("configuration") or {}).get("separator", "/") not in ("/", "."):
        raise _fail(where, node, f"chunk key encoding {enc!r} is unknown")
    codecs = meta.get("codecs")
    if not isinstance(codecs, list) or not codecs:
        raise _fail(where, node, "no codecs")
    for codec in codecs:
        name = codec.get("name") if isinstance(codec, dict) else None
        if not isinstance(name, str) or (name not in _CODECS and
                                         not name.startswith("numcodecs.")):
            raise _fail(where, node, f"unknown codec {codec!r} (known: "
                        + ", ".join(sorted(_CODECS)) + ")")
    if meta.get("storage_transformers"):
        raise _fail(where, node, f"storage transformers {meta['storage_transformers']!r} are not "
                    "supported")
    names = meta.get("dimension_names")
    if names is not None and (not isinstance(names, list) or len(names) != len(shape) or not
                              all(n is None or isinstance(n, str) for n in names)):
        raise _fail(where, node, f"dimension_names {names!r} do not match the shape {shape}")
    if "fill_value" not in meta or not _check_fill(meta["fill_value"], dtype):
        raise _fail(where, node, f"fill_value {meta.get('fill_value')!r} is not a {dtype}")
    itemsize = _NUMERIC.get(dtype) or _VARIABLE[dtype]
    if math.prod(chunks) * itemsize > MAX_CHUNK_BYTES:
        raise _fail(where, node, f"chunks of {chunks} {dtype} claim "
                    f"{math.prod(chunks) * itemsize / 2**30:.3g} GiB each, more than "
                    f"{MAX_CHUNK_BYTES // 2**30} GiB")
    claimed = math.prod(shape) * itemsize
    if claimed > MAX_CLAIMED_BYTES:
        raise _fail(where, node, f"shape {shape} of {dtype} claims {claimed / 2**50:.3g} PiB, "
                    f"more than any store this library reads ({MAX_CLAIMED_BYTES // 2**50} PiB)")


def _walk(tree: _Tree, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    pending = [("", 0)]
    seen = 0
    while pending:
        node, depth = pending.pop()
        raw = tree.read(f"{node}/zarr.json" if node else "zarr.json")
        if raw is None:
            raise _fail(where, node, "it is missing" if not node else "it is missing, but the "
                        "folder is there")
        meta = read_metadata(raw, where, node)
        seen += 1
        if seen > MAX_NODES:
            raise _fail(where, node, f"the store holds more than {MAX_NODES} nodes")
        yield node, meta
        if meta["node_type"] == "group":
            if depth >= MAX_DEPTH:
                raise _fail(where, node, f"groups nested more than {MAX_DEPTH} deep")
            pending.extend((f"{node}/{c}" if node else c, depth + 1)
                           for c in tree.children(node))


def check_store_metadata(path: PathLike | Location) -> dict[str, dict[str, Any]]:
    """Read and check every ``zarr.json`` of the store at ``path`` (local path, URL or
    :class:`~veob_dask.io.location.Location`).

    Returns
    -------
    dict
        Node path inside the store (``""`` for the root) -> its parsed metadata.

    Raises
    ------
    StoreFormatError
        Naming the store and the node whose metadata is damaged or out of bounds.
    """
    loc = as_location(path)
    where = repr(str(loc))
    tree = _Tree(loc)
    nodes: dict[str, dict[str, Any]] = {}
    try:
        for node, meta in _walk(tree, where):
            if meta["node_type"] == "array":
                check_array_metadata(meta, where, node)
            nodes[node] = meta
    except ValueError as err:
        if isinstance(err, StoreFormatError):
            raise
        raise _fail(where, "", str(err)) from err
    return nodes


def _chunk_key(meta: dict[str, Any], index: tuple[int, ...]) -> str:
    enc = meta["chunk_key_encoding"]
    sep = (enc.get("configuration") or {}).get("separator")
    if enc["name"] == "v2":
        return (sep or ".").join(str(i) for i in index) if index else "0"
    return (sep or "/").join(["c", *(str(i) for i in index)])


def check_row_array(path: PathLike | Location, name: str) -> dict[str, Any]:
    """Check array ``name`` of a store for reading as rows; return its metadata.

    On top of :func:`check_array_metadata`: the data type is numeric, the chunks span every
    axis but the first (so the metadata cannot claim fewer columns than the chunks hold), and
    the chunk holding the last row exists (so the shape cannot claim more rows than written).

    Raises
    ------
    StoreFormatError
        Naming the store, the array and what is wrong.
    """
    loc = as_location(path)
    where = repr(str(loc))
    tree = _Tree(loc)
    try:
        raw = tree.read(f"{name}/zarr.json")
    except ValueError as err:
        raise _fail(where, name, str(err)) from err
    if raw is None:
        return {}  # absent: the caller reports it with the arrays the store does hold
    meta = read_metadata(raw, where, name)
    if meta["node_type"] != "array":
        return meta
    check_array_metadata(meta, where, name)
    shape, dtype = meta["shape"], meta["data_type"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    if dtype not in _NUMERIC and dtype != "string":  # text: subdomain keys
        raise StoreFormatError(f"{where}: array {name!r} holds {dtype}, not numbers; it is not "
                               "a data array.")
    if shape and list(chunks[1:]) != list(shape[1:]):
        raise _fail(where, name, f"shape {shape} but chunks of {chunks}: the chunks hold "
                    "another number of columns than the shape claims")
    if shape and shape[0] > 0:
        # the chunk grid is the grid of storage objects: chunks, or shards of a sharded array
        what = "shard" if any(c.get("name") == "sharding_indexed" for c in meta["codecs"]) \
            else "chunk"
        last = (shape[0] - 1) // chunks[0]
        key = _chunk_key(meta, (last, *([0] * (len(shape) - 1))))
        if not tree.exists(f"{name}/{key}"):
            raise StoreFormatError(
                f"{where}: array {name!r} claims {shape[0]} rows in {what}s of {chunks[0]}, but "
                f"{what} {key} (rows {last * chunks[0]}-{shape[0] - 1}) is missing; the store is "
                "incomplete or its zarr.json was edited. Re-ingest it, or restore it from a "
                "copy.")
    return meta


def check_chunks_written(arr: Any, where: str, name: str) -> None:
    """Refuse a format-2 array (one with ``dimension_names``, which the veob_dask writer gives
    every array it writes, with every chunk) that lacks chunks: zarr would read them as the
    fill value. Arrays of version-1 stores, which skipped all-zero chunks, are not checked.

    Raises
    ------
    StoreFormatError
        Naming the store, the array and how many chunks are missing.
    """
    if getattr(arr.metadata, "dimension_names", None) is None:
        return
    missing = arr.nchunks - arr.nchunks_initialized
    if missing > 0:
        raise StoreFormatError(
            f"{where}: array {name!r} lacks {missing} of its {arr.nchunks} chunks; the store is "
            "incomplete. Write it again, or restore it from a copy.")
