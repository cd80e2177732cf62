"""The bond that Nav2's ``lifecycle_manager`` expects from every node it activates.

After a node's ACTIVATE transition the manager starts a ``bond::Bond`` on the topic
``bond`` with the id it knows the node by (its entry in ``node_names``) and waits
``bond_timeout / 2`` (default 4.0 s / 2) for the node's side to appear; without it the
whole bring-up aborts. While the system is active it checks the bond and resets every
node when a bond breaks (a crash).

The node's side, as bondcpp and Nav2's own lifecycle nodes do it:

- ``bond/msg/Status`` on ``bond`` (reliable, volatile, keep last 5), ``id`` = the node's
  name (Nav2's nodes use ``get_name()``, so the manager runs in the node's namespace and
  lists the bare name), ``instance_id`` = a UUID per bond, ``active`` = true,
  ``heartbeat_timeout`` = 4.0 s, ``heartbeat_period`` = the publish period: a fixed
  0.1 s on Nav2 Humble, the ``bond_heartbeat_period`` parameter (0 = no bond) on Jazzy
  and Kilted (default 0.1 s) and on main (default 0.25 s);
- the heartbeat starts on activate and is broken on deactivate, shutdown and a stop
  signal (Nav2's nodes: in rclcpp's pre-shutdown callback): one ``active = false``,
  which moves the manager's side to Dead at once;
- a Status with our id, another instance id and ``active = false`` is the manager's
  side dying: the node answers ``active = false`` once and stops (bondcpp's ack);
- the node's side never times out on the manager (Nav2 sets
  ``/bond_disable_heartbeat_timeout`` on its nodes), so nothing here waits on it.

:class:`BondHeartbeat` is that protocol without rclpy (tested against a recorded
sequence and a listener written from the message definition); :class:`NodeBond` runs it
on an rclpy node where the ``bond`` messages import (every ROS install with Nav2).
"""

from __future__ import annotations

import uuid
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.qos import QoSProfile

#: The manager's topic, relative: it resolves in the node's namespace, as Nav2's.
BOND_TOPIC = "bond"
#: ``heartbeat_timeout`` that Nav2's lifecycle nodes put in their Status (all versions).
HEARTBEAT_TIMEOUT_S = 4.0
#: Nav2's nodes' heartbeat period on Humble, Iron, Jazzy and Kilted (main: 0.25 s).
DEFAULT_HEARTBEAT_PERIOD_S = 0.1
#: Nav2 lifecycle_manager's default ``bond_timeout`` (s); it waits half for the bond.
MANAGER_BOND_TIMEOUT_S = 4.0
#: Longest wait (s) for the last ``active = false`` to be acknowledged at a stop.
FLUSH_TIMEOUT_S = 0.5


class BondHeartbeat:
    """The node's side of a bond, as plain state: what to publish when.

    Args:
        bond_id: the id the manager knows the node by (the node's name).
        heartbeat_period: seconds between heartbeats (> 0).
        instance_id: this bond's unique id; default a new UUID.
    """

    WAITING, ALIVE, DEAD = "waiting", "alive", "dead"

    def __init__(self, bond_id: str, heartbeat_period: float, instance_id: str = "") -> None:
        if heartbeat_period <= 0:
            raise ValueError(f"heartbeat_period must be > 0 s, got {heartbeat_period}")
        self.bond_id = bond_id
        self.heartbeat_period = heartbeat_period
        self.instance_id = instance_id or str(uuid.uuid4())
        self.state = self.WAITING
        #: The manager's instance id, once it has been heard.
        self.sister_instance_id = ""

    def status(self, active: bool) -> dict[str, Any]:
        """The fields of a ``bond/msg/Status`` (without the header)."""
        return {
            "id": self.bond_id,
            "instance_id": self.instance_id,
            "active": active,
            "heartbeat_timeout": HEARTBEAT_TIMEOUT_S,
            "heartbeat_period": self.heartbeat_period,
        }

    def tick(self) -> bool | None:
        """Each heartbeat period (and at start): ``active`` to publish, or None once
        the bond is dead."""
        return None if self.state == self.DEAD else True

    def on_status(self, bond_id: str, instance_id: str, active: bool) -> bool | None:
        """A Status heard on the bond topic; returns ``active`` to publish at once, or
        None. Other bonds' and our own messages are ignored."""
        if bond_id != self.bond_id or instance_id == self.instance_id:
            return None
        if not self.sister_instance_id:
            self.sister_instance_id = instance_id
        if active:
            if self.state == self.WAITING:
                self.state = self.ALIVE
            return None
        if self.state == self.DEAD:
            return None
        self.state = self.DEAD  # the manager's side broke the bond: acknowledge once
        return False

    def break_bond(self) -> bool | None:
        """Deactivate or shutdown: ``False`` to publish, or None if already dead."""
        if self.state == self.DEAD:
            return None
        self.state = self.DEAD
        return False


