"""What a saved subdomain embedding may contain, for the loader (see :mod:`veob_dask.io.serialize`)."""

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
    is_json,
    is_str,
)
from ._passes import SOLVERS
from .embedding import SubdomainEmbedding

__all__ = ["SPECS"]


def _upgrade(state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Release 0.1 called the per-subdomain row counts ``n_samples_`` and kept no total."""
    if "n_samples_" in arrays and "domain_counts_" not in arrays:
        arrays["domain_counts_"] = arrays.pop("n_samples_")
        state.setdefault("n_samples_seen_", int(arrays["domain_counts_"].sum()))


def _check(est: Any) -> None:
    ranks = np.asarray(est.ranks_)
    if np.any(ranks > est.n_components_):
        raise ValueError("ranks_ must not exceed n_components_")
    if np.any(np.asarray(est.singular_values_) < 0):
        raise ValueError("singular_values_ must not be negative")
    table = est.metadata_
    if not isinstance(table, list) or len(table) != np.asarray(est.domains_).size or not all(
            isinstance(row, dict) for row in table):
        raise ValueError("metadata_ must hold one object per subdomain")
    domains = np.asarray(est.domains_)
    if domains.size > 1 and not np.all(domains[1:] > domains[:-1]):
        raise ValueError("domains_ must be sorted and distinct")
    if int(np.asarray(est.domain_counts_).sum()) != est.n_samples_seen_:
        raise ValueError("n_samples_seen_ must be the sum of domain_counts_")


SPECS = {
    "SubdomainEmbedding": EstimatorSpec(
        SubdomainEmbedding,
        params={"n_components": is_int(1) | is_float(0.0, 1.0, low_open=True),
                "solver": is_choice(*SOLVERS), "center": is_bool(),
                "metadata": NONE | is_json(),
                "memory_budget": NONE | is_int(1) | is_str(64),
                "n_oversamples": is_int(0), "n_iter": is_int(0), "max_components": is_int(1),
                "split_every": is_int(2), "random_state": NONE | is_int(0)},
        arrays={"domains_": ArraySpec(("domain",), "iuUb"),
                "components_": ArraySpec(("domain", "component", "feature")),
                "singular_values_": ArraySpec(("domain", "component")),
                "ranks_": ArraySpec(("domain",), "iu", low=0),
                "mean_": ArraySpec(("domain", "feature")),
                "domain_counts_": ArraySpec(("domain",), "iu", low=0),
                "energy_": ArraySpec(("domain",)),
                "explained_energy_ratio_": ArraySpec(("domain", "component"))},
        scalars={"n_components_": ScalarSpec(is_int(1), dim="component"),
                 "n_features_in_": ScalarSpec(is_int(1), dim="feature"),
                 "solver_": ScalarSpec(is_choice(*SOLVERS)),
                 "solver_reason_": ScalarSpec(is_str()),
                 "n_passes_": ScalarSpec(is_int(1)),
                 "n_samples_seen_": ScalarSpec(is_int(0)),
                 "memory_estimate_": ScalarSpec(is_int(0)),
                 "metadata_": ScalarSpec(is_json())},
        check=_check, upgrade=_upgrade),
}
