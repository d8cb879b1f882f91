"""The reproductions of issue 11 items 1-2, through the command line and ``write_array``.

Written against interfaces that exist before and after the storage rewrite, so each one can be
run on the old code (where it fails) and on this one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

from veob_dask.cli import main
from veob_dask.io import write_array


def _digest(folder: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """``data.zarr`` (ingested from ``x.npy``) and ``model.zarr`` (fitted on it)."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(200, 6)).astype(np.float32))
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "data.zarr")]) == 0
    assert main(["fit", str(tmp_path / "data.zarr"), "-o", str(tmp_path / "model.zarr"), "-k", "3",
                 "--scheduler", "sync"]) == 0
    return tmp_path


def _model_header(path: Path, kind: str, params: dict) -> Path:
    zarr.open_group(path, mode="w").attrs["veob_dask"] = {
        "format_version": 1, "kind": kind, "params": params, "state": {}}
    return path


# -- item 1: opening a model could call any function of the package ---------------------------

def test_item1_model_naming_write_array_overwrites_nothing(work: Path) -> None:
    victim = work / "data.zarr"
    before = _digest(victim)
    model = _model_header(work / "evil.zarr", "veob_dask.io.store:write_array",
                          {"x": [[0.0, 0.0]], "path": str(victim), "overwrite": True})
    assert main(["transform", str(model), str(victim), "-o", str(work / "out.zarr"),
                 "--scheduler", "sync"]) == 2
    assert _digest(victim) == before


def test_item1_model_naming_cli_main_runs_nothing(work: Path) -> None:
    model = _model_header(work / "evil.zarr", "veob_dask.cli:main",
                          {"argv": ["ingest", str(work / "x.npy"), str(work / "ran.zarr")]})
    assert main(["transform", str(model), str(work / "data.zarr"), "-o", str(work / "out.zarr"),
                 "--scheduler", "sync"]) == 2
    assert not (work / "ran.zarr").exists()


def test_item1_model_naming_connect_connects_nowhere(work: Path, monkeypatch) -> None:
    attempts: list[object] = []

    def record(*args, **kwargs):
        attempts.append(args)
        raise OSError("refused by the test")

    monkeypatch.setattr(socket, "create_connection", record)
    monkeypatch.setattr(socket.socket, "connect", record)
    model = _model_header(work / "evil.zarr", "veob_dask.runtime:connect",
                          {"address": "tcp://127.0.0.1:9", "timeout": 1})
    assert main(["transform", str(model), str(work / "data.zarr"), "-o", str(work / "out.zarr"),
                 "--scheduler", "sync"]) == 2
    assert attempts == []


def test_item1_a_module_named_like_the_package_is_not_imported(work: Path,
                                                               monkeypatch) -> None:
    (work / "pkg").mkdir()
    (work / "pkg" / "veob_dask_evil.py").write_text(textwrap.dedent(f"""
        import pathlib
        class Thing:
            def __init__(self, **kw):
                pathlib.Path({str(work / 'ran.txt')!r}).write_text('ran')
    """))
    monkeypatch.syspath_prepend(str(work / "pkg"))
    model = _model_header(work / "evil.zarr", "veob_dask_evil:Thing", {})
    assert main(["transform", str(model), str(work / "data.zarr"), "-o", str(work / "out.zarr"),
                 "--scheduler", "sync"]) == 2
    assert not (work / "ran.txt").exists()


# -- item 2: existing folders and files were destroyed without --overwrite --------------------

def _folder_with_thesis(work: Path) -> Path:
    v = work / "v"
    v.mkdir()
    (v / "thesis.txt").write_text("x\n")
    return v


def test_item2_transform_into_a_folder_keeps_its_files(work: Path) -> None:
    v = _folder_with_thesis(work)
    for extra in ([], ["--overwrite"]):
        assert main(["transform", str(work / "model.zarr"), str(work / "data.zarr"), "-o", str(v),
                     "--scheduler", "sync", *extra]) == 2
        assert (v / "thesis.txt").read_text() == "x\n"


def test_item2_output_holding_the_inputs_deletes_nothing(work: Path) -> None:
    before = _digest(work)
    assert main(["transform", str(work / "model.zarr"), str(work / "data.zarr"), "-o", str(work),
                 "--scheduler", "sync", "--overwrite"]) == 2
    assert _digest(work) == before


def test_item2_a_regular_file_is_not_renamed(work: Path) -> None:
    f = work / "out.zarr"
    f.write_text("mine")
    for argv in (["transform", str(work / "model.zarr"), str(work / "data.zarr"), "-o", str(f),
                  "--scheduler", "sync"],
                 ["ingest", str(work / "x.npy"), "-o", str(f)],
                 ["fit", str(work / "data.zarr"), "-o", str(f), "-k", "2", "--scheduler", "sync"]):
        assert main([*argv, "--overwrite"]) == 2
        assert f.read_text() == "mine"
        assert sorted(os.listdir(work)) == ["data.zarr", "model.zarr", "out.zarr", "x.npy"]


@pytest.mark.parametrize("command", ["ingest", "fit", "words"])
def test_item2_other_commands_keep_folders(work: Path, command: str) -> None:
    v = _folder_with_thesis(work)
    words = work / "words.txt"
    words.write_text("\n".join(["cat", "cats", "dog", "dogs", "bird", "birds"] * 3) + "\n")
    argv = {"ingest": ["ingest", str(work / "x.npy"), "-o", str(v)],
            "fit": ["fit", str(work / "data.zarr"), "-o", str(v), "-k", "2", "--scheduler", "sync"],
            "words": ["words", "build", "spelling", str(words), "-o", str(v), "-k", "2"]}[command]
    assert main([*argv, "--overwrite"]) == 2
    assert (v / "thesis.txt").read_text() == "x\n"


def test_item2_write_array_keeps_folders_and_files(tmp_path: Path) -> None:
    v = _folder_with_thesis(tmp_path)
    f = tmp_path / "f.zarr"
    f.write_text("mine")
    for target in (v, f):
        with pytest.raises(FileExistsError):
            write_array(np.ones((3, 2)), target, overwrite=True)
    assert (v / "thesis.txt").read_text() == "x\n" and f.read_text() == "mine"


def test_item2_sentences_build_keeps_a_corpus_folder(tmp_path: Path) -> None:
    reviews = tmp_path / "r.tsv"
    rows = "".join(f"train\tpos\t{i}\t7\tThe film was good. The plot was bad and long.\n"
                   for i in range(20))
    reviews.write_text("split\tlabel\tid\trating\ttext\n" + rows)
    v = _folder_with_thesis(tmp_path)
    assert main(["sentences", "build", str(reviews), "-o", str(tmp_path / "m.zarr"),
                 "--corpus", str(v), "--n-components", "2", "--scheduler", "sync",
                 "--overwrite"]) == 2
    assert (v / "thesis.txt").read_text() == "x\n"
    assert not (tmp_path / "m.zarr").exists()
