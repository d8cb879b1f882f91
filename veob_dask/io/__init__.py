"""The one storage layer: every store veob_dask creates, opens, replaces or versions.

- :mod:`~veob_dask.io.layout` — keys, kinds, the format version, dimension-name rules;
- :mod:`~veob_dask.io.location` — where a store lives (local path or fsspec URL + options);
- :mod:`~veob_dask.io.publish` — output safety: what may be replaced, locks, atomic publish,
  cleanup on failure and SIGTERM, free space, OS errors;
- :mod:`~veob_dask.io.store` / :mod:`~veob_dask.io.writer` — reading and writing artifacts;
- :mod:`~veob_dask.io.ragged`, :mod:`~veob_dask.io.sparse` — ragged sequences, CSR matrices;
- :mod:`~veob_dask.io.serialize` — estimators as data (the class table is
  :mod:`veob_dask.persistence`; use ``veob_dask.save``/``veob_dask.load``);
- :mod:`~veob_dask.io.ingest` — ``.npy``, IDX and sparse files into dataset stores.
"""

from .location import Location, as_location, storage_defaults
from .matrix import describe_store, read_matrix
from .publish import (
    check_output,
    install_termination_handler,
    publishing,
    termination_as_exception,
)
from .ragged import Ragged, read_ragged, write_ragged
from .store import open_artifact, open_group, read_array, reads_direct, store_exists
from .writer import create_artifact, write_array, write_artifact

__all__ = [
    "Location",
    "Ragged",
    "as_location",
    "check_output",
    "create_artifact",
    "describe_store",
    "install_termination_handler",
    "open_artifact",
    "open_group",
    "publishing",
    "read_array",
    "read_matrix",
    "read_ragged",
    "reads_direct",
    "storage_defaults",
    "store_exists",
    "termination_as_exception",
    "write_array",
    "write_artifact",
    "write_ragged",
]
