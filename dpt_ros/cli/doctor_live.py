"""``dpt-ros doctor nav2 --live``: a running dpt_node's own measurements.

The node publishes on /diagnostics (every ``diagnostics_period``) a status named
``<its fully qualified name>: DPT inference`` whose values carry its median latency
(stamp to publish), processing time and processed rate
(:mod:`dpt_ros.node.diagnostics`). The doctor listens for it a few seconds, in a ROS
context of its own, and :func:`dpt_ros.ros.node_speed.measured` turns it into the times
Nav2 checks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

#: How dpt_node's /diagnostics status name ends (after its fully qualified name).
STATUS_SUFFIX = ": DPT inference"


#: A sample of a node's /diagnostics: (when the doctor received it, monotonic seconds;
#: the status's values).
Sample = tuple[float, dict[str, str]]
#: How long the samples should span for a rate from the node's frame counter.
SPAN_S = 2.0


def pick_status(
    heard: Iterable[tuple[str, float, Mapping[str, str]]], node_name: str, namespace: str | None
) -> tuple[str, list[Sample]] | str:
    """The node's fully qualified name and its samples, in order, among what was
    ``heard`` on /diagnostics (status name, time received, values); or why there is no
    node to take."""
    by_node: dict[str, list[Sample]] = {}
    for name, at, values in heard:
        if name.endswith(STATUS_SUFFIX):
            by_node.setdefault(name[: -len(STATUS_SUFFIX)], []).append((at, dict(values)))
    if namespace is not None:
        ns = namespace.strip("/")
        wanted = f"/{ns}/{node_name}" if ns else f"/{node_name}"
        if wanted in by_node:
            return wanted, by_node[wanted]
        others = ", ".join(sorted(by_node)) or "none"
        return f"no /diagnostics from {wanted} (dpt_node instances heard: {others})"
    named = sorted(n for n in by_node if n.rsplit("/", 1)[-1] == node_name)
    if len(named) == 1:
        return named[0], by_node[named[0]]
    if not named:
        others = ", ".join(sorted(by_node)) or "none"
        return f"no /diagnostics from a node named {node_name} (dpt_node instances heard: {others})"
    return f"several nodes named {node_name} answer ({', '.join(named)}): give --namespace"


def _with_frames(samples: list[Sample]) -> list[Sample]:
    out = []
    for at, values in samples:
        try:
            if math.isfinite(float(values.get("processing_ms_median", "nan"))):
                out.append((at, values))
        except ValueError:
            continue
    return out


def listen(node_name: str, namespace: str | None, seconds: float) -> tuple[str, list[Sample]] | str:
    """Listens on /diagnostics for up to ``seconds`` (less once the node's samples with
    processed frames span :data:`SPAN_S`) and returns the node's name and samples with
    processed frames (:func:`pick_status`), or why there are none (rclpy missing, no
    such node, no frame yet)."""
    try:
        # start-up: rclpy only with --live; the doctor otherwise reads files alone
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
    except ImportError as exc:
        return f"rclpy does not import here ({exc})"
    heard: list[tuple[str, float, dict[str, str]]] = []

    def received(msg: DiagnosticArray) -> None:
        at = time.monotonic()
        for status in msg.status:
            heard.append((status.name, at, {kv.key: kv.value for kv in status.values}))

    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    try:
        node = rclpy.create_node("dpt_ros_doctor", context=context)
        executor = SingleThreadedExecutor(context=context)
        try:
            node.create_subscription(DiagnosticArray, "/diagnostics", received, 10)
            executor.add_node(node)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
                found = pick_status(heard, node_name, namespace)
                if isinstance(found, str):
                    continue
                samples = _with_frames(found[1])
                if samples and samples[-1][0] - samples[0][0] >= SPAN_S:
                    return found[0], samples
        finally:
            executor.remove_node(node)
            node.destroy_node()
            executor.shutdown()
    finally:
        rclpy.try_shutdown(context=context)
    found = pick_status(heard, node_name, namespace)
    if isinstance(found, str):
        return f"{found} within {seconds:g} s"
    samples = _with_frames(found[1])
    if not samples:
        return f"{found[0]} has processed no frame yet (within {seconds:g} s)"
    return found[0], samples
