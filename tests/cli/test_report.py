"""`veob report` on the command line, and `veob fit` recording what it was fitted on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from veob_dask.cli import main
from veob_dask.io.ingest import ingest
from veob_dask.report import GENERATOR, build_report
from veob_dask.text.wordvectors import WordVectors

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture
def fitted(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    imgs = rng.random((90, 6, 6)).astype(np.float32)
    ingest(imgs, tmp_path / "d.zarr", labels=rng.integers(0, 3, 90), chunk_rows=40)
    assert main(["fit", str(tmp_path / "d.zarr"), "-o", str(tmp_path / "m.zarr"), "-k", "0.9",
                 "--spectral", "dct2"]) == 0
    return tmp_path


def test_cli_report_writes_one_self_contained_page(fitted: Path, capsys) -> None:
    out = fitted / "r.html"
    capsys.readouterr()
    assert main(["report", str(fitted / "m.zarr"), "--store", str(fitted / "d.zarr"),
                 "--labels", "y", "--out", str(out), "--map-rows", "60", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)  # --json: one JSON document, nothing else
    assert res["figures"] == ["spectrum", "error", "map", "images", "components"]
    page = out.read_text()
    assert page.count("<img ") == 5 and page.count("src='data:image/png;base64,") == 5
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert f"content='{GENERATOR}'" in page
    data = json.loads(page.split("id='veob-report-data'>")[1].split("</script>")[0])
    assert data["rule"].startswith("smallest k whose cumulative energy reaches 90.0%")
    assert data["n_components"] > 2
    assert data["store"]["rows read"] == 90 and data["store"]["chunks read"] == 3
    assert data["relative_error"][0] == 1.0 and data["relative_error"] == sorted(
        data["relative_error"], reverse=True)
    # a second run replaces its own report
    assert main(["report", str(fitted / "m.zarr"), "--out", str(out)]) == 0
    assert out.read_text().count("<img ") == 2  # spectrum and components: no store this time


def test_cli_report_errors(fitted: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    other = tmp_path / "notes.html"
    other.write_text("<p>mine</p>")
    assert main(["report", str(fitted / "m.zarr"), "--out", str(other)]) == 2
    assert "is not a veob report" in capsys.readouterr().err
    assert other.read_text() == "<p>mine</p>"
    assert main(["report", str(fitted / "m.zarr"), "--labels", "y", "--out",
                 str(tmp_path / "a.html")]) == 2
    assert "give the store too" in capsys.readouterr().err
    assert main(["report", str(fitted / "d.zarr"), "--out", str(tmp_path / "a.html")]) == 2
    assert "is a dataset store, not a model" in capsys.readouterr().err
    wv = tmp_path / "w.zarr"
    WordVectors(["a", "b"], np.eye(2), {"model": "dictionary"}).save(wv)
    assert main(["report", str(wv), "--store", str(fitted / "d.zarr"), "--out",
                 str(tmp_path / "a.html")]) == 2
    assert "carries its own embedding" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["report", str(fitted / "m.zarr"), "--out", str(tmp_path / "a.html")]) == 2
    assert "pip install 'veob_dask[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "a.html").exists()


def test_fit_records_the_input_store_and_the_report_shows_it(fitted: Path) -> None:
    from veob_dask.diagnostics import model_header

    recorded, saved = model_header(fitted / "m.zarr")
    assert recorded["store"] == str((fitted / "d.zarr").resolve())
    assert (recorded["shape"], recorded["chunks"]) == ([90, 6, 6], [40, 6, 6])
    assert recorded["source"] == "in-memory ndarray" and recorded["created"]
    assert recorded["writer"].startswith("veob_dask ") and recorded["format_version"] == 2
    rep = build_report(fitted / "m.zarr")
    assert rep.summary.provenance == recorded
    assert "Training input (recorded in the model)" in rep.to_html()
    assert saved["writer"] in rep.summary.facts["saved"]


def test_sigterm_while_writing_the_page_leaves_nothing(fitted: Path, monkeypatch, capsys) -> None:
    import os
    import signal

    import veob_dask.report

    real = os.replace

    def terminate_then_replace(src, dst):
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (main) thread, right here
        return real(src, dst)

    monkeypatch.setattr(veob_dask.report.os, "replace", terminate_then_replace)
    before = sorted(p.name for p in fitted.iterdir())
    assert main(["report", str(fitted / "m.zarr"), "-o", str(fitted / "r.html"),
                 "--projection", "none"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "terminated (SIGTERM); nothing partial was left")
    assert sorted(p.name for p in fitted.iterdir()) == before  # no page, no temporary file
