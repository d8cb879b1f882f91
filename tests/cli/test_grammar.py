"""One command-line grammar: the README's command table, the shared flags, ``--json`` output."""

from __future__ import annotations

import argparse
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from veob_dask.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subs[0].choices) if subs else {}


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    kids = _children(parser)
    if not kids:
        return {path: parser}
    return {k: v for name, sub in kids.items() for k, v in _leaves(sub, (*path, name)).items()}


LEAVES = _leaves(build_parser())


def _visible_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions if a.help != argparse.SUPPRESS
            for s in a.option_strings}


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| command | what it does |"):]
    table = table[:table.index("\n\n")]
    return [c.replace("\\|", "|") for row in table.splitlines()[2:]
            for c in re.findall(r"`(veob [^`]+)`", row.split(" | ")[0])]


def _paths(command: str) -> tuple[list[tuple[str, ...]], str]:
    """The command paths a README entry names (``a|b`` alternatives expanded) and its rest."""
    words = command.split()[1:]
    paths: list[tuple[str, ...]] = [()]
    while words:
        options = words[0].split("|")
        grown = [(*p, o) for p in paths for o in options
                 if any(leaf[:len(p) + 1] == (*p, o) for leaf in LEAVES)]
        if not grown:
            break
        paths, words = grown, words[1:]
    return paths, " ".join(words)


def test_readme_table_lists_every_command_with_flags_they_have():
    listed = set()
    for command in _readme_commands():
        paths, rest = _paths(command)
        flags = re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest)
        for path in paths:
            assert path in LEAVES, f"README names `veob {' '.join(path)}`, which is no command"
            listed.add(path)
            missing = set(flags) - set(_visible_flags(LEAVES[path]))
            assert not missing, f"`veob {' '.join(path)} --help` lacks {sorted(missing)}"
    assert set(LEAVES) - listed == set(), "commands missing from the README table"


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_shared_flags_mean_one_thing(path):
    flags = _visible_flags(LEAVES[path])
    assert "--json" in flags
    if "-k" in flags or "--n-components" in flags:
        assert flags["-k"] is flags["--n-components"]
    if "-n" in flags or "--neighbors" in flags:
        assert flags["-n"] is flags["--neighbors"]
    if "-o" in flags or "--out" in flags:
        assert flags["-o"] is flags["--out"]
        assert "--overwrite" in flags  # whatever writes can be told to replace
    if "--overwrite" in flags and path != ("demo",):  # demo keeps its stores in --workdir
        assert "--out" in flags


@pytest.fixture
def data(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path


def _json_only(capsys) -> dict:
    out, err = capsys.readouterr()
    assert err  # the people's text went to stderr
    return json.loads(out)  # and stdout holds exactly one JSON document


def test_json_is_the_only_stdout_of_every_writing_command(data, capsys):
    t = str(data)
    assert main(["ingest", f"{t}/x.npy", "-o", f"{t}/x.zarr", "--chunk-rows", "100",
                 "--json"]) == 0
    assert _json_only(capsys)["shape"] == [300, 8]
    assert main(["fit", f"{t}/x.zarr", "-o", f"{t}/m.zarr", "-k", "3", "--json"]) == 0
    assert _json_only(capsys)["n_components"] == 3
    assert main(["transform", f"{t}/m.zarr", f"{t}/x.zarr", "-o", f"{t}/e.zarr", "--json"]) == 0
    assert _json_only(capsys)["shape"] == [300, 3]
    assert main(["index", "build", f"{t}/e.zarr", "-o", f"{t}/ix.zarr", "--min-samples", "20",
                 "--json"]) == 0
    assert _json_only(capsys)["n_rows"] == 300
    assert main(["query", f"{t}/e.zarr", "--rows", "0:4", "--index", f"{t}/ix.zarr",
                 "--n-probe", "all", "-n", "2", "-o", f"{t}/nn.zarr", "--json"]) == 0
    res = _json_only(capsys)
    assert [row[0] for row in res["indices"]] == [0, 1, 2, 3]
    assert res["out"] == f"{t}/nn.zarr" and res["sq_distances"][0][0] == 0


@pytest.mark.parametrize("command, out_at", [
    (["ingest", "{t}/x.npy", "{t}/old.zarr"], 2),
    (["fit", "{t}/x.zarr", "{t}/old.zarr", "-k", "2"], 2),
    (["transform", "{t}/m.zarr", "{t}/x.zarr", "{t}/old.zarr"], 3),
    (["index", "build", "{t}/x.zarr", "{t}/old.zarr"], 3),
])
def test_old_positional_output_still_works_with_one_warning(data, capsys, command, out_at):
    t = str(data)
    assert main(["ingest", f"{t}/x.npy", "-o", f"{t}/x.zarr"]) == 0
    assert main(["fit", f"{t}/x.zarr", "-o", f"{t}/m.zarr", "-k", "2"]) == 0
    capsys.readouterr()
    argv = [a.format(t=t) for a in command]
    assert main(argv) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "deprecated" in ln]
    assert len(warnings) == 1 and "-o/--out" in warnings[0]
    assert (data / "old.zarr").is_dir()
    assert argv[out_at].endswith("old.zarr")
    assert main([*argv, "-o", f"{t}/new.zarr", "--overwrite"]) == 2
    assert "named twice" in capsys.readouterr().err


def test_sentences_build_old_basis_flags_are_aliases():
    parser = LEAVES[("sentences", "build")]
    new = parser.parse_args(["src", "-o", "m", "--basis-length", "9", "--harmonics", "3"])
    old = parser.parse_args(["src", "-o", "m", "--n", "9", "--m", "3"])
    assert (new.basis_length, new.harmonics) == (old.basis_length, old.harmonics) == (9, 3)


def test_every_command_without_an_output_flag_writes_nothing():
    """Commands without -o/--out only read: none takes --overwrite (demo's --workdir aside)."""
    readers = [p for p, parser in LEAVES.items() if "--out" not in _visible_flags(parser)]
    assert sorted(readers) == sorted(itertools.chain(
        [("demo",)], [("words", "neighbors"), ("words", "evaluate"), ("sentences", "neighbors"),
                      ("subdomains", "list")]))
