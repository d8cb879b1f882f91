"""What a saved CellMap estimator may contain, for the loader (see :mod:`veob_dask.io.serialize`).

Update these entries together with the estimators' fitted attributes.
"""

from __future__ import annotations

from ..io.serialize import NONE, ArraySpec, EstimatorSpec, ScalarSpec, is_choice, is_float, is_int
from .cellmap import CellMapClassifier, CellMapRegressor

__all__ = ["SPECS"]

_PARAMS = {"n_components": is_int(1) | is_float(0.0, 1.0, low_open=True),
           "n_components_joint": NONE | is_int(1), "alpha": NONE | is_float(0.0, low_open=True),
           "max_depth": NONE | is_int(0, 62), "min_samples": is_int(1),
           "ridge": is_float(0.0), "routing": is_choice("centroid", "reconstruction"),
           "random_state": NONE | is_int(0)}
_ARRAYS = {"joint_components_": ArraySpec(("joint", "joint_feature")),
           "cell_centroids_": ArraySpec(("cell", "joint")),
           "cell_counts_": ArraySpec(("cell",), "iu", low=0),
           "cell_maps_": ArraySpec(("cell", "map_in", "map_out"))}
_SCALARS = {"alpha_": ScalarSpec(is_float(0.0, low_open=True)),
            "n_features_in_": ScalarSpec(is_int(1)),
            "n_targets_": ScalarSpec(is_int(1))}
_NESTED = {"x_embedding_": ("SVDEmbedding",)}

SPECS = {
    "CellMapClassifier": EstimatorSpec(
        CellMapClassifier, params=_PARAMS,
        arrays={**_ARRAYS, "classes_": ArraySpec(("class",), "iufUb")},
        scalars=_SCALARS, nested=_NESTED),
    "CellMapRegressor": EstimatorSpec(
        CellMapRegressor, params=_PARAMS, arrays=_ARRAYS,
        scalars={**_SCALARS, "target_ndim_": ScalarSpec(is_int(1, 2))}, nested=_NESTED),
}
