#!/usr/bin/env python3
"""Prints the model-family conditionals of dpt_ros outside the family modules.

A family conditional is a test (``if``, ``elif``, a conditional expression, a
comprehension's ``if``, ``assert``, ``while``) or a comparison whose code names a
family or a family's trait: ``is_da3``, ``.family``, ``second_output``,
``needs_intrinsics``, the registry's family names (``DPT``, ``DEPTH_ANYTHING_V2``,
``DEPTH_ANYTHING_3``) or a family's name as a string. Read with ``ast``, each test once
(an ``elif`` is its own test). The family modules (``models/families/``) and what a
family is (``models/family.py``) are where such tests belong; they are not counted.

    python scripts/family_conditionals.py [PACKAGE_DIR]

Prints each module's count, the total, and ``needs_intrinsics`` apart: that one asks
whether a model type needs the camera's intrinsics (a capability any family may have),
the others which family it is.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

#: What names a family in a test's code.
FAMILY = re.compile(
    r"\bis_da3\b|\.family\b|\bsecond_output\b|\bneeds_intrinsics\b|"
    r"\bDEPTH_ANYTHING_V2\b|\bDEPTH_ANYTHING_3\b|\bSIZE_MULTIPLES\[DPT\]|"
    r"['\"](?:dpt|depth_anything_v2|depth_anything_3)['\"]"
)
#: Where family tests belong.
FAMILY_FILES = ("models/families/", "models/family.py")


def tests(tree: ast.AST) -> list[ast.expr]:
    """Every condition of the module, and every comparison outside a condition."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.IfExp, ast.While, ast.Assert)):
            found.append(node.test)
        elif isinstance(node, ast.comprehension):
            found.extend(node.ifs)
    inside = {id(n) for t in found for n in ast.walk(t)}
    found += [n for n in ast.walk(tree) if isinstance(n, ast.Compare) and id(n) not in inside]
    return found


def count(package: Path) -> tuple[Counter[str], Counter[str]]:
    """(family tests per module, ``needs_intrinsics`` tests per module)."""
    families: Counter[str] = Counter()
    capability: Counter[str] = Counter()
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        if name.startswith(FAMILY_FILES):
            continue
        text = path.read_text(encoding="utf-8")
        for test in tests(ast.parse(text)):
            code = ast.get_source_segment(text, test) or ""
            if not FAMILY.search(code):
                continue
            if "needs_intrinsics" in code and not FAMILY.search(
                code.replace("needs_intrinsics", "")
            ):
                capability[name] += 1
            else:
                families[name] += 1
    return families, capability


def main() -> int:
    package = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "dpt_ros"
    families, capability = count(package)
    for name, n in families.most_common():
        print(f"{n:4d}  {name}")
    print(f"{sum(families.values()):4d}  family tests outside the family modules")
    for name, n in capability.most_common():
        print(f"{n:4d}  {name} (needs_intrinsics)")
    print(f"{sum(capability.values()):4d}  needs_intrinsics tests outside the family modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
