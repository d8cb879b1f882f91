"""Spectral transforms (§4): cosine bases and blockwise transforms over dask arrays."""

from .basis import BASES, cosine_basis, paper_cos
from .image import SpectralTransform2D, inverse_spectral_transform_2d, spectral_transform_2d
from .sequence import SequenceTransform, sequence_transform

__all__ = ["BASES", "SequenceTransform", "SpectralTransform2D", "cosine_basis",
           "inverse_spectral_transform_2d", "paper_cos", "sequence_transform",
           "spectral_transform_2d"]
