"""The bond of dpt_lifecycle_node to Nav2's lifecycle_manager: the protocol against a
recorded sequence (no bond package needed), and over rclpy where ``bond`` imports."""

from __future__ import annotations

import importlib.util

import pytest
from bond_listener import ManagerBond

from dpt_ros.node.bond import (
    DEFAULT_HEARTBEAT_PERIOD_S,
    HEARTBEAT_TIMEOUT_S,
    MANAGER_BOND_TIMEOUT_S,
    BondHeartbeat,
    import_bond_status,
)

HAVE_BOND = importlib.util.find_spec("bond") is not None


def run_heartbeat(bond: BondHeartbeat, start: float, end: float) -> list[tuple[float, dict]]:
    """The Status messages a heartbeat timer sends from ``start`` (the first at once)
    until ``end``: (time, fields)."""
    sent = []
    t = start
    while t <= end + 1e-9:
        active = bond.tick()
        if active is not None:
            sent.append((t, bond.status(active)))
        t += bond.heartbeat_period
    return sent


def test_status_fields_follow_nav2s_lifecycle_nodes():
    bond = BondHeartbeat("dpt_node", DEFAULT_HEARTBEAT_PERIOD_S)
    status = bond.status(True)
    assert status["heartbeat_timeout"] == HEARTBEAT_TIMEOUT_S
    assert status == {
        "id": "dpt_node",
        "instance_id": bond.instance_id,
        "active": True,
        "heartbeat_timeout": 4.0,
        "heartbeat_period": 0.1,
    }
    assert len(bond.instance_id) == 36  # a UUID, one per bond
    assert BondHeartbeat("dpt_node", 0.1).instance_id != bond.instance_id
    with pytest.raises(ValueError, match="heartbeat_period must be > 0"):
        BondHeartbeat("dpt_node", 0.0)


@pytest.mark.parametrize("period", [0.1, 0.25])  # Nav2 Humble..Kilted, main
def test_manager_forms_the_bond_in_time_keeps_it_and_sees_it_broken(period):
    """A recorded sequence: activate at t = 10 s, heartbeats for 30 s, deactivate."""
    node = BondHeartbeat("dpt_node", period)
    manager = ManagerBond("dpt_node", heartbeat_timeout=MANAGER_BOND_TIMEOUT_S)
    sent = run_heartbeat(node, 10.0, 40.0)
    for t, status in sent:
        manager.hear(t, status)
        # The manager's heartbeats reach the node too; they change nothing there.
        assert node.on_status("dpt_node", manager.instance_id, True) is None
    assert manager.formed_within(10.0, MANAGER_BOND_TIMEOUT_S / 2)
    manager.advance(40.0)
    assert manager.state == "Alive"
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:])]
    assert max(gaps) < MANAGER_BOND_TIMEOUT_S
    assert node.sister_instance_id == manager.instance_id and node.state == node.ALIVE

    last = node.break_bond()  # deactivate
    assert last is False and node.tick() is None and node.break_bond() is None
    manager.hear(40.05, node.status(last))
    assert manager.state == "Dead" and manager.death == "sister died"


def test_a_manager_without_our_heartbeat_would_abort_the_bring_up():
    """The listener itself: no Status for bond_timeout / 2 means no formation (Nav2
    aborts the bring-up), and silence after formation is a heartbeat timeout."""
    manager = ManagerBond("dpt_node", heartbeat_timeout=4.0)
    manager.advance(12.0)
    assert not manager.formed_within(10.0, 2.0)
    other = BondHeartbeat("camera/dpt_node", 0.1)  # an id the manager does not know
    manager.hear(10.1, other.status(True))
    assert manager.formed_at is None
    node = BondHeartbeat("dpt_node", 0.1)
    manager.hear(10.1, node.status(True))
    manager.advance(14.2)
    assert manager.state == "Dead" and manager.death == "heartbeat timeout"


def test_the_managers_death_is_acknowledged_once_and_ends_the_heartbeat():
    node = BondHeartbeat("dpt_node", 0.1)
    assert node.on_status("other_node", "x", False) is None  # another bond
    assert node.on_status("dpt_node", node.instance_id, False) is None  # our own echo
    assert node.on_status("dpt_node", "manager", True) is None
    assert node.state == node.ALIVE
    assert node.on_status("dpt_node", "manager", False) is False  # bondcpp's ack
    assert node.state == node.DEAD and node.tick() is None
    assert node.on_status("dpt_node", "manager", False) is None  # once


def test_without_the_bond_package_the_reason_names_the_fix():
    got = import_bond_status()
    if HAVE_BOND:
        from bond.msg import Status

        assert got is Status
    else:
        assert got.startswith("bond cannot be imported")
        assert "bond_timeout is 0.0" in got and "ros-$ROS_DISTRO-bond" in got
