"""The package's import graph, read with ``ast``: no cycles, no upward imports between
layers, and a reason beside every import placed inside a function.

Layers, each importing only from those below it (the package docstring):
``cli`` > ``node`` > ``pipeline`` | ``alignment`` | ``reconstruct`` > ``ros`` | ``runtime`` >
``models`` | ``viz``. Layers joined by ``|`` are independent: neither imports the other. ``dpt_ros``
itself (``__version__``) is importable from everywhere. ``dpt_ros.models.predictor``
(``Predictor``: a model and its runtime together) and the ``dpt_ros.models`` face that
exports it sit in the ``runtime`` layer.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from import_graph import cycles, import_edges, package_imports, package_modules

PACKAGE = Path(__file__).resolve().parents[2] / "dpt_ros"

#: Layer of each subpackage (higher imports lower); equal ranks are independent.
LAYERS = {
    "models": 0,
    "viz": 0,
    "runtime": 1,
    "ros": 1,
    "pipeline": 2,
    "alignment": 2,
    "reconstruct": 2,
    "node": 3,
    "cli": 4,
}


#: Modules in another layer than their package's: the Predictor runs a model on its
#: runtime, so it (and the face that exports it) sits with the runtime, above the models.
MODULE_LAYERS = {"dpt_ros.models": "runtime", "dpt_ros.models.predictor": "runtime"}


def _layer(module: str) -> str | None:
    if module in MODULE_LAYERS:
        return MODULE_LAYERS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_the_import_graph_has_no_cycles():
    # Imports inside functions count: they are dependencies all the same.
    assert cycles(import_edges(package_imports(PACKAGE), type_only=False)) == []


def test_no_layer_imports_a_layer_above_or_beside_it():
    wrong = []
    for imp in package_imports(PACKAGE):
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
    for name, path in package_modules(PACKAGE).items():
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
    imports = package_imports(PACKAGE)
    assert any(
        i.source == "dpt_ros.node.node" and i.target.startswith("dpt_ros.pipeline") for i in imports
    )
    assert any(i.in_function for i in imports)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("dpt_ros.models.network.dpt") == "models" and _layer("dpt_ros") is None
    assert _layer("dpt_ros.runtime.engine_cache") == "runtime"
    assert _layer("dpt_ros.models.predictor") == "runtime"
    assert _has_reason(["# torch: start-up time", "import torch"], 2, 2)
    assert not _has_reason(["x = 1", "import torch"], 2, 2)
