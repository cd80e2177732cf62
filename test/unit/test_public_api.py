"""The public Python API: every name in each package face's ``__all__`` imports and is
listed in docs/python_api.md; the names that moved in the last restructuring still
import from their old place, with a DeprecationWarning naming the new one (they raised
ImportError: ``from dpt_ros.alignment import fit_to_reference``)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "python_api.md"

#: Every package of dpt_ros (each has a face: its __init__ and its __all__).
PACKAGES = sorted(
    ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dpt_ros").rglob("__init__.py")
)

#: (old module, name, new module) of every name that moved in 3257d7b.
MOVED = [
    *[
        ("dpt_ros.alignment", name, "dpt_ros.alignment.fit")
        for name in (
            "DEFAULT_ITERATIONS",
            "DEFAULT_MAX_SAMPLES",
            "DEFAULT_MIN_SAMPLES",
            "DEFAULT_SEED",
            "DEFAULT_THRESHOLD",
            "Alignment",
            "PinholeIntrinsics",
            "fit_ground_plane",
            "fit_to_reference",
        )
    ],
    *[
        ("dpt_ros.node.aligner", name, "dpt_ros.alignment.online")
        for name in (
            "ALIGNMENT_METHODS",
            "GROUND_CLASSES",
            "GROUND_IDS",
            "AlignmentOptions",
            "OnlineAligner",
            "project_points",
            "resize_nearest",
            "transform_points",
        )
    ],
    ("dpt_ros.node.aligner", "cloud_points", "dpt_ros.ros.pointcloud"),
    *[
        ("dpt_ros.node.pipeline", name, "dpt_ros.pipeline.frames")
        for name in (
            "ON_DEMAND_TOPICS",
            "OUTPUT_TOPICS",
            "SKIPPABLE_TOPICS",
            "FrameOutput",
            "FramePipeline",
        )
    ],
    ("dpt_ros.node.pipeline", "PipelineOptions", "dpt_ros.pipeline.options"),
]


def _moved_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, DeprecationWarning) and " moved to dpt_ros." in str(w.message)
    ]


def test_every_package_has_a_face():
    assert "dpt_ros.alignment" in PACKAGES and "dpt_ros.ros" in PACKAGES
    for package in PACKAGES:
        module = importlib.import_module(package)
        assert isinstance(getattr(module, "__all__", None), list), package


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_imports_without_a_warning(package):
    names = importlib.import_module(package).__all__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in names:
            namespace: dict = {}
            exec(f"from {package} import {name}", namespace)  # as a user writes it
            assert namespace[name] is not None, (package, name)
    assert not _moved_warnings(caught), caught
    assert len(set(names)) == len(names), names


def test_the_page_lists_every_public_name():
    page = DOC.read_text(encoding="utf-8")
    missing = [
        f"{package}.{name}"
        for package in PACKAGES
        for name in importlib.import_module(package).__all__
        if f"`{name}`" not in page.split(f"## `{package}`", 1)[-1].split("\n## ", 1)[0]
    ]
    assert not missing, missing
    for package in PACKAGES:
        assert f"## `{package}`" in page, package


@pytest.mark.parametrize(("old", "name", "new"), MOVED, ids=[f"{o}.{n}" for o, n, _ in MOVED])
def test_an_old_name_imports_with_a_warning_naming_its_new_place(old, name, new):
    namespace: dict = {}
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{name}"):
        exec(f"from {old} import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(new), name)


def test_the_import_of_the_issue_works_again():
    namespace: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec("from dpt_ros.alignment import fit_ground_plane, fit_to_reference", namespace)
    assert sorted(_moved_warnings(caught)) == [
        "dpt_ros.alignment.fit_ground_plane moved to dpt_ros.alignment.fit.fit_ground_plane: "
        "import it from dpt_ros.alignment.fit (the old path goes in the release after next)",
        "dpt_ros.alignment.fit_to_reference moved to dpt_ros.alignment.fit.fit_to_reference: "
        "import it from dpt_ros.alignment.fit (the old path goes in the release after next)",
    ]
    assert caught[0].filename == "<string>"  # the warning points at the importing line


def test_an_unknown_name_is_still_an_import_error():
    with pytest.raises(ImportError, match="no_such_name"):
        exec("from dpt_ros.alignment import no_such_name", {})
    with pytest.raises(ImportError, match="no_such_name"):
        exec("from dpt_ros.node import no_such_name", {})
