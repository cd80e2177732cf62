"""Figures on the package's structure, read from the source with ``ast`` (the package
is not imported), for comparing before and after a restructuring (issue 29).

    python scripts/structure_report.py [--root dpt_ros] [--family-files GLOB ...]
                                       [--per-frame]

Prints, one table each:

- family conditionals outside the family files, per module: reads of ``is_da3``,
  ``needs_intrinsics`` and ``second_output``, comparisons with a ``family`` (a name or
  an attribute: ``spec.family == ...``, ``family in (...)``) and other reads of
  ``.family`` (a table keyed by the family). The family files are the modules matched by
  ``--family-files`` (default ``dpt_ros/models/families/*.py``, paths relative to the
  root's parent);
- function-local imports per package (``dpt_ros.<package>``): how many, how many carry
  a reason comment (on their line or just above their run of imports, the rule of
  ``test/test_layers.py``), and how many of the reasons are about start-up time
  (``dpt-ros --help`` kept fast) rather than an optional dependency;
- the 10 largest classes and the 10 largest functions (methods included), in lines,
  and the median function length;
- modules over 500 lines;
- import cycles of the module graph: imports inside functions count, imports under
  ``if TYPE_CHECKING:`` do not; then the cycles with those type-only imports too.

``--per-frame`` also runs one frame through ``dpt_ros.pipeline.FramePipeline`` and counts
the calls of ``Predictor.input_size``, ``FramePipeline.output_hw`` and
``Intrinsics.from_camera_info`` made for it, in all and by calling module (the
predictor's own preprocessing sizes its input too; this mode imports the package:
torch), in three set-ups: a random-weight ``dpt_hybrid`` alone with the outputs at the
image's size; with ``dpt_hybrid_ade20k`` beside it and the outputs at the network's
size; and the latter from an Image message as the node and the bag tool run a frame
(``intake.take``, then ``process_batch`` with the sizes take found). Network 96x64 on
the CPU, a 64x48 frame with its camera_info, metres and point cloud on.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "dpt_ros"
# The import graph is read by the same module as the layer checks of the tests.
sys.path.insert(0, str(ROOT.parent / "test" / "support"))
from import_graph import cycles, import_edges, package_imports  # noqa: E402

#: Default family files: where the family-specific code is meant to live.
FAMILY_FILES = ("dpt_ros/models/families/*.py",)

#: Names whose reads are a family test (the flags that stand for one family).
FAMILY_FLAGS = frozenset({"is_da3", "needs_intrinsics", "second_output"})

#: A reason comment about start-up time rather than an optional dependency.
START_UP_REASON = re.compile(r"start-up|startup|--help|stays fast|on use|seconds", re.I)


@dataclass(frozen=True)
class Module:
    name: str  # dpt_ros.models.predictor
    path: Path
    relpath: str  # dpt_ros/models/predictor.py
    lines: list[str]
    tree: ast.Module


def read_modules(root: Path) -> dict[str, Module]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root.parent).as_posix()
        name = ".".join(parts)
        out[name] = Module(name, path, rel, text.splitlines(), ast.parse(text, str(path)))
    return out


# --- family conditionals ---------------------------------------------------------------


def _is_family(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "family") or (
        isinstance(node, ast.Attribute) and node.attr == "family"
    )


def family_tests(tree: ast.Module) -> Counter[str]:
    """``flags``: reads of the family flags; ``compare``: comparisons with a family;
    ``lookup``: other reads of ``.family``."""
    counts: Counter[str] = Counter()
    compared: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            hits = [o for o in operands if _is_family(o)]
            if hits:
                counts["compare"] += 1
                compared.update(id(o) for o in hits)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            if node.attr in FAMILY_FLAGS:
                counts["flags"] += 1
            elif node.attr == "family" and id(node) not in compared:
                counts["lookup"] += 1
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in FAMILY_FLAGS:
                counts["flags"] += 1
    return counts


def family_table(modules: dict[str, Module], family_globs: list[str]) -> None:
    rows = []
    for m in modules.values():
        if any(fnmatch.fnmatch(m.relpath, g) for g in family_globs):
            continue
        c = family_tests(m.tree)
        total = sum(c.values())
        if total:
            rows.append((total, m.name, c["flags"], c["compare"], c["lookup"]))
    rows.sort(key=lambda r: (-r[0], r[1]))
    print(f"## Family conditionals outside the family files ({', '.join(family_globs)})")
    print(f"{'module':52} {'flags':>5} {'compare':>7} {'lookup':>6} {'total':>5}")
    for total, name, flags, compare, lookup in rows:
        print(f"{name:52} {flags:5d} {compare:7d} {lookup:6d} {total:5d}")
    grand = sum(r[0] for r in rows)
    print(f"{'all (' + str(len(rows)) + ' modules)':52} {'':5} {'':7} {'':6} {grand:5d}")
    print()


# --- function-local imports ------------------------------------------------------------


def _has_reason(lines: list[str], first: int, last: int) -> str | None:
    """The reason comment of the import on lines first..last (1-based), or None."""
    for line in lines[first - 1 : last]:
        if "#" in line:
            return line[line.index("#") :]
    i = first - 2
    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
        i -= 1
    if i >= 0 and lines[i].strip().startswith("#"):
        return lines[i].strip()
    return None


def local_imports(m: Module) -> list[tuple[int, str | None]]:
    """(line, reason comment or None) of each import statement inside a function."""
    found: dict[int, str | None] = {}
    for node in ast.walk(m.tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for child in ast.walk(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                last = child.end_lineno or child.lineno
                found[child.lineno] = _has_reason(m.lines, child.lineno, last)
    return sorted(found.items())


def _package(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else name


def imports_table(modules: dict[str, Module]) -> None:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for m in modules.values():
        for _, reason in local_imports(m):
            c = per[_package(m.name)]
            c["all"] += 1
            if reason is not None:
                c["reason"] += 1
                c["start-up" if START_UP_REASON.search(reason) else "other"] += 1
    print("## Function-local imports (statements)")
    print(f"{'package':28} {'all':>4} {'with reason':>11} {'start-up':>8} {'other':>5}")
    total: Counter[str] = Counter()
    for pkg in sorted(per):
        c = per[pkg]
        total.update(c)
        print(f"{pkg:28} {c['all']:4d} {c['reason']:11d} {c['start-up']:8d} {c['other']:5d}")
    print(
        f"{'all':28} {total['all']:4d} {total['reason']:11d} {total['start-up']:8d} "
        f"{total['other']:5d}"
    )
    print()


# --- sizes -----------------------------------------------------------------------------


def definitions(m: Module) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines, qualified name) of every class and every function (methods included)."""
    classes: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (child.end_lineno or child.lineno) - child.lineno + 1
                qual = f"{prefix}.{child.name}"
                (classes if isinstance(child, ast.ClassDef) else functions).append((size, qual))
                walk(child, qual)
            else:
                walk(child, prefix)

    walk(m.tree, m.name)
    return classes, functions


