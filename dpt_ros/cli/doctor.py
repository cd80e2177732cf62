"""``dpt-ros doctor nav2``: is a Nav2 configuration right for dpt_node?

    dpt-ros doctor nav2 NAV2_PARAMS.yaml [MORE.yaml ...] [--node-params NODE_PARAMS.yaml]
        [--live [SECONDS]]

Reads the Nav2 parameters (several files are merged in order, as Nav2 loads them) and
the node's ROS parameters file (what ``ros2 launch dpt_ros dpt.launch.py
params_file:=...`` loads; without one, the node's defaults), and prints one line per
mismatch with its fix (the rules: :mod:`dpt_ros.ros.nav2_checks`). The node's speed,
which Nav2's expected_update_rate and the collision monitor's source_timeout must
allow, comes from the running node with --live (its /diagnostics), else from the
documented figures for its model and device. Exit status: 0 clean, 1 with findings, 2
on unreadable input.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from dpt_ros.cli.yaml_file import load_yaml
from dpt_ros.node.params import PARAMS, validate
from dpt_ros.ros.nav2_checks import check_nav2, merge, node_parameters

EXIT_FINDINGS = 1


def add_parser(subparsers: Any, name: str, help: str) -> argparse.ArgumentParser:
    """Adds ``dpt-ros doctor`` (with its one check, ``nav2``) to ``subparsers``."""
    p = subparsers.add_parser(
        name,
        help=help,
        description="Checks of configurations that consume dpt_node's outputs.",
    )
    checks = p.add_subparsers(dest="check", metavar="CHECK", required=True)
    nav2 = checks.add_parser(
        "nav2",
        help="a Nav2 params file: semantic layer, voxel layer, lifecycle manager",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nav2.add_argument(
        "nav2_params", metavar="NAV2_PARAMS", nargs="+", type=Path, help="Nav2 params YAML"
    )
    nav2.add_argument(
        "--node-params",
        metavar="FILE",
        type=Path,
        help="dpt_node's ROS params YAML (default: the node's defaults)",
    )
    nav2.add_argument(
        "--namespace",
        metavar="NS",
        help="dpt_node's namespace (default: learnt from the semantic layer's topics)",
    )
    nav2.add_argument(
        "--node-name",
        default="dpt_node",
        metavar="NAME",
        help="dpt_node's name, its bond id (default: dpt_node)",
    )
    nav2.add_argument(
        "--live",
        nargs="?",
        const=5.0,
        type=_seconds,
        metavar="SECONDS",
        help="listen on /diagnostics (up to SECONDS, default 5) for the running node's "
        "measured latency and rate; without it (or without an answer) the documented "
        "speed figures for its model and device stand in",
    )
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 600 s, got {text}")
    return value


def _load_yaml(path: Path) -> dict[str, Any]:
    tree = load_yaml(path)  # bounded: size, nesting, aliases (the module's doc)
    if not isinstance(tree, dict):
        raise ValueError(f"{path} holds no YAML mapping (a params file is one)")
    return tree


def node_values(path: Path | None, node_name: str) -> tuple[dict[str, Any], list[str]]:
    """Every dpt_node parameter (the file's values over the defaults), and the problems
    of the file's values (unknown names, invalid values)."""
    values: dict[str, Any] = {p.name: p.default for p in PARAMS}
    if path is None:
        return values, []
    given = node_parameters(_load_yaml(path), node_name)
    problems = []
    for name in given:
        if name not in values and name != "use_sim_time" and not name.startswith("qos_"):
            close = difflib.get_close_matches(name, list(values), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name} is not a dpt_node parameter{hint}")
    values.update({k: v for k, v in given.items() if k in values})
    problems += validate(values)
    return values, problems


def run(args: argparse.Namespace) -> int:
    nav2 = merge([_load_yaml(path) for path in args.nav2_params])
    node, node_problems = node_values(args.node_params, args.node_name)
    bond = importlib.util.find_spec("bond") is not None
    timing, live_note = _live_timing(args)
    report = check_nav2(
        nav2,
        node,
        namespace=args.namespace,
        node_name=args.node_name,
        bond_available=bond,
        timing=timing,
    )
    if live_note:
        report.notes.insert(0, live_note)
    lines = [f"node parameters: {p}; fix: correct it in {args.node_params}" for p in node_problems]
    lines += [f.line() for f in report.findings]
    for line in lines:
        print(line)
    for line in report.unsure:
        print(f"cannot tell: {line}")
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    files = ", ".join(str(p) for p in args.nav2_params)
    if lines:
        print(f"dpt-ros doctor nav2: {len(lines)} finding(s) in {files}", file=sys.stderr)
        return EXIT_FINDINGS
    if report.unsure:
        print(
            f"dpt-ros doctor nav2: no finding in {files}, but {len(report.unsure)} thing(s) "
            "it cannot tell (above)",
            file=sys.stderr,
        )
        return 0
    print(f"dpt-ros doctor nav2: {files} matches dpt_node", file=sys.stderr)
    return 0


def _live_timing(args: argparse.Namespace) -> tuple[Any, str]:
    """(the running node's cloud timing, or None; a note on what --live found)."""
    if args.live is None:
        return None, ""
    # start-up: rclpy only with --live
    from dpt_ros.cli.doctor_live import listen
    from dpt_ros.ros.node_speed import measured

    found = listen(args.node_name, args.namespace, args.live)
    if isinstance(found, str):
        return None, f"--live: {found}; the documented speed figures stand in"
    name, samples = found
    try:
        timing = measured(samples, name)
    except ValueError as exc:
        return None, f"--live: {exc}; the documented speed figures stand in"
    return timing, f"--live: {timing.source}"
