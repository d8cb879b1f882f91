"""What a saved SVD embedding may contain: parameter rules and fitted-state schemas for the loader.

Used by :mod:`veob_dask.persistence`; see :mod:`veob_dask.io.serialize` for the rules' meaning.
Update these entries together with the estimators' fitted attributes.
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
    is_float,
    is_int,
    is_str,
)
from .embedding import SVDEmbedding
from .incremental_embedding import IncrementalSVDEmbedding

__all__ = ["SPECS"]

N_COMPONENTS = is_int(1) | is_float(0.0, 1.0, low_open=True)
SEED = NONE | is_int(0)

_ARRAYS = {
    "components_": ArraySpec(("component", "feature")),
    "singular_values_": ArraySpec(("component",)),
    "spectrum_": ArraySpec(("spectrum",)),
    "explained_energy_": ArraySpec(("component",)),
    "explained_energy_ratio_": ArraySpec(("component",)),
    "mean_": ArraySpec(("feature",), optional=True),
}
_SCALARS = {
    "n_features_in_": ScalarSpec(is_int(1), dim="feature"),
    "n_components_": ScalarSpec(is_int(1), dim="component"),
    "n_samples_seen_": ScalarSpec(is_int(0)),
    "solver_": ScalarSpec(is_str(64)),
    "solver_reason_": ScalarSpec(is_str()),
    "n_passes_": ScalarSpec(is_int(0), optional=True),  # absent from models of release 0.1
}


def _check_spectrum(est: Any) -> None:
    for name in ("singular_values_", "spectrum_", "explained_energy_"):
        value = getattr(est, name, None)
        if value is not None and np.any(np.asarray(value) < 0):
            raise ValueError(f"{name} must not be negative")


SPECS = {
    "SVDEmbedding": EstimatorSpec(
        SVDEmbedding,
        params={"n_components": N_COMPONENTS, "solver": is_str(64), "center": is_bool(),
                "max_components": is_int(1), "n_oversamples": is_int(0), "n_iter": is_int(0),
                "random_state": SEED},
        arrays=_ARRAYS, scalars=_SCALARS, check=_check_spectrum),
    "IncrementalSVDEmbedding": EstimatorSpec(
        IncrementalSVDEmbedding,
        params={"n_components": N_COMPONENTS, "n_oversamples": NONE | is_int(0),
                "center": is_bool(), "decay": is_float(0.0, 1.0, low_open=True),
                "split_every": is_int(2), "chunk_solver": is_str(64),
                "max_components": is_int(1), "n_iter": is_int(0), "reorth_every": is_int(1),
                "chunks_per_leaf": NONE | is_int(1), "refine": is_bool(), "random_state": SEED},
        arrays={**_ARRAYS, "spectrum_": ArraySpec(("rank",)),
                "working_components_": ArraySpec(("rank", "feature"))},
        scalars={**_SCALARS, "working_rank_": ScalarSpec(is_int(1), dim="rank"),
                 "total_energy_": ScalarSpec(is_float(0.0)),
                 "n_batches_seen_": ScalarSpec(is_int(0)),
                 "sample_weight_seen_": ScalarSpec(is_float(0.0)),
                 "n_merges_": ScalarSpec(is_int(0))},
        check=_check_spectrum),
}
