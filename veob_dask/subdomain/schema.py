"""What a saved subdomain embedding may contain, for the loader (see :mod:`veob_dask.io.serialize`)."""

from __future__ import annotations

from ..io.serialize import (
    NONE,
    ArraySpec,
    EstimatorSpec,
    ScalarSpec,
    is_bool,
    is_float,
    is_int,
    is_json,
)
from .embedding import SubdomainEmbedding

__all__ = ["SPECS"]

SPECS = {
    "SubdomainEmbedding": EstimatorSpec(
        SubdomainEmbedding,
        params={"n_components": is_int(1) | is_float(0.0, 1.0, low_open=True),
                "center": is_bool(), "metadata": NONE | is_json()},
        arrays={"domains_": ArraySpec(("domain",), "iuUb"),
                "components_": ArraySpec(("domain", "component", "feature")),
                "singular_values_": ArraySpec(("domain", "component")),
                "mean_": ArraySpec(("domain", "feature"), optional=True),
                "n_samples_": ArraySpec(("domain",), "iu", low=0),
                "explained_energy_ratio_": ArraySpec(("domain", "component"))},
        scalars={"n_components_": ScalarSpec(is_int(1), dim="component"),
                 "n_features_in_": ScalarSpec(is_int(1), dim="feature")}),
}
