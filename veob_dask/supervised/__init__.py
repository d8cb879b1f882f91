"""Supervised learning with VEOB (§8): embeddings of x and y, cells, a linear map per cell."""

from ._maps import LAMBDA_GRID
from .cellmap import CellMapClassifier, CellMapRegressor

__all__ = ["LAMBDA_GRID", "CellMapClassifier", "CellMapRegressor"]
