"""Supervised learning with VEOB (§8): joint embedding, cells, a linear map per cell."""

from .cellmap import CellMapClassifier, CellMapRegressor

__all__ = ["CellMapClassifier", "CellMapRegressor"]