def sizes_table(modules: dict[str, Module]) -> None:
    classes: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for m in modules.values():
        c, f = definitions(m)
        classes += c
        functions += f
    for title, items in (("classes", classes), ("functions", functions)):
        print(f"## The 10 largest {title} (lines)")
        for size, name in sorted(items, key=lambda x: (-x[0], x[1]))[:10]:
            print(f"{size:5d}  {name}")
        print()
    sizes = [s for s, _ in functions]
    print(
        f"functions: {len(sizes)}, median {statistics.median(sizes):g} lines; "
        f"classes: {len(classes)}\n"
    )
    print("## Modules over 500 lines")
    big = sorted(((len(m.lines), m.name) for m in modules.values()), reverse=True)
    for n, name in big:
        if n > 500:
            print(f"{n:5d}  {name}")
    total = sum(len(m.lines) for m in modules.values())
    print(f"modules: {len(modules)}, lines: {total}\n")


# --- import cycles ---------------------------------------------------------------------


def cycles_table(root: Path) -> None:
    print("## Import cycles")
    for label, type_only in (("run time", False), ("with type-only imports", True)):
        found = cycles(import_edges(package_imports(root), type_only))
        print(f"{label}: {len(found)}")
        for component in found:
            print("   " + " <-> ".join(component))
    print()


# --- per frame (imports the package) ---------------------------------------------------


