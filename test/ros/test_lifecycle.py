"""``dpt_lifecycle_node`` through real transitions requested on its lifecycle services
(``change_state``, ``get_state``), as Nav2's lifecycle_manager does."""

from __future__ import annotations

from helpers import FAST, Probe, rgb_msg, small_image, spin_until
from lifecycle_manager import Manager
from lifecycle_msgs.msg import Transition
from rclpy.parameter import Parameter

from dpt_ros.node.lifecycle import DptLifecycleNode


def test_transitions_load_start_stop_and_free(ros):
    executor, add = ros
    node = add(
        DptLifecycleNode(parameter_overrides=FAST + [Parameter("depth.random_weights", value=True)])
    )
    probe = Probe(add)
    manager = Manager(executor, probe.node)
    assert manager.state() == "unconfigured" and not hasattr(node, "pipeline")

    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.state() == "inactive" and node.pipeline.depth is not None
    assert probe.image_pub.get_subscription_count() == 0  # nothing subscribed yet

    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    assert manager.state() == "active"
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() > 0, 10)
    probe.image_pub.publish(rgb_msg(small_image(), 4))
    assert spin_until(executor, lambda: probe.got["depth/relative"], 60)

    model = node.pipeline.depth
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    assert manager.state() == "inactive"
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() == 0, 10)
    assert not node._worker.is_alive() and node.pipeline.depth is model  # models kept

    assert manager.transition(Transition.TRANSITION_ACTIVATE)  # again, without a reload
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() > 0, 10)
    probe.got["depth/relative"].clear()
    probe.image_pub.publish(rgb_msg(small_image(), 5))
    assert spin_until(executor, lambda: probe.got["depth/relative"], 60)
    assert node.pipeline.depth is model
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)

    assert manager.transition(Transition.TRANSITION_CLEANUP)
    assert manager.state() == "unconfigured" and not hasattr(node, "pipeline")
    assert manager.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert manager.state() == "finalized"


def test_bond_state_in_diagnostics_and_one_warning_without_the_bond_messages(ros):
    """Without ``bond`` (PyPI wheels) the node says so once and /diagnostics names the
    fix; with it the bond is in /diagnostics (its handshake: test_bond.py)."""
    import importlib.util

    executor, add = ros
    overrides = FAST + [Parameter("depth.random_weights", value=True)]
    node = add(DptLifecycleNode(parameter_overrides=overrides))
    probe = Probe(add)
    manager = Manager(executor, probe.node)
    assert manager.transition(Transition.TRANSITION_CONFIGURE)
    assert manager.transition(Transition.TRANSITION_ACTIVATE)
    bond = node.status()["bond"]
    if importlib.util.find_spec("bond") is None:
        assert bond.startswith("off: bond cannot be imported")
        assert "bond_timeout is 0.0" in bond
    else:
        assert bond.startswith(("waiting (id 'dpt_node'", "alive (id 'dpt_node'"))
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    off = add(
        DptLifecycleNode(
            "dpt_node_no_bond",
            parameter_overrides=overrides + [Parameter("bond_heartbeat_period", value=0.0)],
        )
    )
    assert off._bond is None and off.bond_text == "off: bond_heartbeat_period is 0"
