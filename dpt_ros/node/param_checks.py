"""Start-up checks of ``dpt_node``'s parameters: every problem at once, and overrides
that name no parameter.

rclpy refuses an out-of-range or wrongly typed override as it declares the parameter,
one at a time, so a node with three bad values would report only the first. Here each
parameter is declared on its own, the refusals are collected with the problems
:func:`dpt_ros.node.params.validate` finds, and one ``ValueError`` lists them all.

Overrides (``-p name:=value``, a params file) for names the node never declares are
kept by rclpy and silently ignored: a misspelt ``cloud.strid`` would change nothing.
:func:`unknown_overrides` finds them, with the closest declared names.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from rclpy.exceptions import ParameterException

from dpt_ros.node.params import (
    PARAMS,
    camera_problems,
    declare,
    normalise_namespace,
    validate,
    value_problems,
)

#: Override prefixes that rclpy itself reads (QoS overrides of publishers and
#: subscriptions), not parameters a node declares.
_RCLPY_PREFIXES = ("qos_overrides.",)


def declare_all(node: Any) -> dict[str, Any]:
    """Declares every parameter of :data:`PARAMS` on ``node``; returns {name: value}.

    Raises:
        ValueError: "invalid parameters: " and every problem, separated by "; ", if
            rclpy refused any override, any value or combination fails
            :func:`validate`, or two cameras resolve to the same topics.
    """
    values: dict[str, Any] = {}
    refused: dict[str, str] = {}
    overrides = getattr(node, "_parameter_overrides", {})  # rclpy has no public accessor
    for p in PARAMS:
        try:
            values[p.name] = declare(node, p)
        except ParameterException as exc:  # an override outside its range or type
            refused[p.name] = _refusal(p.name, overrides.get(p.name), exc)
            values[p.name] = p.default  # stands in, for the checks of the others
    problems = list(refused.values()) + validate(values, stand_ins=refused)
    if "cameras" not in refused and not camera_problems(values["cameras"]):
        problems += camera_topic_problems(node, values["cameras"])
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    return values


def _refusal(name: str, override: Any, exc: ParameterException) -> str:
    """rclpy's refusal of an override, in the words of :func:`validate` where they
    apply (``cloud.stride=65 is outside 0..64``), else rclpy's own, after the name."""
    value = getattr(override, "value", None)
    found = value_problems(name, value) if override is not None else []
    return "; ".join(found) if found else f"{name}: {' '.join(str(exc).split())}"


def camera_topic_problems(node: Any, cameras: Sequence[str]) -> list[str]:
    """Two entries of ``cameras`` that name the same topics once resolved by ``node``
    (e.g. ``front`` and ``/front`` for a node in ``/``, or a remap)."""
    problems = []
    seen: dict[str, str] = {}
    for name in cameras:
        topic = node.resolve_topic_name(f"{normalise_namespace(name)}/image")
        if topic in seen:
            problems.append(
                f"cameras {seen[topic]!r} and {name!r} are the same camera ({topic}); "
                "list each camera once"
            )
        else:
            seen[topic] = name
    return problems


def unknown_overrides(node: Any) -> list[str]:
    """Warnings, one per override given to ``node`` that names no declared parameter,
    each with the closest declared names (call after every parameter is declared)."""
    overrides = getattr(node, "_parameter_overrides", {})  # rclpy has no public accessor
    declared = [p.name for p in PARAMS]
    warnings = []
    for name in sorted(overrides):
        if node.has_parameter(name) or name.startswith(_RCLPY_PREFIXES):
            continue
        close = difflib.get_close_matches(name, declared, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        warnings.append(
            f"parameter {name!r} was given but {node.get_name()} has no such parameter: "
            f"it is ignored{hint}"
        )
    return warnings
