"""The package's import graph, read with ``ast``: no cycles, no upward imports between
layers, and a reason beside every import placed inside a function.

Layers, each importing only from those below it (the package docstring):
``cli`` > ``node`` > ``pipeline`` | ``alignment`` > ``ros`` | ``runtime`` > ``models`` |
``viz``. Layers joined by ``|`` are independent: neither imports the other. ``dpt_ros``
itself (``__version__``) is importable from everywhere. ``dpt_ros.models.predictor``
(``Predictor``: a model and its runtime together) and the ``dpt_ros.models`` face that
exports it sit in the ``runtime`` layer.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dpt_ros"

#: Layer of each subpackage (higher imports lower); equal ranks are independent.
LAYERS = {
    "models": 0,
    "viz": 0,
    "runtime": 1,
    "ros": 1,
    "pipeline": 2,
    "alignment": 2,
    "node": 3,
    "cli": 4,
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported dpt_ros module (the deepest one that exists)
    line: int
    in_function: bool
    type_checking: bool


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        assert node.level == 0, "the package uses absolute imports only"
        base = node.module or ""
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    out = []
    for name in names:
        while name and name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in modules:
            out.append(name)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def package_imports() -> list[Import]:
    """Every import of a dpt_ros module by a dpt_ros module."""
    modules = _modules()
    found: list[Import] = []

    def walk(node: ast.AST, source: str, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, modules):
                    found.append(Import(source, target, child.lineno, in_function, type_checking))
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            guarded = type_checking or (isinstance(child, ast.If) and _is_type_checking(child))
            walk(child, source, inner, guarded)

    for name, path in modules.items():
        walk(ast.parse(path.read_text(encoding="utf-8")), name, False, False)
    return found


#: Modules in another layer than their package's: the Predictor runs a model on its
#: runtime, so it (and the face that exports it) sits with the runtime, above the models.
MODULE_LAYERS = {"dpt_ros.models": "runtime", "dpt_ros.models.predictor": "runtime"}


def _layer(module: str) -> str | None:
    if module in MODULE_LAYERS:
        return MODULE_LAYERS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycles():
    edges: dict[str, set[str]] = {}
    for imp in package_imports():
        # Imports inside functions count: they are dependencies all the same.
        if not imp.type_checking and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == []


def test_no_layer_imports_a_layer_above_or_beside_it():
    wrong = []
    for imp in package_imports():
        src, dst = _layer(imp.source), _layer(imp.target)
        if src is None or dst is None or src == dst:
            continue
        if LAYERS[dst] >= LAYERS[src]:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target}")
    assert wrong == []


def test_every_import_inside_a_function_says_why():
    """A function-local import is for an optional dependency (or, in the node's
    process, for the stop handlers to come first), never to break a cycle; a comment on
    its line or just above it says which."""
    missing = []
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for child in ast.walk(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)) and not _has_reason(
                    lines, child.lineno, child.end_lineno or child.lineno
                ):
                    missing.append(f"{name}:{child.lineno}: {lines[child.lineno - 1].strip()}")
    assert sorted(set(missing)) == []


def _has_reason(lines: list[str], first: int, last: int) -> bool:
    """A ``#`` comment on the import's lines, or on the line above its run of imports."""
    if any("#" in line for line in lines[first - 1 : last]):
        return True
    i = first - 2
    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
        i -= 1
    return i >= 0 and lines[i].strip().startswith("#")


#: Run with a command line as arguments: the heavy modules and the subcommands (by name)
#: that ``dpt-ros`` imported for it.
_IMPORTED_BY_THE_COMMAND_LINE = (
    "import contextlib, io, sys\n"
    "from dpt_ros.cli.main import SUBCOMMANDS, main\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
    "    main(sys.argv[1:])\n"
    "heavy = ('torch', 'timm', 'cv2', 'numpy', 'rclpy', 'sensor_msgs', 'rosbags', 'onnx', 'ray')\n"
    "print(' '.join(m for m in heavy if m in sys.modules))\n"
    "print(' '.join(c.name for c in SUBCOMMANDS if c.module in sys.modules))\n"
)


def _imported_by(*argv: str) -> tuple[list[str], list[str]]:
    """(heavy modules, subcommands) that ``dpt-ros argv`` imported."""
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTED_BY_THE_COMMAND_LINE, *argv],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    heavy, commands = (out.stdout + "\n").split("\n")[:2]
    return heavy.split(), commands.split()


def test_the_command_line_imports_only_the_chosen_subcommand():
    """``dpt-ros --help`` (and a usage error) lists the subcommands without importing
    any of their modules: no torch, OpenCV, numpy or rclpy, so it stays fast. A
    subcommand's module is imported only when the command line names it."""
    assert _imported_by("--help") == ([], [])
    assert _imported_by("no-such-command") == ([], [])
    assert _imported_by("doctor", "--help")[1] == ["doctor"]


def test_the_checks_see_what_they_check():
    """The graph is not empty and the checks catch what they are meant to."""
    imports = package_imports()
    assert any(
        i.source == "dpt_ros.node.node" and i.target.startswith("dpt_ros.pipeline") for i in imports
    )
    assert any(i.in_function for i in imports)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("dpt_ros.models.network.dpt") == "models" and _layer("dpt_ros") is None
    assert _layer("dpt_ros.runtime.engine_cache") == "runtime"
    assert _layer("dpt_ros.models.predictor") == "runtime"
    assert _has_reason(["# torch: start-up time", "import torch"], 2, 2)
    assert not _has_reason(["x = 1", "import torch"], 2, 2)
