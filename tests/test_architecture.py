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
#: About 500 lines: a module a newcomer reads in one sitting (vendored code and the
#: renderer's kernels aside).
MAX_FILE_LINES = 530
FILE_LIMIT_EXEMPT = {"gpskit/synth/render.py"}
#: The pipeline's steps: each a package with ``options.py`` at the bottom.
STEP_PACKAGES = ("ingest", "dedup", "coverage", "split", "train", "synth")
#: A package whose ``__init__`` is only the guard of an optional extra (submodules use it).
GUARD_PACKAGES = {"gpskit.train"}
#: Modules that run the whole pipeline (and so may import every part of it).
ENTRY_POINTS = {"gpskit", "gpskit.__main__", "gpskit.demo", "gpskit.api"}


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
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
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
    assert {"gpskit.dataset", "gpskit.coverage.spots"} <= graph["gpskit.coverage"]  # read
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
    assert not listed - actual, (
        f"no such module (remove from ARCHITECTURE.md): {sorted(listed - actual)}"
    )


def test_modules_are_short_enough_to_read() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "_vendor" in path.parts or rel in FILE_LIMIT_EXEMPT:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            long.append(f"{rel} ({lines} lines)")
    assert not long, f"split these into modules with one job each: {', '.join(long)}"


@pytest.mark.parametrize("step", STEP_PACKAGES)
def test_every_step_is_a_package_with_options_at_the_bottom(step: str) -> None:
    """``gpskit/<step>/``: the runner in ``__init__``, the steps in modules, ``options.py``
    at the bottom: what options import never needs options, and no module imports the
    runner (arrows run down only)."""
    package = PACKAGE / step
    assert (package / "__init__.py").is_file(), f"gpskit/{step}.py should be a package"
    assert (package / "options.py").is_file(), f"gpskit/{step}/ has no options.py"
    graph = _graph()
    name, options = f"gpskit.{step}", f"gpskit.{step}.options"
    assert name not in graph[options], f"{options} imports its runner {name}"
    below = set(graph[options])
    frontier = list(below)
    while frontier:  # everything options depends on, however indirectly
        for dep in graph[frontier.pop()]:
            if dep not in below:
                below.add(dep)
                frontier.append(dep)
    assert options not in below, f"{options} depends on a module that depends on it"
    if name in GUARD_PACKAGES:
        return
    for module in sorted(m for m in graph if m.startswith(name + ".")):
        assert name not in _raw_imports(module), f"{module} imports {name} (its runner)"


def _raw_imports(module: str) -> set[str]:
    """The modules ``module`` imports, its own package included (which _graph drops)."""
    modules = _modules()
    return _imports(modules[module], module, set(modules))


def test_options_modules_import_no_optional_extra() -> None:
    """``--help`` and option checks work without torch: no options module imports it."""
    for step in STEP_PACKAGES:
        tree = ast.parse((PACKAGE / step / "options.py").read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] in {"torch", "torchvision"}}, step


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")), ids=str
)
def test_every_benchmark_script_loads(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark that no longer imports (a name moved in gpskit) reproduces nothing."""
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        f"bench_{script[:-3]}", ROOT / "benchmarks" / script
    )
    assert spec is not None and spec.loader is not None
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("gpskit"):
            raise
        pytest.skip(f"{exc.name} is not installed")
