"""``veob supervised fit`` and ``veob supervised predict`` round trips on Zarr stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from veob_dask import load
from veob_dask.cli import main
from veob_dask.io import read_array, write_array


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    t = tmp_path_factory.mktemp("sup")
    digits = load_digits()
    imgs, y = digits.images.astype(np.float32), digits.target.astype(np.int64)
    write_array(imgs[:1300], t / "train.zarr", extra={"y": y[:1300]}, chunk_rows=400)
    write_array(imgs[1300:], t / "test.zarr", extra={"y": y[1300:]}, chunk_rows=200)
    flat = imgs.reshape(len(imgs), -1)
    write_array(flat[:1300, :32], t / "top_train.zarr", extra={"bottom": flat[:1300, 32:]},
                chunk_rows=400)
    write_array(flat[1300:, :32], t / "top_test.zarr", extra={"bottom": flat[1300:, 32:]})
    return t


def _json_only(capsys):
    out, err = capsys.readouterr()
    assert err  # the people's text went to stderr
    return json.loads(out)  # and stdout holds exactly one JSON document


def test_classifier_round_trip(stores, capsys):
    t = stores
    assert main(["supervised", "fit", str(t / "train.zarr"), "-o", str(t / "m.zarr"), "--target",
                 "y", "-k", "20", "--spectral", "dct2", "--partitions", "2", "--scheduler",
                 "sync", "--json"]) == 0
    fit = _json_only(capsys)
    assert fit["kind"] == "CellMapClassifier" and fit["n_samples"] == 1300
    assert fit["n_partitions"] == 2 and fit["n_cells"] >= 2
    assert main(["supervised", "predict", str(t / "m.zarr"), str(t / "test.zarr"), "-o",
                 str(t / "p.zarr"), "--target", "y", "--scheduler", "sync", "--json"]) == 0
    res = _json_only(capsys)
    assert res["arrays"] == ["y_pred", "proba"] and res["n_samples"] == 497
    assert res["accuracy"] > 0.9
    pred = read_array(t / "p.zarr", "y_pred").compute()
    proba = read_array(t / "p.zarr", "proba").compute()
    imgs = read_array(t / "test.zarr").compute()
    model = load(t / "m.zarr")
    np.testing.assert_array_equal(pred, model.predict(imgs))
    np.testing.assert_allclose(proba, model.predict_proba(imgs))
    assert res["accuracy"] == np.mean(pred == read_array(t / "test.zarr", "y").compute())


def test_regressor_round_trip_with_svd_of_the_targets(stores, capsys):
    t = stores
    assert main(["supervised", "fit", str(t / "top_train.zarr"), "-o", str(t / "r.zarr"),
                 "--target", "bottom", "--raw", "--n-components-y", "8", "--partitions", "1",
                 "--scheduler", "sync", "--json"]) == 0
    assert _json_only(capsys)["kind"] == "CellMapRegressor"
    assert main(["supervised", "predict", str(t / "r.zarr"), str(t / "top_test.zarr"), "-o",
                 str(t / "rp.zarr"), "--target", "bottom", "--scheduler", "sync"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "r2" in out
    pred = read_array(t / "rp.zarr", "y_pred").compute()
    assert pred.shape == (497, 32)
    assert load(t / "r.zarr").y_components_.shape == (8, 32)


def test_errors_exit_2(stores, capsys):
    t = stores
    assert main(["supervised", "fit", str(t / "train.zarr"), "-o", str(t / "x.zarr"),
                 "--target", "labels"]) == 2
    assert "--target 'labels' is not an array" in capsys.readouterr().err
    assert main(["supervised", "fit", str(t / "train.zarr"), "-o", str(t / "x.zarr"),
                 "--n-components-y", "3"]) == 2
    assert "--n-components-y applies to regression only" in capsys.readouterr().err
    assert main(["fit", str(t / "top_train.zarr"), "-o", str(t / "svd.zarr"), "-k", "4"]) == 0
    capsys.readouterr()
    assert main(["supervised", "predict", str(t / "svd.zarr"), str(t / "top_test.zarr"), "-o",
                 str(t / "y.zarr")]) == 2
    assert "not a model of `veob supervised fit`" in capsys.readouterr().err
