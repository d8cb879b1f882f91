"""The estimator contract (README "Estimator contract"): scikit-learn's checks and the shared
dask checks of :class:`veob_dask.testing.DaskEstimatorChecks` over every estimator."""

from __future__ import annotations

import numpy as np
import pytest

from veob_dask.spectral import SpectralTransform2D
from veob_dask.subdomain import SubdomainEmbedding
from veob_dask.svd import IncrementalSVDEmbedding, SVDEmbedding
from veob_dask.testing import DaskEstimatorChecks, EstimatorCase


def _keys(X: np.ndarray) -> dict[str, np.ndarray]:
    return {"domains": np.arange(X.shape[0]) % 3}


CASES = [
    EstimatorCase("SVDEmbedding-gram", lambda: SVDEmbedding(n_components=4)),
    EstimatorCase("SVDEmbedding-randomized",
                  lambda: SVDEmbedding(n_components=3, solver="randomized", n_iter=2)),
    EstimatorCase("SVDEmbedding-tsqr", lambda: SVDEmbedding(n_components=0.9, solver="tsqr")),
    EstimatorCase("IncrementalSVDEmbedding", lambda: IncrementalSVDEmbedding(n_components=4)),
    EstimatorCase("SubdomainEmbedding", lambda: SubdomainEmbedding(n_components=3),
                  fit_params=_keys, method_params=_keys),
    EstimatorCase("SpectralTransform2D", lambda: SpectralTransform2D(image_shape=(3, 4))),
]


class TestContract(DaskEstimatorChecks):
    @pytest.fixture(params=CASES, ids=str)
    def case(self, request: pytest.FixtureRequest) -> EstimatorCase:
        return request.param
