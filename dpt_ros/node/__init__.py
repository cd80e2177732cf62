"""The ROS 2 node ``dpt_node``: parameters (``params``), the rclpy glue (``node``) and its
managed variant (``lifecycle``), and the process around them (``main``: the console
entry points). The per-frame processing it runs is :mod:`dpt_ros.pipeline`, shared with
the command-line tools.

The names of :data:`__all__` load on first use: importing this package loads neither
rclpy nor torch. ``dpt_ros.node.aligner`` and ``dpt_ros.node.pipeline`` are former
modules whose names moved; they import with a ``DeprecationWarning``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpt_ros._exports import lazy

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from dpt_ros.node.lifecycle import DptLifecycleNode
    from dpt_ros.node.main import dpt_lifecycle_node, dpt_node, run_node
    from dpt_ros.node.node import DptNode
    from dpt_ros.node.params import NodeConfig

_EXPORTS = {
    "DptLifecycleNode": "dpt_ros.node.lifecycle",
    "DptNode": "dpt_ros.node.node",
    "NodeConfig": "dpt_ros.node.params",
    "dpt_lifecycle_node": "dpt_ros.node.main",
    "dpt_node": "dpt_ros.node.main",
    "run_node": "dpt_ros.node.main",
}

__all__ = [
    "DptLifecycleNode",
    "DptNode",
    "NodeConfig",
    "dpt_lifecycle_node",
    "dpt_node",
    "run_node",
]

__getattr__ = lazy(__name__, _EXPORTS)
