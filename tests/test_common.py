"""scikit-learn's estimator checks over the public estimators, and the import weight."""

from __future__ import annotations

import subprocess
import sys

from sklearn.utils.estimator_checks import parametrize_with_checks

from veob_dask import SpectralTransform2D, SVDEmbedding
from veob_dask.subdomain import SubdomainEmbedding

_XFAIL = {
    # The transform is defined on images: sklearn's checks feed 2-D tables of arbitrary width,
    # which only work when the width is a perfect square.
}


@parametrize_with_checks(
    [SVDEmbedding(n_components=1), SVDEmbedding(n_components=1, solver="tsqr"),
     SVDEmbedding(n_components=0.9, center=True), SubdomainEmbedding(n_components=1),
     SubdomainEmbedding(n_components=0.9, center=True, solver="incremental")],
)
def test_sklearn_checks(estimator, check):
    check(estimator)


def test_import_is_light():
    code = ("import sys, veob_dask; "
            "print(sorted(m for m in ('distributed', 'dask_ml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_spectral_transformer_is_clonable_and_documents_params():
    from sklearn.base import clone

    t = SpectralTransform2D(basis="paper", keep=(2, 2))
    assert clone(t).get_params() == t.get_params()
