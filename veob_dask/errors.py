"""Exceptions and warnings raised by veob_dask.

Every error derives from :class:`VeobError` and also from the builtin exception a caller would
naturally catch (``ValueError``, ``FileNotFoundError``...), so ``except ValueError`` keeps working.
This module imports nothing heavy so the CLI can format errors cheaply.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError

__all__ = [
    "ChunkLayoutError",
    "DataError",
    "DimensionMismatchError",
    "InvalidParameterError",
    "MissingDependencyError",
    "NotFittedError",
    "NumericalWarning",
    "SchedulerError",
    "StoreError",
    "StoreExistsError",
    "StoreFormatError",
    "StoreNotFoundError",
    "Terminated",
    "UnknownChunksError",
    "VeobError",
    "VeobWarning",
]


class VeobError(Exception):
    """Root of every error raised by veob_dask."""


class InvalidParameterError(VeobError, ValueError):
    """A constructor or function option has a value outside its allowed set."""


class MissingDependencyError(VeobError, ImportError):
    """An optional package a feature needs is not installed (the message says which extra)."""


class DataError(VeobError, ValueError):
    """The data itself is unusable: NaN/inf, empty, wrong rank or dtype, ragged rows."""


class DimensionMismatchError(VeobError, ValueError):
    """The feature count differs from the one seen at fit time (or query dim != index dim)."""


class ChunkLayoutError(VeobError, ValueError):
    """The chunking of a dask array violates a function's contract."""


class UnknownChunksError(ChunkLayoutError):
    """A dask array has unknown (NaN) chunk sizes."""


class StoreError(VeobError):
    """Problems reading or writing a Zarr store."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The store, group or array does not exist."""


class StoreExistsError(StoreError, FileExistsError):
    """The output already exists and overwriting was not asked for."""


class StoreFormatError(StoreError, ValueError):
    """The store exists but its content is missing, corrupt or of an unknown format version."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM); raised in the main thread so cleanup runs.

    A ``KeyboardInterrupt``, not a :class:`VeobError`: nothing should catch it as a failure.
    See :func:`veob_dask.io.install_termination_handler`.
    """


class SchedulerError(VeobError, ConnectionError):
    """A Dask scheduler could not be reached or a worker died."""


class VeobWarning(UserWarning):
    """Root of every warning issued by veob_dask."""


class NumericalWarning(VeobWarning):
    """Loss of orthogonality, near-zero singular values, ill-conditioning."""
