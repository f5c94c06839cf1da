"""The structure stays as ARCHITECTURE.md says: the module map is true, imports flow one
way (no cycles), and library functions stay short."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpskit"
#: The renderer's vectorised kernels: long by nature (one pass over every pixel layer).
LONG_ALLOWED = {("gpskit/synth/render.py", "render")}
MAX_LINES = 60
#: Modules that run the whole pipeline (and so may import every part of it).
ENTRY_POINTS = {"gpskit.__main__", "gpskit.demo"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """gpskit modules a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in known and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(path, name, known) for name, path in modules.items()}
    # a submodule importing its own package is how Python loads it, not a dependency
    for name, deps in graph.items():
        deps -= {p for p in deps if name.startswith(p + ".")}
    return graph


def test_no_import_cycles() -> None:
    graph = _graph()
    assert {"gpskit.dataset", "gpskit.geo"} <= graph["gpskit.coverage"]  # the graph is read
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_library_does_not_import_the_cli_or_training() -> None:
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith(("gpskit.cli", "gpskit.train")) or name in ENTRY_POINTS:
            continue
        assert not {d for d in deps if d.startswith("gpskit.cli")}, name
        assert not {d for d in deps if d.startswith("gpskit.train")}, name


def test_functions_are_short() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # the docstring
            if not body:
                continue
            lines = (body[-1].end_lineno or 0) - body[0].lineno + 1
            if lines > MAX_LINES and (rel, node.name) not in LONG_ALLOWED:
                long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these into functions with one job each: " + ", ".join(long)


def test_architecture_md_lists_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`(gpskit/[\w/]+\.py)`", text))
    actual = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}
    assert not actual - listed, f"add to ARCHITECTURE.md: {sorted(actual - listed)}"
    assert not listed - actual, f"no such module (remove from ARCHITECTURE.md): {sorted(listed - actual)}"
