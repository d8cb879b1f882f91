"""`veob words`: build, neighbors (known, unknown, OOV spelling), evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from veob_dask.cli import main
from veob_dask.text.wordvectors import WordVectors


def _code(argv: list[str]) -> int:
    """main's exit code, also when argparse refuses the line (it exits)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


WORDS = ["frown", "frowns", "frowned", "frowning", "frog", "frogs", "twig", "twigs", "twilight",
         "bus", "buses", "happiness", "cat", "cats", "dog"]


@pytest.fixture
def spelling_model(tmp_path: Path) -> Path:
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n\n")
    out = tmp_path / "spell.zarr"
    assert main(["words", "build", "spelling", str(words), "-o", str(out), "-k", "6"]) == 0
    return out


def test_build_and_neighbors(spelling_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["words", "neighbors", "frowning", "--model", str(spelling_model),
                 "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "frowning (input)" and lines[1] == "frowning - 0"
    assert len(lines) == 4 and all(" - " in ln for ln in lines[1:])
    dists = [float(ln.rsplit(" - ", 1)[1]) for ln in lines[1:]]
    assert dists == sorted(dists)
    # a misspelled word: a spelling model embeds it from its letters
    assert main(["words", "neighbors", "twighlight", "--model", str(spelling_model), "-n", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["neighbors"]) == 2 and out["neighbors"][0]["word"].startswith("tw")


def test_unknown_word_in_non_spelling_model(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.zarr"
    WordVectors(["happiness", "felicity", "bus"], np.eye(3), {"model": "dictionary"}).save(path)
    assert main(["words", "neighbors", "hapiness", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not in the vocabulary" in err and "happiness" in err
    assert _code(["words", "neighbors", "bus", "--model", str(path), "-n", "0"]) == 2


def test_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.zarr"
    WordVectors(["a", "b", "c"], [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]).save(path)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a\tb\t9\r\na\tc\t1\r\nb\tc\t2\r\nA\tzz\t3\r\nbroken line\n")
    capsys.readouterr()
    assert main(["words", "evaluate", str(pairs), "--model", str(path), "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["n_pairs"] == 4 and res["n_covered"] == 3 and res["n_malformed"] == 1
    assert res["spearman"] == pytest.approx(1.0)
    assert main(["words", "evaluate", str(pairs), "--model", str(path)]) == 0
    assert "75.0%" in capsys.readouterr().out
    assert main(["words", "evaluate", str(tmp_path / "nope.txt"), "--model", str(path)]) == 2


def test_build_refuses_existing_and_bad_source(spelling_model: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["words", "build", "spelling", str(tmp_path / "words.txt"), "-o",
                 str(spelling_model)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["words", "build", "dictionary", str(tmp_path / "missing.json"), "-o",
                 str(tmp_path / "d.zarr")]) == 2
    assert main(["words", "neighbors", "x", "--model", str(tmp_path / "none.zarr")]) == 2
    assert main(["words"]) == 2


def test_build_dictionary_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = {"BUS": {"SYNONYMS": ["Omnibus", "Coach"], "ANTONYMS": []},
               "OMNIBUS": {"SYNONYMS": ["Bus"], "ANTONYMS": []},
               "COACH": {"SYNONYMS": ["Bus"], "ANTONYMS": []},
               "JOY": {"SYNONYMS": ["Delight"], "ANTONYMS": ["Sorrow"]},
               "SORROW": {"SYNONYMS": [], "ANTONYMS": ["Joy"]},
               "BROKEN": "not an entry"}
    src = tmp_path / "merged.json"
    src.write_text(json.dumps(entries))
    out = tmp_path / "d.zarr"
    assert main(["words", "build", "dictionary", str(src), "-o", str(out), "-k", "4",
                 "--recipe", "paper"]) == 0
    text = capsys.readouterr().out
    assert "5 words x 4 dims" in text and '"malformed": 1' in text
    assert main(["words", "build", "dictionary", str(src), "-o", str(out), "--overwrite",
                 "-k", "3", "--json", "--recipe", "paper"]) == 0
    out_json = json.loads(capsys.readouterr().out)
    assert out_json["n_words"] == 5 and out_json["n_components"] == 3
    assert main(["words", "build", "dictionary", str(src), "-o", str(out), "--overwrite",
                 "-k", "4", "--strict"]) == 2
    # default recipe: definitions; the 6 terms are the entry words and "delight"
    assert main(["words", "build", "dictionary", str(src), "-o", str(out), "--overwrite",
                 "-k", "3"]) == 0
    assert "6 words x 3 dims" in capsys.readouterr().out
    model = WordVectors.load(out)
    assert model.metadata["recipe"] == "definitions"


def test_build_dictionary_cli_combined_sources(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"BUS": {"SYNONYMS": ["Coach"], "ANTONYMS": [],
                                     "MEANINGS": [["Noun", "a road vehicle", [], []]]}}))
    wn = tmp_path / "wn"
    wn.mkdir()
    (wn / "data.noun").write_text(
        "00000001 06 n 02 bus 0 autobus 0 001 @ 00000002 n 0000 | a vehicle; \"by bus\"\n"
        "00000002 06 n 01 vehicle 0 000 | a thing that carries people\n")
    out = tmp_path / "both.zarr"
    assert main(["words", "build", "dictionary", str(a), str(wn), "-o", str(out),
                 "-k", "3"]) == 0
    capsys.readouterr()
    model = WordVectors.load(out)
    assert {"bus", "coach", "autobus", "vehicle", "road", "carries"} <= set(model.words)
    assert " + " in model.metadata["source"]


def test_non_ascii_word_lists_and_refused_letters(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    words = tmp_path / "words.txt"
    words.write_text("\n".join([*WORDS, "café", "naïve", "straße"]) + "\n", encoding="utf-8")
    out = tmp_path / "spell.zarr"
    assert main(["words", "build", "spelling", str(words), "-o", str(out), "-k", "6"]) == 0
    capsys.readouterr()
    assert main(["words", "neighbors", "naïve", "--model", str(out), "-n", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1] == "naïve - 0" and float(lines[2].rsplit(" - ", 1)[1]) > 0
    assert main(["words", "neighbors", "smørrebrød", "--model", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'ø' (U+00F8)" in err
