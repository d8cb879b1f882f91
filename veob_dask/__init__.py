"""veob_dask: out-of-core vector embeddings on orthonormal bases and spectral transforms.

Rows are samples. The main entry points are :class:`SVDEmbedding` (the VEOB basis, §3 of Lu's
paper), :class:`SpectralTransform2D` (the 2-D cosine transform, §4), the Zarr stores in
:mod:`veob_dask.io`, and the ``veob`` command line.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .spectral import SpectralTransform2D, cosine_basis, spectral_transform_2d
from .svd import SVDEmbedding

if TYPE_CHECKING:  # imported on first use by __getattr__ below (persistence pulls every package)
    from .persistence import load, save

try:
    __version__ = version("veob_dask")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["SVDEmbedding", "SpectralTransform2D", "__version__", "cosine_basis", "load", "save",
           "spectral_transform_2d"]


def __getattr__(name: str) -> Any:
    """``veob_dask.save`` / ``veob_dask.load`` (:mod:`veob_dask.persistence`), imported on use."""
    if name in ("save", "load"):
        from . import persistence

        return getattr(persistence, name)
    raise AttributeError(f"module 'veob_dask' has no attribute {name!r}")
