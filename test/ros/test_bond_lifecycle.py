"""The bond of dpt_lifecycle_node to Nav2's lifecycle_manager: the protocol against a"""

from __future__ import annotations

import importlib.util
import time

import pytest
from bond_listener import ManagerBond
from lifecycle_manager import Manager

HAVE_BOND = importlib.util.find_spec("bond") is not None


@pytest.mark.skipif(not HAVE_BOND, reason="bond messages come with a ROS install")
def test_lifecycle_node_bond_over_rclpy(ros):
    """A listener subscribed to 'bond' sees the node's heartbeats from activate on, and
    its active = false on deactivate, as Nav2's manager would."""
    from bond.msg import Status
    from helpers import FAST, spin_until
    from lifecycle_msgs.msg import Transition
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from dpt_ros.node.lifecycle import DptLifecycleNode

    executor, add = ros
    node = add(
        DptLifecycleNode(parameter_overrides=FAST + [Parameter("depth.random_weights", value=True)])
    )
    listener = add(Node("lifecycle_manager_perception"))
    heard: list = []
    listener.create_subscription(Status, "bond", heard.append, 100)
    manager = Manager(executor, listener)
    bond = ManagerBond("dpt_node", heartbeat_timeout=4.0)
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    activated = time.monotonic()

    def fields(msg):
        return {k: getattr(msg, k) for k in ("id", "instance_id", "active")}

    def formed():
        while heard:
            bond.hear(time.monotonic(), fields(heard.pop(0)))
        return bond.formed_at is not None

    assert spin_until(executor, formed, 2.0)
    assert bond.formed_within(activated, 2.0)
    assert spin_until(executor, lambda: formed() and len(bond.heard) >= 5, 3.0)
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    assert spin_until(executor, lambda: formed() and bond.state == "Dead", 2.0)
    assert bond.death == "sister died"
    assert node is not None
