"""The shared option builders: one spelling per flag, old spellings deprecated but working."""

from __future__ import annotations

import argparse

import pytest

from veob_dask.cli._options import (
    add_json,
    add_n_components,
    add_neighbors,
    add_output,
    add_overwrite,
    output_path,
    positive_int,
)
from veob_dask.errors import InvalidParameterError


def _parser(**output: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="veob thing")
    p.add_argument("source")
    add_n_components(p, 30)
    add_neighbors(p, 10, legacy_k=False)
    add_output(p, "output store", **output)
    add_overwrite(p)
    add_json(p)
    return p


def test_output_flag_and_legacy_positional(capsys):
    args = _parser(legacy_positional=True).parse_args(["src", "-o", "out.zarr"])
    assert output_path(args) == "out.zarr"
    assert capsys.readouterr().err == ""

    args = _parser(legacy_positional=True).parse_args(["src", "old.zarr", "-k", "0.5"])
    assert output_path(args) == "old.zarr" and args.out == "old.zarr"
    assert args.n_components == 0.5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deprecated" in err[0] and "-o/--out" in err[0]

    args = _parser(legacy_positional=True).parse_args(["src", "old.zarr", "-o", "new.zarr"])
    with pytest.raises(InvalidParameterError, match="named twice"):
        output_path(args)
    with pytest.raises(InvalidParameterError, match="needs an output"):
        output_path(_parser(legacy_positional=True).parse_args(["src"]))


def test_optional_output_and_strict_required():
    assert output_path(_parser(required=False).parse_args(["src"])) is None
    with pytest.raises(SystemExit):
        _parser().parse_args(["src"])  # required, and no positional alternative


def test_neighbors_and_legacy_k(capsys):
    p = argparse.ArgumentParser(prog="veob query")
    add_neighbors(p, 10, legacy_k=True)
    assert p.parse_args([]).neighbors == 10
    assert p.parse_args(["-n", "3"]).neighbors == 3
    assert capsys.readouterr().err == ""
    assert p.parse_args(["-k", "4"]).neighbors == 4
    assert "-n/--neighbors" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0", "-3", "2.5", "x"])
def test_positive_int_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        positive_int(text)
