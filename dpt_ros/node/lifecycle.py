"""``dpt_lifecycle_node``: ``dpt_node`` as a managed (lifecycle) node, for Nav2's
``lifecycle_manager`` and other supervisors.

Same parameters, topics and behaviour as ``dpt_node`` once active. The transitions:

- configure: loads the models and warms them up (parameters are read at construction);
- activate: creates the publishers, subscriptions, timers and the inference worker;
- deactivate: stops the worker and destroys them; the models stay loaded, so the next
  activate is quick;
- cleanup: frees the models (back to unconfigured);
- shutdown: all of the above, from any state.

A configure that fails (weights missing, for another model) logs the reason and
returns FAILURE: the node stays unconfigured and can be configured again.

While active the node keeps the bond Nav2's lifecycle_manager waits for
(:mod:`dpt_ros.node.bond`): started on activate, broken on deactivate, shutdown and a
stop signal (Ctrl-C, SIGTERM: :meth:`DptLifecycleNode.before_shutdown`).
Where the ``bond`` messages do not import it says so once, at construction.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from dpt_ros.models import CheckpointError
from dpt_ros.node.bond import NodeBond, import_bond_status
from dpt_ros.node.main import dpt_lifecycle_node
from dpt_ros.node.node import DptNode


class DptLifecycleNode(DptNode, LifecycleNode):
    """dpt_node whose models and topics follow the lifecycle transitions (module doc).

    Raises:
        ValueError: invalid parameters (at construction, as dpt_node).
    """

    _start_at_once = False

    def __init__(self, node_name: str = "dpt_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._bond: NodeBond | None = None
        #: What /diagnostics says of the bond when there is none.
        self.bond_text = "off: bond_heartbeat_period is 0"
        period = self.config.bond_heartbeat_period
        status = import_bond_status() if period > 0 else None
        if isinstance(status, str):
            self.get_logger().warning(status)
            self.bond_text = f"off: {status}"
        elif status is not None:
            self._bond = NodeBond(self, status, period)

    def status(self) -> dict[str, str]:
        """dpt_node's /diagnostics values and the bond's state."""
        values = super().status()
        heartbeat = self._bond.heartbeat if self._bond is not None else None
        values["bond"] = (
            self.bond_text
            if heartbeat is None
            else f"{heartbeat.state} (id {heartbeat.bond_id!r}, every "
            f"{heartbeat.heartbeat_period:g} s)"
        )
        return values

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.load_models()
        except (ValueError, CheckpointError, OSError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.free_models()
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # rclpy would swallow it: the user must see why
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self.free_models()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.start()
        if self._bond is not None:
            self._bond.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._bond is not None:
            self._bond.stop()
        self.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.free_models()
        return super().on_cleanup(state)

    def before_shutdown(self) -> None:
        """A stop signal (Ctrl-C, SIGTERM) while the context is valid: the bond is broken
        (one ``active = false``, delivered before the node goes), so the manager sees the
        node leave at once, as Nav2's nodes do in their pre-shutdown callback, instead of
        a heartbeat timeout after ``bond_timeout`` ("CRITICAL FAILURE", every node
        reset)."""
        if self._bond is not None:
            self._bond.stop(flush=True)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._bond is not None:
            self._bond.stop()
        self.stop()
        self.free_models()
        return super().on_shutdown(state)


def main(args: list[str] | None = None) -> int:
    """``python -m`` of this module, and former console entry point: the process's main
    (:func:`dpt_ros.node.main.dpt_lifecycle_node`; this module's imports are done by now)."""
    return dpt_lifecycle_node(args)


if __name__ == "__main__":
    sys.exit(main())
