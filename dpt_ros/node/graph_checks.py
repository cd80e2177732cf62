"""Start-up check of the ROS graph: another node with this node's name and namespace.

ROS 2 lets two nodes share a name: both start, both subscribe to the same camera and
both publish on the same topics, so every frame comes out twice (and parameter
services answer for either). Discovery takes a moment, so the graph is looked at a few
times in the first seconds after start, on the steady clock.
"""

from __future__ import annotations

from typing import Any

from rclpy.clock import Clock, ClockType

#: Seconds after start at which the graph is looked at (discovery is not instant).
CHECK_AFTER_S = (1.0, 3.0, 10.0)


class DuplicateNameCheck:
    """Warns once if another node in the graph has ``node``'s name and namespace.

    Args:
        node: the rclpy node to watch.

    Attributes:
        warning: the warning text once a duplicate was seen, else "".
    """

    def __init__(self, node: Any) -> None:
        self._node = node
        self.warning = ""
        self._checks = list(CHECK_AFTER_S)
        self._started = Clock(clock_type=ClockType.STEADY_TIME).now()
        self._timer = node.create_timer(
            0.5, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )

    def count(self) -> int:
        """Nodes in the graph with this node's name and namespace (itself included)."""
        me = (self._node.get_name(), self._node.get_namespace())
        return sum(1 for entry in self._node.get_node_names_and_namespaces() if entry == me)

    def _tick(self) -> None:
        elapsed = (Clock(clock_type=ClockType.STEADY_TIME).now() - self._started).nanoseconds
        if not self._checks or elapsed / 1e9 < self._checks[0]:
            return
        self._checks.pop(0)
        n = self.count()
        if n > 1:
            self.warning = (
                f"{n} nodes are named {self._node.get_fully_qualified_name()}: each "
                "subscribes to the same camera and publishes on the same topics, so every "
                "frame comes out twice; give each node its own name or namespace "
                "(__node:=..., __ns:=...)"
            )
            self._node.get_logger().warning(self.warning)
            self._checks.clear()
        if not self._checks:
            self._node.destroy_timer(self._timer)
