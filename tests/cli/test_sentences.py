"""Tests for ``veob sentences`` (build and neighbors)."""

from __future__ import annotations

import json

import pytest

from veob_dask.cli import main
from veob_dask.text.corpus import Corpus

from ..text.test_sentences import random_reviews, write_reviews


def _code(argv: list[str]) -> int:
    """main's exit code, also when argparse refuses the line (it exits)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    source = write_reviews(tmp, random_reviews(30, seed=1))
    out = tmp / "model.zarr"
    assert main(["sentences", "build", str(source), "-o", str(out), "-k", "10",
                 "--scheduler", "sync"]) == 0
    return out


def test_build_writes_model_and_corpus(model_path, capsys):
    assert (model_path.parent / "model.zarr.corpus.zarr").exists()
    assert Corpus(model_path.parent / "model.zarr.corpus.zarr").n_reviews == 31


def test_neighbors_table(model_path, capsys):
    from veob_dask.text.sentences import SentenceModel

    query = SentenceModel.load(model_path).text([3])[0]
    assert main(["sentences", "neighbors", query, "--model", str(model_path), "-n", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{query} (input)"
    assert len(out) == 5 and out[1].startswith(f">> {query}  ")
    assert all(line.rstrip().endswith(".txt") for line in out[1:])


def test_neighbors_json_reports_unknown_words(model_path, capsys):
    assert main(["sentences", "neighbors", "good film qwertyuiop", "--model", str(model_path),
                 "--json", "-n", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["unknown_words"] == ["qwertyuiop"] and len(data["neighbors"]) == 3
    dists = [n["distance"] for n in data["neighbors"]]
    assert dists == sorted(dists)


def test_errors(model_path, tmp_path, capsys):
    assert main(["sentences", "neighbors", "fillm", "--model", str(model_path)]) == 2
    err = capsys.readouterr().err
    assert "fillm" in err and "film" in err  # suggestion by spelling
    assert main(["sentences", "neighbors", "film", "--model", str(tmp_path / "none")]) == 2
    assert _code(["sentences", "neighbors", "film", "--model", str(model_path), "-n", "0"]) == 2
    source = tmp_path / "bad.tsv"
    source.write_bytes(b"not a header\n")
    assert main(["sentences", "build", str(source), "-o", str(tmp_path / "m")]) == 2
    assert "header" in capsys.readouterr().err
    assert main(["sentences", "build", str(source), "-o", str(model_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["sentences"]) == 2


def test_words_build_context(tmp_path, capsys):
    source = write_reviews(tmp_path, random_reviews(20, seed=2))
    out = tmp_path / "ctx.zarr"
    assert main(["words", "build", "context", str(source), "-o", str(out),
                 "-k", "5", "--weighting", "ppmi", "--min-count", "2"]) == 0
    assert "built context model" in capsys.readouterr().out
    assert main(["words", "neighbors", "film", "--model", str(out), "-n", "3"]) == 0
    assert "film" in capsys.readouterr().out
