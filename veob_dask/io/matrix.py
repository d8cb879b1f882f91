"""The data matrix of a dataset store, dense or sparse: opened lazily, and described."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da

from .location import Location, PathLike, as_location
from .sparse import read_sparse, sparse_info
from .store import open_artifact, open_group, read_array, store_header

__all__ = ["describe_store", "read_matrix"]

#: Provenance fields copied from a data array's attributes (see :func:`~.store.provenance`).
_PROVENANCE_KEYS = ("source", "format", "created")


def read_matrix(path: PathLike | Location, name: str = "X", *,
                storage_options: Mapping[str, Any] | None = None) -> da.Array:
    """Open the data matrix of a dataset store lazily, dense or sparse.

    A sparse store (kind ``"sparse"``, see :mod:`veob_dask.io.sparse`) opens as a dask array of
    ``scipy.sparse`` CSR blocks; any other store opens array ``name`` with
    :func:`~veob_dask.io.store.read_array`.
    """
    loc = as_location(path, storage_options)
    header = store_header(open_group(loc))
    if header is not None and header.get("kind") == "sparse":
        return read_sparse(loc)
    return read_array(loc, name)


def describe_store(path: PathLike | Location, name: str = "X", *,
                   storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance of a dataset store's data matrix, as JSON-ready fields.

    ``store`` (the location, absolute when local), ``kind`` (``"dataset"`` or ``"sparse"``),
    ``array``, ``shape``, ``chunks``, ``dtype`` (``nnz`` for sparse), then what was recorded
    when it was written: ``source``, ``format``, ``created`` and ``writer`` (the release that
    wrote it) with the store's ``format_version``. :func:`veob_dask.persistence.save` records
    this in a model as its training ``input``.

    Raises
    ------
    StoreNotFoundError
        Nothing is stored at ``path``.
    StoreFormatError
        Not a dataset or sparse store, or no array ``name`` in it.
    """
    loc = as_location(path, storage_options)
    group, header = open_artifact(loc, ("dataset", "sparse"))
    where = str(loc.path.resolve()) if loc.is_local else str(loc)
    out: dict[str, Any] = {"store": where, "kind": header.get("kind")}
    if header.get("kind") == "sparse":
        info = sparse_info(loc)
        recorded = dict(info.get("provenance") or {})
        out.update({"array": "csr", "shape": info["shape"],
                    "chunks": [info["chunk_rows"], info["shape"][1]], "dtype": info["dtype"],
                    "nnz": info["nnz"]})
    else:
        arr = group.get(name)
        if arr is None or not hasattr(arr, "chunks"):
            from ..errors import StoreFormatError

            raise StoreFormatError(f"{where!r} has no array {name!r}; it holds "
                                   f"{sorted(group.keys())}.")
        recorded = dict(arr.attrs)
        out.update({"array": name, "shape": [int(s) for s in arr.shape],
                    "chunks": [int(c) for c in arr.chunks], "dtype": str(arr.dtype)})
    out.update({k: recorded[k] for k in _PROVENANCE_KEYS if k in recorded})
    out.setdefault("created", header.get("created"))
    out["writer"] = header.get("writer") or recorded.get("writer")
    out["format_version"] = header.get("format_version")
    return {k: v for k, v in out.items() if v is not None}
