"""Zarr stores: ingest, lazy reads, atomic writes, model serialisation."""

from .serialize import load, save
from .store import atomic_store, open_group, read_array, read_matrix, store_exists, write_array

__all__ = ["atomic_store", "load", "open_group", "read_array", "read_matrix", "save", "store_exists", "write_array"]
