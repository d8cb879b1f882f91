"""What a saved partition (tree or k-means cells) may contain, for the loader.

Used by :mod:`veob_dask.persistence` and the index loader; see :mod:`veob_dask.io.serialize`.
Integer arrays are range-checked so that a tampered file cannot make a prediction or a search
index outside its arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io.serialize import (
    NONE,
    ArraySpec,
    EstimatorSpec,
    ScalarSpec,
    is_bool,
    is_choice,
    is_int,
    rename_fitted,
)
from .kmeans import KMeansCells
from .tree import PartitionTree

__all__ = ["SPECS"]

SEED = NONE | is_int(0)
MAX_SAMPLES = is_choice("auto") | NONE | is_int(1)

CELLS = {
    "cell_centroids_": ArraySpec(("cell", "feature")),
    "cell_counts_": ArraySpec(("cell",), "iu", low=0),
    "cell_means_": ArraySpec(("cell", "feature")),
    "cell_r2max_": ArraySpec(("cell",)),
    "neighbor_indptr_": ArraySpec(("cell_offset",), "iu", monotone=True, first=0,
                                  last="neighbor"),
    "neighbor_indices_": ArraySpec(("neighbor",), "iu", low=0, high="cell"),
    "labels_": ArraySpec(("sample",), "iu", optional=True, low=0, high="cell"),
}
CELL_SCALARS = {
    "n_cells_": ScalarSpec(is_int(1), dim="cell"),
    "n_samples_seen_": ScalarSpec(is_int(0)),
    "n_features_in_": ScalarSpec(is_int(1), dim="feature"),
    "n_passes_": ScalarSpec(is_int(1), optional=True),  # absent from files of release 0.1
}
KEEP_LABELS = is_bool() | is_choice("auto")
#: Release 0.1 called the row count ``n_samples_``.
UPGRADE = rename_fitted("n_samples_", "n_samples_seen_")


def check_cells(est: Any) -> None:
    """Cell arrays agree: one offset per cell + 1, radii not negative."""
    if np.asarray(est.neighbor_indptr_).shape[0] != int(est.n_cells_) + 1:
        raise ValueError(f"neighbor_indptr_ must hold n_cells_ + 1 = {int(est.n_cells_) + 1} "
                         f"offsets; got {np.asarray(est.neighbor_indptr_).shape[0]}")
    if np.any(np.asarray(est.cell_r2max_) < 0):
        raise ValueError("cell_r2max_ must not be negative")


def check_tree(est: Any) -> None:
    """Cells as above; tree children point forward (each node's children come after it)."""
    check_cells(est)
    children = np.asarray(est.children_)
    inner = children[:, 0] >= 0
    nodes = np.arange(children.shape[0])
    if np.any(inner != (children[:, 1] >= 0)):
        raise ValueError("children_ must give both children of an inner node, none of a leaf")
    if np.any(children[inner] <= nodes[inner, None]):
        raise ValueError("children_ must point to later nodes (a tree, not a cycle)")
    leaves = np.asarray(est.cell_node_)
    if np.any(inner[leaves]):
        raise ValueError("cell_node_ must name leaves of the tree")


SPECS = {
    "PartitionTree": EstimatorSpec(
        PartitionTree,
        params={"max_depth": NONE | is_int(0, 62), "min_samples": is_int(1),
                "max_samples": MAX_SAMPLES, "keep_labels": KEEP_LABELS, "random_state": SEED},
        arrays={**CELLS,
                "directions_": ArraySpec(("node", "feature")),
                "thresholds_": ArraySpec(("node",)),
                "children_": ArraySpec(("node", 2), "iu", low=-1, high="node"),
                "node_depth_": ArraySpec(("node",), "iu", low=0),
                "node_counts_": ArraySpec(("node",), "iu", low=0),
                "node_centroids_": ArraySpec(("node", "feature")),
                "cell_node_": ArraySpec(("cell",), "iu", low=0, high="node")},
        scalars=CELL_SCALARS, check=check_tree, upgrade=UPGRADE),
    "KMeansCells": EstimatorSpec(
        KMeansCells,
        params={"n_clusters": is_choice("auto") | is_int(1), "max_iter": is_int(1),
                "max_samples": MAX_SAMPLES, "keep_labels": KEEP_LABELS, "random_state": SEED},
        arrays=CELLS, scalars={**CELL_SCALARS, "n_iter_": ScalarSpec(is_int(0))},
        check=check_cells, upgrade=UPGRADE),
}
