"""Cells of an embedding: the §5 partition tree and k-means cells, both as Voronoi cells."""

from __future__ import annotations

from .cells import CellStats, cell_statistics, nearest_centroids, voronoi_labels
from .kmeans import KMeansCells, kmeans_centroids
from .tree import PartitionTree, descend

__all__ = [
    "CellStats",
    "KMeansCells",
    "PartitionTree",
    "cell_statistics",
    "descend",
    "kmeans_centroids",
    "nearest_centroids",
    "voronoi_labels",
]