def import_bond_status() -> Any | str:
    """The ``bond.msg.Status`` class, or why it cannot be had."""
    try:
        # optional: bond comes with a ROS install, not with the PyPI wheels
        from bond.msg import Status
    except ImportError as exc:
        return (
            f"bond cannot be imported ({exc}): no bond to Nav2's lifecycle_manager, whose "
            "bring-up then aborts unless its bond_timeout is 0.0 (install "
            "ros-$ROS_DISTRO-bond with your ROS distribution)"
        )
    return Status


class NodeBond:
    """A :class:`BondHeartbeat` on an rclpy node: a publisher on ``bond`` for the
    node's life (so the last ``active = false`` is not lost with it), and from
    :meth:`start` to :meth:`stop` a subscription and a heartbeat timer on the steady
    clock (bondcpp's wall timers: under use_sim_time a paused /clock must not break the
    bond).

    Args:
        node: the rclpy node (lifecycle or not).
        status_cls: ``bond.msg.Status`` (from :func:`import_bond_status`).
        heartbeat_period: seconds between heartbeats (> 0).
        bond_id: default the node's name (as Nav2's nodes).
    """

    def __init__(
        self, node: Any, status_cls: Any, heartbeat_period: float, bond_id: str = ""
    ) -> None:
        self._node = node
        self._status_cls = status_cls
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.bond_id = bond_id or node.get_name()
        self.heartbeat_period = heartbeat_period
        self.heartbeat: BondHeartbeat | None = None
        self._pub = node.create_publisher(status_cls, BOND_TOPIC, QoSProfile(depth=5))
        self._entities: tuple[Any, Any] | None = None

    def start(self) -> None:
        """A new bond (new instance id): the first heartbeat at once, since the manager
        waits only bond_timeout / 2."""
        self.stop()
        self.heartbeat = BondHeartbeat(self.bond_id, self.heartbeat_period)
        sub = self._node.create_subscription(
            self._status_cls, BOND_TOPIC, self._on_status, QoSProfile(depth=100)
        )
        timer = self._node.create_timer(self.heartbeat_period, self._tick, clock=self._steady)
        self._entities = (sub, timer)
        self._tick()

    def stop(self, flush: bool = False) -> None:
        """Breaks the bond (one ``active = false``) and stops listening and beating.

        Args:
            flush: wait (at most :data:`FLUSH_TIMEOUT_S`) until the subscribers have
                acknowledged it: the node is about to go, and with it the message.
        """
        if self.heartbeat is not None:
            reply = self.heartbeat.break_bond()
            if reply is not None:
                self._publish(reply)
                if flush:
                    self._pub.wait_for_all_acked(Duration(seconds=FLUSH_TIMEOUT_S))
        if self._entities is not None:
            sub, timer = self._entities
            self._node.destroy_timer(timer)
            self._node.destroy_subscription(sub)
            self._entities = None

    def message(self, active: bool) -> Any:
        """The ``bond/msg/Status`` to publish."""
        assert self.heartbeat is not None
        msg = self._status_cls(**self.heartbeat.status(active))
        msg.header.stamp = self._steady.now().to_msg()
        return msg

    def _publish(self, active: bool) -> None:
        self._pub.publish(self.message(active))

    def _tick(self) -> None:
        if self.heartbeat is not None and self.heartbeat.tick() is not None:
            self._publish(True)

    def _on_status(self, msg: Any) -> None:
        if self.heartbeat is None:
            return
        reply = self.heartbeat.on_status(msg.id, msg.instance_id, msg.active)
        if reply is not None:
            self._publish(reply)
            self._node.get_logger().warning(
                f"the lifecycle manager broke the bond '{self.bond_id}'; no heartbeats "
                "until the next activate"
            )
