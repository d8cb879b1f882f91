"""`veob_dask.cli.main`: every failure is one line; exit 2 for bad inputs, 1 for bugs."""

from __future__ import annotations

import errno
import json
import lzma

import numpy as np
import pytest

from veob_dask.cli import describe_error, main
from veob_dask.cli import fit as fit_command


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Non-empty stderr lines, without the progress lines of stages that had started."""
    return [ln for ln in capsys.readouterr().err.splitlines()
            if ln.strip() and not ln.startswith("[")]


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on the device"),
    (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"),
    (errno.ENOTDIR, "not a folder"),
])
def test_os_errors_name_the_path(code: int, words: str) -> None:
    exit_code, message = describe_error(OSError(code, "raw text", "/data/out.zarr"))
    assert exit_code == 2 and words in message and "'/data/out.zarr'" in message


def test_other_escapes_are_one_line_exit_2() -> None:
    for err in (MemoryError(), RecursionError("deep"), EOFError(), UnicodeDecodeError(
            "utf-8", b"\xe9", 0, 1, "invalid"), ValueError("bad\nvalue")):
        code, message = describe_error(err)
        assert code == 2 and message, err


def _raise(exc: BaseException):
    def run(args: object) -> int:
        raise exc
    return run


@pytest.fixture
def store(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((6, 3)))
    assert main(["ingest", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.zarr")]) == 0
    return tmp_path / "x.zarr"


def test_unexpected_exception_is_a_bug_exit_1(store, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(fit_command, "run", _raise(KeyError("surprise")))
    monkeypatch.delenv("VEOB_DEBUG", raising=False)
    argv = ["fit", str(store), "-o", str(tmp_path / "m.zarr")]
    capsys.readouterr()
    assert main(argv) == 1
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "KeyError" in lines[0] and "this is a bug" in lines[0]
    assert "VEOB_DEBUG=1" in lines[0]
    monkeypatch.setenv("VEOB_DEBUG", "1")
    with pytest.raises(KeyError, match="surprise"):
        main(argv)


def test_disk_full_during_a_command_is_one_line(store, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(fit_command, "run", _raise(OSError(errno.ENOSPC, "No space left on "
                                                           "device", str(tmp_path / "m.zarr"))))
    capsys.readouterr()
    assert main(["fit", str(store), "-o", str(tmp_path / "m.zarr")]) == 2
    lines = _err_lines(capsys)
    assert lines == [f"veob fit: error: no space left on the device ('{tmp_path}/m.zarr')"]


def test_parse_errors_are_one_line(capsys) -> None:
    for argv in (["ingest", "a.npy", "b.zarr", "--chunk-rows", "-5"], ["fit"],
                 ["index", "build", "e", "i", "--max-samples", "abc"], ["nonsense"], []):
        assert main(argv) == 2, argv
        lines = _err_lines(capsys)
        assert len(lines) == 1 and lines[0].startswith("veob"), (argv, lines)
    assert main(["fit", "s", "-o", "m", "-k", "0"]) == 2
    assert _err_lines(capsys)[0].endswith(
        "n_components must be ≥ 1 or a fraction in (0, 1]; got 0 (see `veob fit --help`)")


def test_help_and_version_still_exit_0(capsys) -> None:
    for argv in (["--help"], ["--version"], ["fit", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0


def test_energy_fraction_still_parses(store, tmp_path, capsys) -> None:
    assert main(["fit", str(store), "-o", str(tmp_path / "m.zarr"), "-k", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["n_components"] >= 1


def test_truncated_xz_dictionary_names_the_file(tmp_path, capsys) -> None:
    """issue 11: a truncated .xz dictionary ended in an EOFError traceback."""
    path = tmp_path / "merged.json.xz"
    path.write_bytes(lzma.compress(json.dumps({"CAT": {"SYNONYMS": ["feline"]}}).encode())[:40])
    assert main(["words", "build", "dictionary", str(path), "--out", str(tmp_path / "o")]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "merged.json.xz" in lines[0] and "truncated" in lines[0]
