"""§8 supervised maps: held-out accuracy, and cells beating one global linear map."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import load_digits

from veob_dask import load, save
from veob_dask.errors import DimensionMismatchError, InvalidParameterError
from veob_dask.supervised import CellMapClassifier, CellMapRegressor


def test_classifier_held_out_digits(tmp_path):
    X, y = load_digits(return_X_y=True)
    clf = CellMapClassifier(20, min_samples=100).fit(da.from_array(X[:1400], chunks=(350, 64)),
                                                     y[:1400])
    acc = clf.score(X[1400:], y[1400:])
    assert acc > 0.85
    save(clf, tmp_path / "c.zarr")
    assert load(tmp_path / "c.zarr").score(X[1400:], y[1400:]) == acc


def test_cells_beat_one_linear_map_on_a_kinked_function(rng):
    X = rng.uniform(-3, 3, size=(4000, 2))
    y = np.abs(X[:, 0]) + X[:, 1]
    Xt = rng.uniform(-3, 3, size=(1000, 2))
    yt = np.abs(Xt[:, 0]) + Xt[:, 1]
    one = CellMapRegressor(2, max_depth=0).fit(X, y).score(Xt, yt)
    cells = CellMapRegressor(2, max_depth=3, min_samples=50).fit(X, y)
    assert cells.cell_maps_.shape[0] > 1
    assert cells.score(Xt, yt) > 0.99 > one
    multi = CellMapRegressor(2, max_depth=3, min_samples=50).fit(X, np.c_[y, -y])
    np.testing.assert_allclose(multi.predict(Xt)[:, 0], -multi.predict(Xt)[:, 1], atol=1e-6)


def test_errors():
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(DimensionMismatchError, match="one label per row"):
        CellMapClassifier(2).fit(X, np.zeros(10))
    with pytest.raises(InvalidParameterError, match="at least 2 classes"):
        CellMapClassifier(2).fit(X, np.zeros(50))
    with pytest.raises(InvalidParameterError, match="routing must be"):
        CellMapRegressor(2, routing="magic").fit(X, X[:, 0])
    reg = CellMapRegressor(2, max_depth=0).fit(X, X[:, 0])
    with pytest.raises(DimensionMismatchError, match="is expecting 4 features"):
        reg.predict(X[:, :3])
