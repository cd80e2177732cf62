"""The suite's own layout: every test module sits in the folder of its tier, and no test
module imports another (shared set-up lives in ``test/support``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TEST = Path(__file__).resolve().parents[1]
TIERS = ("unit", "ros", "fidelity", "export", "bag", "ray", "slow", "adversarial")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_test_module_is_in_a_tier_folder():
    modules = sorted(TEST.rglob("test_*.py"))
    assert len(modules) > 50
    misplaced = [
        str(p.relative_to(TEST)) for p in modules if p.relative_to(TEST).parts[0] not in TIERS
    ]
    assert misplaced == []


@pytest.mark.parametrize("folder", ["support", *TIERS])
def test_no_test_module_imports_another(folder):
    offenders = {
        str(path.relative_to(TEST)): sorted(
            m for m in imported_modules(path) if m.startswith("test_")
        )
        for path in sorted((TEST / folder).glob("*.py"))
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_basenames_are_unique_across_folders():
    """Test folders are not packages: two modules of one name would collide on import."""
    seen: dict[str, str] = {}
    for path in sorted(TEST.rglob("*.py")):
        if path.name in ("conftest.py", "__init__.py") or "fixtures" in path.parts:
            continue
        other = seen.setdefault(path.name, str(path.relative_to(TEST)))
        assert other == str(path.relative_to(TEST)), (other, path)
