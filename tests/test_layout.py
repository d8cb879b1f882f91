"""tests/ mirrors the package: every subpackage has a test folder, every top-level module a test
file (or an entry below naming the test file that exercises it); no function of the package is
longer than 80 lines."""

from __future__ import annotations

import ast
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


#: Longest function or method allowed (house style), counted from its ``def`` line to its last
#: line, docstring and comments included.
MAX_FUNCTION_LINES = 80


def long_functions(source: str, name: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``name:line qualified.name (n lines)`` for every function of ``source`` over ``limit``."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = f"{prefix}{child.name}"
                n = child.end_lineno - child.lineno + 1
                if not isinstance(child, ast.ClassDef) and n > limit:
                    found.append(f"{name}:{child.lineno} {qual} ({n} lines)")
                visit(child, qual + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_long_functions_finds_nested_functions_and_methods():
    body = "".join(f"    x{i} = {i}\n" for i in range(79))
    src = (f"def short():\n{body}\n"  # 80 lines: allowed
           f"class A:\n    def long(self):\n    {body.replace(chr(10), chr(10) + '    ')}"
           "    y = 1\n")
    assert long_functions(src, "m.py") == ["m.py:83 A.long (81 lines)"]
    inner = f"def outer():\n    def inner():\n    {body.replace(chr(10), chr(10) + '    ')}" \
            "    z = 1\n    return inner\n"
    assert [f.split()[1] for f in long_functions(inner, "m.py")] == ["outer", "outer.inner"]


def test_no_function_over_80_lines():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += long_functions(path.read_text(encoding="utf-8"),
                                str(path.relative_to(ROOT)))
    assert found == [], f"split these functions to at most {MAX_FUNCTION_LINES} lines"
