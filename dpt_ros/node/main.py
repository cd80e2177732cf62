"""The process around a ``dpt_node``: rclpy initialised, the node spun until Ctrl-C,
SIGTERM or shutdown, then everything shut down in order. ``dpt_node`` and
``dpt_lifecycle_node`` (their ``main`` functions) both run through :func:`run_node`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import rclpy

from dpt_ros.models.errors import CheckpointError

if TYPE_CHECKING:
    from dpt_ros.node.node import DptNode

#: Longest wait (s) for the inference worker to finish its batch at shutdown.
STOP_TIMEOUT_S = 10.0


def run_node(node_class: type[DptNode], args: list[str] | None = None) -> int:
    """Initialises rclpy, spins a ``node_class`` until Ctrl-C, SIGTERM or shutdown, and
    shuts down in order (worker, node, context); returns the exit status."""
    rclpy.init(args=args)
    node: DptNode | None = None
    code = 0
    try:
        node = node_class()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except (ValueError, CheckpointError, OSError) as exc:
        rclpy.logging.get_logger("dpt_node").fatal(str(exc))
        code = 1
    except Exception as exc:  # ExternalShutdownException and friends end quietly
        if type(exc).__name__ != "ExternalShutdownException":
            raise
    finally:
        if node is not None:
            # In order: no worker publishing, then no node, then no context.
            if not node.stop_worker():
                node.get_logger().warning(
                    f"the inference worker did not stop within {STOP_TIMEOUT_S:.0f} s; "
                    "exiting anyway"
                )
            node.destroy_node()
        rclpy.try_shutdown()
    _stop_engine_builds()
    return code


def _stop_engine_builds() -> None:
    """Stops engine builds still running in their child processes (a build is atomic:
    nothing half-built is kept, and the next start builds it again)."""
    # start-up: the engine cache imports torch; only needed once the node has run
    from dpt_ros.models.engine_build import stop_builds

    if stop_builds():
        print(
            "[dpt_node] stopped during an engine build: abandoned, nothing half-built is "
            "kept; the next start builds it again",
            file=sys.stderr,
            flush=True,
        )
