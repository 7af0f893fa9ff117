"""The package's layout: lint-clean, imports in one direction, functions that fit on a screen.

These hold the targets of docs/code-layout.md: ``ruff check`` (the version the
``dev`` extra pins) is clean, no import circle exists among autoclr's modules
(imports inside functions included), and no function or method is longer than
``MAX_FUNCTION_LINES`` lines of code, counted from its first statement after
the docstring to its last line, on the code as ``ruff format`` leaves it.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autoclr"
MAX_FUNCTION_LINES = 70


def _ruff():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip('ruff is not installed: pip install -e ".[dev]"')
    return ruff


def _package_imports():
    """For each module of autoclr, the modules of autoclr it imports (lazily too)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {}
    for name in modules:
        deps = set()
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module
                            else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "autoclr."):
                deps.add(node.module.split(".")[1])
        graph[name] = (deps & modules) - {name, "__init__"}
    return graph


def _circles(graph):
    circles, state, path = [], {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                circles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return circles


def test_no_import_circle_among_the_modules():
    graph = _package_imports()
    assert graph["_validation"] <= {"_utils", "_data", "_device"}, (
        "the parameter table sits below what reads it")
    top = {"_estimator", "_cli", "_cli_common", "_demo", "__main__"}
    for module in set(graph) - top - {"__init__"}:  # the pipeline never calls back up
        assert not graph[module] & top, (module, graph[module] & top)
    assert _circles(graph) == []


def test_the_circle_check_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]


def test_ruff_check_is_clean():
    result = subprocess.run([_ruff(), "check", "autoclr", "tests", "benchmarks", "examples",
                             "docs"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _function_lengths(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                body = body[1:]
            if body:
                yield node.name, node.end_lineno - body[0].lineno + 1


def test_no_function_is_longer_than_a_screen(tmp_path):
    copy = tmp_path / "autoclr"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([_ruff(), "format", "--quiet", "--config", str(ROOT / "pyproject.toml"),
                    str(copy)], check=True)
    long = [f"{path.name}:{name} ({n} lines)" for path in sorted(copy.glob("*.py"))
            for name, n in _function_lengths(path) if n > MAX_FUNCTION_LINES]
    assert long == []
