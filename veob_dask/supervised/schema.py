"""What a saved CellMap estimator may contain, for the loader (see :mod:`veob_dask.io.serialize`).

Integer arrays are range-checked and the cell trees checked for shape (children after their
parent, consecutive, pointing back to it; roots where the partitions start), so that a tampered
file cannot make a prediction index outside its arrays or loop. Update these entries together
with the estimators' fitted attributes.
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
    is_float,
    is_int,
)
from .cellmap import CellMapClassifier, CellMapRegressor

__all__ = ["SPECS"]

N_COMPONENTS = NONE | is_int(1) | is_float(0.0, 1.0, low_open=True)

_PARAMS = {
    "n_components": N_COMPONENTS,
    "n_cells": is_choice("auto") | is_int(1),
    "max_depth": is_int(0, 62),
    "branching": is_int(2),
    "min_samples": is_int(1),
    "cells": is_choice("kmeans", "tree"),
    "routing": is_choice("nearest", "descend", "reconstruction"),
    "alpha": is_choice("balanced") | is_float(0.0),
    "n_components_joint": NONE | is_int(1),
    "shrinkage": is_choice("auto") | is_float(0.0, low_open=True),
    "local_model": is_choice("linear", "constant"),
    "n_partitions": is_int(1),
    "prune": is_bool(),
    "val_fraction": is_float(0.0, 1.0, low_open=True),
    "max_samples": is_choice("auto") | is_int(2),
    "random_state": NONE | is_int(0),
}
_NODE = ("node",)
_ARRAYS = {
    "x_components_": ArraySpec(("embedding", "feature"), optional=True),
    "joint_components_": ArraySpec(("joint", "joint_feature"), optional=True),
    "node_parent_": ArraySpec(_NODE, "i", low=-1, high="node"),
    "node_first_child_": ArraySpec(_NODE, "i", low=-1, high="node"),
    "node_n_children_": ArraySpec(_NODE, "iu", low=0, high="node"),
    "node_depth_": ArraySpec(_NODE, "iu", low=0, high=64),
    "node_centroids_": ArraySpec(("node", "embedding")),
    "node_counts_": ArraySpec(_NODE, "iu", low=0),
    "node_target_": ArraySpec(_NODE, "iu", low=0, high="node"),
    "node_maps_": ArraySpec(("node", "map_in", "map_out")),
    "partition_roots_": ArraySpec(("partition",), "iu", low=0, high="node", monotone=True,
                                  first=0),
    "shrinkage_scores_": ArraySpec(("grid", 2)),
}
_SCALARS = {
    "alpha_": ScalarSpec(is_float(0.0)),
    "shrinkage_": ScalarSpec(is_float(0.0, low_open=True)),
    "n_cells_": ScalarSpec(is_int(1)),
    "n_targets_": ScalarSpec(is_int(1), dim="map_out"),
    "n_features_in_": ScalarSpec(is_int(1)),
    "n_passes_": ScalarSpec(is_int(1), optional=True),
}


def _check_trees(est: Any) -> None:
    """Consistent cell trees and map sizes (raises ``ValueError``)."""
    parent, first = np.asarray(est.node_parent_), np.asarray(est.node_first_child_)
    count, roots = np.asarray(est.node_n_children_), np.asarray(est.partition_roots_)
    nodes = np.arange(parent.size)
    inner = first >= 0
    if np.any(inner != (count > 0)) or np.any(first[inner] <= nodes[inner]) or np.any(
            first[inner] + count[inner] > parent.size):
        raise ValueError("node_first_child_ / node_n_children_ must give later, in-range "
                         "children for inner nodes and none for leaves")
    kids = np.concatenate([np.arange(f, f + c) for f, c in zip(first[inner], count[inner],
                                                             strict=True)] or [[]])
    owners = np.repeat(nodes[inner], count[inner])
    if kids.size and np.any(parent[kids.astype(np.int64)] != owners):
        raise ValueError("node_parent_ must name the node whose children list holds each node")
    if not np.array_equal(np.flatnonzero(parent < 0), roots):
        raise ValueError("partition_roots_ must be exactly the nodes without a parent")
    k = np.asarray(est.node_centroids_).shape[1]
    if np.asarray(est.node_maps_).shape[1] != k + 1:
        raise ValueError(f"node_maps_ must map {k} + 1 inputs; got "
                         f"{np.asarray(est.node_maps_).shape[1]}")
    comps = est.x_components_
    width = k if comps is None else np.asarray(comps).shape[1]
    if int(est.n_features_in_) != width:
        raise ValueError(f"n_features_in_ must be {width}; got {est.n_features_in_}")


def _check_classifier(est: Any) -> None:
    _check_trees(est)
    if np.asarray(est.classes_).shape[0] != int(est.n_targets_):
        raise ValueError("classes_ must hold one class per map output")


def _check_regressor(est: Any) -> None:
    _check_trees(est)
    vy = est.y_components_
    if vy is not None and np.asarray(vy).shape[0] != int(est.n_targets_):
        raise ValueError("y_components_ must hold one row per map output")


SPECS = {
    "CellMapClassifier": EstimatorSpec(
        CellMapClassifier, params=_PARAMS,
        arrays={**_ARRAYS, "classes_": ArraySpec(("map_out",), "iufUb"),
                "y_components_": ArraySpec(("map_out", "target"), optional=True)},
        scalars=_SCALARS, check=_check_classifier),
    "CellMapRegressor": EstimatorSpec(
        CellMapRegressor, params={**_PARAMS, "n_components_y": N_COMPONENTS},
        arrays={**_ARRAYS, "y_components_": ArraySpec(("map_out", "target"), optional=True)},
        scalars={**_SCALARS, "target_ndim_": ScalarSpec(is_int(1, 2))},
        check=_check_regressor),
}
