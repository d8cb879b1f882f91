"""The data matrix of a dataset store, dense or sparse, opened lazily."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da

from .location import Location, PathLike, as_location
from .sparse import read_sparse
from .store import open_group, read_array, store_header

__all__ = ["read_matrix"]


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
