"""The lifecycle manager's side of a bond, written from bond's message definitions and
its state machine (bond/msg/Status.msg, bond/BondSM.sm), for the tests: what Nav2's
lifecycle_manager concludes from the Status messages a managed node sends.

Status fields: ``id`` (the bond), ``instance_id`` (one side's UUID), ``active``,
``heartbeat_timeout``, ``heartbeat_period``. The manager's side is formed when it hears
``active`` from another instance of its id (WaitingForSister -> Alive); in Alive each
such message is a heartbeat, and none for ``heartbeat_timeout`` seconds kills the bond
(HeartbeatTimeout -> Dead), as does ``active = false`` from the sister (SisterDead ->
Dead). Nav2's manager waits ``bond_timeout / 2`` for the formation after ACTIVATE and
uses ``bond_timeout`` as its heartbeat timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ManagerBond:
    bond_id: str
    heartbeat_timeout: float
    instance_id: str = "manager-instance"
    state: str = "WaitingForSister"
    formed_at: float | None = None
    died_at: float | None = None
    last_heartbeat: float | None = None
    #: Why the bond died: "sister died" or "heartbeat timeout".
    death: str = ""
    heard: list[dict] = field(default_factory=list)

    def advance(self, now: float) -> None:
        """The heartbeat timer: Alive with no heartbeat for heartbeat_timeout -> Dead."""
        if (
            self.state == "Alive"
            and self.last_heartbeat is not None
            and now - self.last_heartbeat > self.heartbeat_timeout
        ):
            self.state, self.died_at = "Dead", self.last_heartbeat + self.heartbeat_timeout
            self.death = "heartbeat timeout"

    def hear(self, now: float, status: dict) -> None:
        """bondStatusCB: messages of other bonds and our own are filtered out."""
        self.advance(now)
        if status["id"] != self.bond_id or status["instance_id"] == self.instance_id:
            return
        self.heard.append(status)
        if status["active"]:
            if self.state == "WaitingForSister":
                self.state, self.formed_at = "Alive", now
            if self.state == "Alive":
                self.last_heartbeat = now
        elif self.state in ("WaitingForSister", "Alive", "AwaitSisterDeath"):
            self.state, self.died_at, self.death = "Dead", now, "sister died"

    def formed_within(self, activated_at: float, wait: float) -> bool:
        """waitUntilFormed(wait) started at ``activated_at``."""
        return self.formed_at is not None and self.formed_at - activated_at <= wait
