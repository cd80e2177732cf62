"""The process around a ``dpt_node``: rclpy initialised, the node spun until Ctrl-C,
SIGTERM or shutdown, then everything shut down in order. ``dpt_node`` and
``dpt_lifecycle_node`` (their ``main`` functions) both run through :func:`run_node`.

Stopping (SIGINT or SIGTERM) at any stage ends in exit status 0 within seconds:

- during start-up (model load, warm-up, an eager engine build): the first signal
  interrupts it at once, the engine build's child process is ended, and one line says
  the node stopped during start-up;
- while spinning: the node's :meth:`~dpt_ros.node.node.DptNode.before_shutdown` runs
  while the context is still valid (the lifecycle node breaks its bond there, as Nav2's
  nodes do in rclcpp's pre-shutdown callback), the worker finishes or drops the batch
  in hand (at most :data:`STOP_TIMEOUT_S`), then the node and the context go;
- a further signal while stopping does not cut the stop short: one line says the
  stop is under way, and it goes on as before.

rclpy's own signal handlers would shut the context down before any Python code runs
(so nothing could be published on the way out); where this module's handlers are
installed (the main thread) rclpy's are not, and the executor wakes every
:data:`SIGNAL_POLL_S` to let the handler run. Once everything is stopped the
interpreter's final garbage collection is skipped (``gc.freeze``): over the ~400,000
objects of torch and the models it took 5 to 8 s, beyond ``ros2 launch``'s 5 s grace
before SIGTERM.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

import rclpy

from dpt_ros.models.errors import CheckpointError

if TYPE_CHECKING:
    from dpt_ros.node.node import DptNode

#: Longest wait (s) for the inference worker to finish its batch at shutdown.
STOP_TIMEOUT_S = 10.0
#: Longest wait (s) of the executor before a stop signal's handler runs.
SIGNAL_POLL_S = 0.1

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopSignals:
    """SIGINT and SIGTERM as Python handlers, installed before ``rclpy.init``, which
    then installs none of its own (they would shut the context down at once). The first signal raises KeyboardInterrupt in the main thread while
    :attr:`interruptible` (start-up and spin: a model load or an eager engine build does
    not wait on the context); later ones only print that the stop is under way, so they
    cannot interrupt the worker's join or the engine build's end.

    Only the main thread can install handlers; elsewhere nothing is installed and rclpy's
    handlers alone stop the node (then with no :meth:`before_shutdown`).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.interruptible = True
        self._told = False
        #: Whether the handlers are installed (the main thread).
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            for signum in _STOP_SIGNALS:
                signal.signal(signum, self._handle)

    def ignore(self) -> None:
        """Ignores both signals from now on: everything has stopped and the process exits
        (at exit Python puts back the default handlers, so a second Ctrl-C then would
        kill the process with SIGINT after a clean stop; an ignored signal stays
        ignored)."""
        if self.installed:
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and self.interruptible:
            self.interruptible = False
            raise KeyboardInterrupt
        if not first and not self._told:
            self._told = True
            # os.write: a print could re-enter a write to stderr that the signal interrupted
            os.write(
                sys.stderr.fileno(),
                f"[dpt_node] {signal.Signals(signum).name}: already stopping; the worker gets "
                f"up to {STOP_TIMEOUT_S:.0f} s to finish its batch\n".encode(),
            )


def run_node(node_class: type[DptNode], args: list[str] | None = None) -> int:
    """Initialises rclpy, spins a ``node_class`` until Ctrl-C, SIGTERM or shutdown, and
    shuts down in order (worker, node, context); returns the exit status: 0, or 1 for
    invalid parameters or unusable weights.

    Meant as the process's main: SIGINT and SIGTERM are handled as the module says, then
    ignored once it returns, until the process exits."""
    signals = _StopSignals()
    if signals.installed:
        from rclpy.signals import SignalHandlerOptions

        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    else:
        rclpy.init(args=args)
    context = rclpy.get_default_context()
    node: DptNode | None = None
    code = 0
    try:
        try:
            node = node_class()
            _spin(node, context, poll=signals.installed)
        finally:
            signals.interruptible = False
    except KeyboardInterrupt:
        if node is None:
            _stopped_during_start_up(signals.received)
        elif context.ok():
            node.before_shutdown()
    except (ValueError, CheckpointError, OSError) as exc:
        if signals.received is not None or not context.ok():
            _stopped_during_start_up(signals.received)
        else:
            rclpy.logging.get_logger("dpt_node").fatal(str(exc))
            code = 1
    except Exception as exc:  # ExternalShutdownException and friends end quietly
        if node is None and (signals.received is not None or not context.ok()):
            # The context went while the node was being made (RCLError: "context is
            # invalid"), with no signal seen here (run_node off the main thread).
            _stopped_during_start_up(signals.received)
        elif type(exc).__name__ != "ExternalShutdownException":
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
    signals.ignore()
    if signals.installed:  # the process's main: what is left is only the exit
        gc.freeze()
    return code


def _spin(node: DptNode, context: rclpy.context.Context, poll: bool) -> None:
    """Spins ``node`` until the context shuts down; with ``poll``, waking at least every
    :data:`SIGNAL_POLL_S` so that a stop signal's Python handler runs."""
    if not poll:
        rclpy.spin(node)
        return
    executor = rclpy.get_global_executor()
    executor.add_node(node)
    try:
        while context.ok():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    finally:
        executor.remove_node(node)


def _stopped_during_start_up(signum: int | None) -> None:
    """One line: the node stopped before it was ready (printed: the context, and with it
    the node's logging to /rosout, may be gone)."""
    by = f"{signal.Signals(signum).name}: " if signum is not None else ""
    print(f"[dpt_node] {by}stopped during start-up", file=sys.stderr, flush=True)


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