def per_frame_table() -> None:
    """Counts the calls made for one frame through FramePipeline, in three set-ups: a
    depth model with the outputs at the camera image's size, a depth and a segmentation
    model with the outputs at the network's size, and the latter from an Image message
    (intake.take first, as the node and the bag tool)."""
    # The package: only in this mode (torch, rclpy message classes).
    import warnings

    import numpy as np
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from dpt_ros.models import Predictor
    from dpt_ros.pipeline import FramePipeline, PipelineOptions
    from dpt_ros.pipeline.intake import take
    from dpt_ros.ros.camera import Intrinsics
    from dpt_ros.ros.image_codec import rgb_to_image_msg

    def predictor(model: str) -> Predictor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Predictor(
                model,
                device="cpu",
                backend="torch",
                random_weights=True,
                progress=False,
                network_size=(96, 64),
            )

    depth, segmentation = predictor("dpt_hybrid"), predictor("dpt_hybrid_ade20k")
    h, w = 48, 64
    rgb = np.kron(
        np.random.default_rng(0).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8),
        np.ones((8, 8, 1), np.uint8),
    )
    info = Intrinsics(fx=40.0, fy=40.0, cx=w / 2 - 0.5, cy=h / 2 - 0.5, width=w, height=h)
    header = Header(stamp=Time(sec=1, nanosec=0), frame_id="camera_optical")
    metres = {"relative_depth_scale": 2.0, "relative_depth_shift": 0.2}
    info_msg = info.to_camera_info()
    both = FramePipeline(depth, segmentation, PipelineOptions(output_size="network", **metres))

    def node_path() -> None:
        """As the node's worker and the bag tool: intake.take on the image message,
        then process_batch with what take found (where take hands sizes on)."""
        taken = take(rgb_to_image_msg(rgb, header), 0, (depth, segmentation))
        if isinstance(taken, tuple):  # (rgb, network inputs)
            both.process_batch([taken[0]], [header], [info_msg], inputs=[taken[1]])
        else:  # an RGB array alone
            both.process_batch([taken], [header], [info_msg])

    setups = {
        "depth, output_size=input": partial(
            FramePipeline(depth, None, PipelineOptions(**metres)).process, rgb, header, info_msg
        ),
        "depth+segmentation, output_size=network": partial(both.process, rgb, header, info_msg),
        "the same from an Image (take first)": node_path,
    }
    targets = [
        (Predictor, "input_size", "Predictor.input_size"),
        (FramePipeline, "output_hw", "FramePipeline.output_hw"),
        (Intrinsics, "from_camera_info", "Intrinsics.from_camera_info"),
    ]
    present = [t for t in targets if t[1] in t[0].__dict__]
    print(f"## Calls per frame (one {w}x{h} frame through FramePipeline)")
    print(f"{'':32} " + " | ".join(setups))
    counts: dict[str, Counter[str]] = {}
    for setup, run in setups.items():
        counts[setup] = Counter()
        for owner, attr, label in present:
            setattr(owner, attr, _counting(owner.__dict__[attr], label, counts[setup]))
        try:
            run()
        finally:
            for owner, attr, _ in present:
                setattr(owner, attr, owner.__dict__[attr].__wrapped_raw__)
    for owner, attr, label in targets:
        cells = [
            str(counts[s][label]) if (owner, attr, label) in present else "(absent)" for s in setups
        ]
        print(f"{label:32} " + " | ".join(f"{c:>{len(s)}}" for c, s in zip(cells, setups)))
        callers = sorted({k for c in counts.values() for k in c if k.startswith(label + " <- ")})
        for key in callers:
            cells = [str(counts[s][key]) for s in setups]
            name = "  from " + key.split(" <- ", 1)[1]
            print(f"{name:32} " + " | ".join(f"{c:>{len(s)}}" for c, s in zip(cells, setups)))
    print()


def _count(counts: Counter[str], label: str) -> None:
    """One call of ``label``, counted in all and by the calling module (two frames up:
    the caller of the wrapper)."""
    counts[label] += 1
    counts[f"{label} <- {sys._getframe(2).f_globals.get('__name__', '?')}"] += 1


def _counting(raw: object, label: str, counts: Counter[str]) -> object:
    """``raw`` (a function, classmethod or staticmethod) counting its calls in ``counts``,
    in all and by calling module."""
    if isinstance(raw, (classmethod, staticmethod)):
        inner = raw.__func__

        def wrapped_inner(*args, **kwargs):
            _count(counts, label)
            return inner(*args, **kwargs)

        out: object = type(raw)(wrapped_inner)
    else:

        def wrapped(*args, **kwargs):
            _count(counts, label)
            return raw(*args, **kwargs)  # type: ignore[operator]

        out = wrapped
    out.__wrapped_raw__ = raw  # type: ignore[attr-defined]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the package folder")
    parser.add_argument(
        "--family-files",
        nargs="+",
        default=list(FAMILY_FILES),
        metavar="GLOB",
        help="modules that may test the family (globs relative to the root's parent; "
        f"default {' '.join(FAMILY_FILES)})",
    )
    parser.add_argument(
        "--per-frame",
        action="store_true",
        help="also count the calls made for one frame (imports the package and torch)",
    )
    args = parser.parse_args(argv)
    modules = read_modules(args.root.resolve())
    family_table(modules, args.family_files)
    imports_table(modules)
    sizes_table(modules)
    cycles_table(args.root.resolve())
    if args.per_frame:
        sys.path.insert(0, str(args.root.resolve().parent))
        per_frame_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
