"""The import contract of pyproject.toml, checked from the source (CI also runs `lint-imports`).

Every import statement of the package counts, including those inside function bodies and under
``TYPE_CHECKING``: layers only import downwards, siblings of a layer never import each other,
no package has an import cycle among its modules, and no module imports a ``_private`` name or a
``_private`` module of another package.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "veob_dask"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> list[tuple[str, str, str | None, int]]:
    """(importer, imported module, imported name or None, line) for every import."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                out += [(importer, a.name, None, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = importer.split(".")
                    base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                out += [(importer, module, a.name, node.lineno) for a in node.names]
    return [i for i in out if i[1].split(".")[0] == "veob_dask"]


def _resolve(module: str, name: str | None) -> str:
    """``from pkg import sub`` imports the module ``pkg.sub`` when there is one."""
    if name is not None:
        candidate = f"{module}.{name}"
        rel = Path(*candidate.split("."))
        if (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists():
            return candidate
    return module


def _top(module: str) -> str | None:
    """The package's direct child a module belongs to (None for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [{m.strip() for m in layer.split("|")} for layer in contract["layers"]]


EDGES = [(a, _resolve(m, n), n, line) for a, m, n, line in _imports()]


def test_every_module_of_the_package_has_a_layer():
    placed = set().union(*_layers())
    children = {_top(_module_name(p)) for p in PACKAGE.rglob("*.py")} - {None}
    assert children - placed == set(), "place these in pyproject.toml's layers contract"
    assert placed - children == set(), "these layers name nothing that exists"


def test_imports_point_down_the_layers():
    rank = {m: i for i, layer in enumerate(_layers()) for m in layer}
    upward = [f"{a}:{line} imports {b}" for a, b, _, line in EDGES
              if _top(a) and _top(b) and _top(a) != _top(b)
              and rank.get(_top(a), -1) >= rank.get(_top(b), len(rank))]
    assert upward == []


def _cycles(package: str) -> list[list[str]]:
    """Cycles among the direct children of ``package`` (their descendants folded in)."""
    parts = package.split(".")
    depth = len(parts)
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _, _ in EDGES:
        pa, pb = a.split("."), b.split(".")
        inside = len(pa) > depth and len(pb) > depth and pa[:depth] == pb[:depth] == parts
        if inside and pa[depth] != pb[depth]:
            graph[pa[depth]].add(pb[depth])
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt):], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


@pytest.mark.parametrize("package", sorted(
    {_module_name(p) for p in PACKAGE.rglob("__init__.py")}))
def test_no_import_cycles(package):
    assert _cycles(package) == []


def test_no_private_name_or_module_of_another_package_is_imported():
    def owner(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 else module

    bad = []
    for a, b, name, line in EDGES:
        if owner(a) == owner(b):
            continue
        private_module = any(p.startswith("_") and not p.startswith("__")
                             for p in b.split(".")[2:])
        private_name = name is not None and name.startswith("_") and b == _resolve(b, name) \
            and not name.startswith("__")
        if private_module or private_name:
            bad.append(f"{a}:{line} imports {name or ''} from {b}")
    assert bad == []


def test_the_checks_see_function_body_and_relative_imports():
    """The checks are only as good as the import list: it must hold an import that sits inside
    a function body (``cli.__init__`` imports ``__version__`` there) and relative imports."""
    assert ("veob_dask.cli", "veob_dask", "__version__") in {e[:3] for e in EDGES}
    assert any(a == "veob_dask.cli.fit" and b == "veob_dask.svd" for a, b, _, _ in EDGES)


def test_only_the_command_line_parses_arguments_or_prints():
    """Library code reports through logging or callbacks; argparse, print and sys.stdout/stderr
    belong to ``cli/`` (and ``runtime``, whose clusters only entry points start)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module.startswith("veob_dask.cli") or module == "veob_dask.__main__":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                found.append(f"{module}:{node.lineno} print()")
            elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                    and getattr(node.value, "id", None) == "sys":
                found.append(f"{module}:{node.lineno} sys.{node.attr}")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "argparse" in names:
                    found.append(f"{module}:{node.lineno} argparse")
    assert found == []
