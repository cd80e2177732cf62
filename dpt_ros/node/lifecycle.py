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
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from dpt_ros.models import CheckpointError
from dpt_ros.node.main import run_node
from dpt_ros.node.node import DptNode


class DptLifecycleNode(DptNode, LifecycleNode):
    """dpt_node whose models and topics follow the lifecycle transitions (module doc).

    Raises:
        ValueError: invalid parameters (at construction, as dpt_node).
    """

    _start_at_once = False

    def __init__(self, node_name: str = "dpt_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.load_models()
        except (ValueError, CheckpointError, OSError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self.free_models()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.start()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.free_models()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.free_models()
        return super().on_shutdown(state)


def main(args: list[str] | None = None) -> int:
    """Console entry point: ``ros2 run dpt_ros dpt_lifecycle_node``."""
    return run_node(DptLifecycleNode, args)


if __name__ == "__main__":
    sys.exit(main())
