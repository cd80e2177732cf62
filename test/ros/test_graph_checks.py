"""Two dpt_node with the same name and namespace: warned about at start."""

from __future__ import annotations

from helpers import FAST, spin_until
from rclpy.parameter import Parameter

from dpt_ros.node.node import DptNode

PARAMS = FAST + [
    Parameter("depth.random_weights", value=True),
    Parameter("warmup_width", value=0),
    Parameter("warmup_height", value=0),
]


def test_a_second_node_of_the_same_name_is_warned_about(ros, capfd):
    executor, add = ros
    first = add(DptNode(namespace="robot", parameter_overrides=PARAMS))
    second = add(DptNode(namespace="robot", parameter_overrides=PARAMS))
    other = add(DptNode(namespace="other", parameter_overrides=PARAMS))
    assert spin_until(
        executor, lambda: first.duplicate_check.warning and second.duplicate_check.warning, 15
    )
    assert "2 nodes are named /robot/dpt_node" in first.duplicate_check.warning
    assert "/robot/dpt_node" in capfd.readouterr().err
    assert not other.duplicate_check.warning and other.duplicate_check.count() == 1
