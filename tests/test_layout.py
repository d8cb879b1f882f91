"""tests/ mirrors the package: every subpackage has a test folder, every top-level module a test
file (or an entry below naming the test file that exercises it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, TESTS = ROOT / "veob_dask", ROOT / "tests"

#: Top-level modules tested through another module's test file: that file, and a text in it
#: that shows the module is exercised there.
TESTED_ELSEWHERE = {
    "__main__": ("io/test_faults.py", '"-m", "veob_dask"'),  # run as a child process
    "_parallelism": ("test_distributed.py", "parallelism()"),  # threads of a real cluster
    "persistence": ("io/test_loading.py", "veob_dask.persistence"),  # loadable classes
    "runtime": ("test_distributed.py", "veob_dask.runtime"),  # connect, scheduler_context
}


def _tests_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("test_*.py"))


def test_every_subpackage_has_a_test_folder():
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    missing = [name for name in packages if not _tests_in(TESTS / name)]
    assert missing == [], "add tests/<package>/test_*.py for these"


def test_every_top_level_module_has_a_test_file():
    missing = []
    for module in sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"):
        if module in TESTED_ELSEWHERE:
            where, mark = TESTED_ELSEWHERE[module]
            assert mark in (TESTS / where).read_text(), f"{where} no longer tests {module}"
            continue
        if not (TESTS / f"test_{module.lstrip('_')}.py").exists():
            missing.append(module)
    assert missing == [], "add tests/test_<module>.py (or an entry in TESTED_ELSEWHERE)"


def test_no_test_file_is_left_beside_a_package_folder():
    """A test of a subpackage lives in its folder: tests/test_<package>*.py is misplaced."""
    packages = [p.parent.name for p in PACKAGE.glob("*/__init__.py")]
    stray = [p.name for p in _tests_in(TESTS) for name in packages
             if p.stem == f"test_{name}" or p.stem.startswith(f"test_{name}_")]
    assert stray == []
