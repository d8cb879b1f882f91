"""The veob command line, run in-process on temporary Zarr stores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veob_dask import load
from veob_dask.cli import main
from veob_dask.io import read_array


@pytest.fixture
def image_store(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.random((120, 6, 6)).astype(np.float32)
    np.save(tmp_path / "imgs.npy", imgs)
    np.save(tmp_path / "labels.npy", rng.integers(0, 3, size=120))
    assert main(["ingest", str(tmp_path / "imgs.npy"), "-o", str(tmp_path / "d.zarr"), "--labels",
                 str(tmp_path / "labels.npy"), "--chunk-rows", "50"]) == 0
    return tmp_path


def test_ingest_fit_transform(image_store, capsys):
    t = image_store
    assert main(["fit", str(t / "d.zarr"), "-o", str(t / "m.zarr"), "-k", "5", "--spectral",
                 "dct2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "solver: gram (dense with 36 <= 4096 features" in err
    summary = json.loads(out)  # --json: stdout holds one JSON document, people's text stderr
    assert summary["n_components"] == 5 and summary["n_samples"] == 120
    assert main(["transform", str(t / "m.zarr"), str(t / "d.zarr"), "-o", str(t / "e.zarr")]) == 0
    emb = read_array(t / "e.zarr").compute()
    model = load(t / "m.zarr")
    imgs = np.load(t / "imgs.npy")
    np.testing.assert_allclose(emb, model.transform(imgs.reshape(120, 36)), rtol=1e-5)
    np.testing.assert_array_equal(read_array(t / "e.zarr", "y").compute(), np.load(t / "labels.npy"))


def test_fit_without_spectral_flattens_and_energy_fraction(image_store, capsys):
    t = image_store
    assert main(["fit", str(t / "d.zarr"), "-o", str(t / "m.zarr"), "-k", "0.5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["energy_ratio"] >= 0.5 and summary["n_features"] == 36


def test_errors_exit_2_with_message(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "none.zarr"), "-o", str(tmp_path / "m.zarr")]) == 2
    assert "no Zarr store" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.ones((5, 3)))
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr")]) == 0
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "x.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "4"]) == 2
    assert "n_components must be in [1, n_features=3]" in capsys.readouterr().err


def test_demo_digits_json(capsys):
    assert main(["demo", "--scheduler", "threads", "--json", "-k", "20", "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("dataset", "n_train", "n_test", "n_components", "top1_accuracy", "top3_hit_rate",
                "knn3_hit_rate", "seconds", "stage_seconds"):
        assert key in res
    assert res["n_train"] + res["n_test"] == 1797
    assert res["top3_hit_rate"] >= res["knn3_hit_rate"] >= res["top1_accuracy"] > 0.9


def test_demo_missing_idx_directory(tmp_path, capsys):
    assert main(["demo", "--dataset", "mnist", "--path", str(tmp_path), "--scheduler",
                 "threads"]) == 2
    assert "lacks the IDX file(s) train-images-idx3-ubyte" in capsys.readouterr().err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("demo", "ingest", "fit", "transform"):
        assert cmd in out


@pytest.mark.parametrize("search", ["cells", "kmeans"])
def test_demo_with_cell_search_reports_recall(search, capsys):
    assert main(["demo", "--scheduler", "threads", "--json", "--search", search,
                 "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0.9 <= res["recall_at_10"] <= 1.0
    assert res["top3_hit_rate"] > 0.95


def test_ingest_without_compression(image_store):
    t = image_store
    assert main(["ingest", str(t / "imgs.npy"), "-o", str(t / "raw.zarr"), "--codec", "none",
                 "--chunk-rows", "50"]) == 0
    meta = json.loads((t / "raw.zarr" / "X" / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]] == ["bytes"]
    np.testing.assert_array_equal(read_array(t / "raw.zarr").compute(),
                                  read_array(t / "d.zarr").compute())


def test_fit_of_a_store_read_with_o_direct_runs_two_threads_a_core(image_store, capsys,
                                                                     monkeypatch):
    import os

    import dask

    from veob_dask.svd import SVDEmbedding

    seen, fit = [], SVDEmbedding.fit

    def recording_fit(self, x, y=None):
        seen.append(dask.config.get("num_workers", None))
        return fit(self, x, y)

    monkeypatch.setattr(SVDEmbedding, "fit", recording_fit)
    t = image_store
    args = ["fit", str(t / "d.zarr"), "-k", "4", "--json", "--scheduler", "threads"]
    with dask.config.set({"veob_dask.direct_io": True, "num_workers": None}):
        assert main([*args, "-o", str(t / "direct.zarr")]) == 0
    out, err = capsys.readouterr()
    assert "two threads a core" in err
    direct = json.loads(out)["singular_values"]
    with dask.config.set({"veob_dask.direct_io": False, "num_workers": None}):
        assert main([*args, "-o", str(t / "cached.zarr")]) == 0
    out, err = capsys.readouterr()
    assert "two threads a core" not in err
    assert seen == [2 * (os.cpu_count() or 1), None]
    np.testing.assert_allclose(direct, json.loads(out)["singular_values"], rtol=1e-10)
