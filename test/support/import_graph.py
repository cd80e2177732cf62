"""The dpt_ros import graph, read with ``ast`` (nothing is imported).

One reading serves the layer checks (``test/unit/test_layers.py``) and the structure
figures (``scripts/structure_report.py``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported package module (the deepest one that exists)
    line: int
    in_function: bool
    type_checking: bool  # under ``if TYPE_CHECKING:``


def package_modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module below ``package``."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
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


def package_imports(package: Path) -> list[Import]:
    """Every import of a module of ``package`` by a module of ``package``."""
    modules = package_modules(package)
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


def import_edges(imports: list[Import], type_only: bool) -> dict[str, set[str]]:
    """Module -> the modules it imports; imports inside functions count (they are
    dependencies all the same), type-only ones only with ``type_only``."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if (type_only or not imp.type_checking) and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def enter(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)

    for start in sorted(edges):
        if start in index:
            continue
        enter(start)
        work = [(start, iter(sorted(edges.get(start, ()))))]
        while work:
            v, successors = work[-1]
            w = next(successors, None)
            if w is not None:
                if w not in index:
                    enter(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    component.append(x)
                    if x == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out
