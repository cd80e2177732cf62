"""The process around a ``dpt_node``: rclpy initialised, the node spun until Ctrl-C,
SIGTERM or shutdown, then everything shut down in order. The console entry points
``dpt_node`` and ``dpt_lifecycle_node`` are :func:`dpt_node` and
:func:`dpt_lifecycle_node` here: they install the stop handlers first, then import the
node (torch, rclpy: seconds), then run it through :func:`run_node`. This module
imports nothing heavy itself.

Stopping (SIGINT or SIGTERM) at any stage ends in exit status 0 within seconds:

- during start-up (the imports of torch and rclpy, model load, warm-up, an eager
  engine build): the first signal interrupts it at once, the engine build's child
  process is ended, and one line says the node stopped during start-up;
- while spinning: the node's :meth:`~dpt_ros.node.node.DptNode.before_shutdown` runs
  while the context is still valid (the lifecycle node breaks its bond there, as Nav2's
  nodes do in rclcpp's pre-shutdown callback), the worker finishes or drops the batch
  in hand (at most :data:`STOP_TIMEOUT_S`), then the node and the context go;
- a further signal while stopping does not cut the stop short: one line says the
  stop is under way, and it goes on as before.

rclpy's own signal handlers would shut the context down before any Python code runs
(so nothing could be published on the way out); where this module's handlers are
installed (the main thread) rclpy's are not, and the executor wakes every
:data:`SIGNAL_POLL_S` to let the handler run. Once a process's main has stopped
everything, the interpreter's final garbage collection is skipped (``gc.freeze``): over
the ~400,000 objects of torch and the models it took 5 to 8 s, beyond ``ros2 launch``'s
5 s grace before SIGTERM.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

#: Longest wait (s) for the inference worker to finish its batch at shutdown.
STOP_TIMEOUT_S = 10.0
#: Longest wait (s) of the executor before a stop signal's handler runs.
SIGNAL_POLL_S = 0.1


class RunnableNode(Protocol):
    """What :func:`run_node` needs of a node (``DptNode`` and its lifecycle variant):
    named here so that this light module never imports the node's heavy one."""

    def before_shutdown(self) -> None: ...

    def stop_worker(self, timeout: float = ...) -> bool: ...

    def destroy_node(self) -> None: ...

    def get_logger(self) -> Any: ...


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopSignals:
    """SIGINT and SIGTERM as Python handlers, installed before ``rclpy.init``, which
    then installs none of its own (they would shut the context down at once). The first
    signal raises KeyboardInterrupt in the main thread while
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
        #: The handlers found when :meth:`install` ran, put back by :meth:`restore`.
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Installs the handlers (in the main thread only; elsewhere nothing)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _STOP_SIGNALS:
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    def stopped(self) -> bool:
        """Whether a stop signal has come."""
        return self.received is not None

    @property
    def installed(self) -> bool:
        """Whether the handlers are installed (by :meth:`install`, in the main thread)."""
        return bool(self._previous)

    def restore(self) -> None:
        """Puts back the handlers that :meth:`install` found: a library call leaves the
        process as it found it."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def ignore(self) -> None:
        """Ignores both signals from now on: everything has stopped and the process exits
        (at exit Python puts back the default handlers, so a second Ctrl-C then would
        kill the process with SIGINT after a clean stop; an ignored signal stays
        ignored). Only for a process's main, never within a library call."""
        if self._previous:
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            self._previous.clear()

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


def dpt_node(args: list[str] | None = None) -> int:
    """Console entry point: ``ros2 run dpt_ros dpt_node``."""
    return _main("dpt_ros.node.node", "DptNode", args)


def dpt_lifecycle_node(args: list[str] | None = None) -> int:
    """Console entry point: ``ros2 run dpt_ros dpt_lifecycle_node``."""
    return _main("dpt_ros.node.lifecycle", "DptLifecycleNode", args)


def _main(module: str, class_name: str, args: list[str] | None) -> int:
    """A process's main: the stop handlers first, then the node's module is imported
    (torch and rclpy load: seconds) and run; a stop at any point of that ends with one
    line and exit status 0. Both signals are ignored once it returns (the process
    exits: see :meth:`_StopSignals.ignore`)."""
    signals = _StopSignals()
    importing = True
    try:
        signals.install()
        node_class = getattr(importlib.import_module(module), class_name)
        if signals.received is not None:  # a stop that an import swallowed
            raise KeyboardInterrupt
        importing = False
        return run_node(node_class, args, signals)
    except KeyboardInterrupt:  # before run_node had its own handling: the imports
        signals.interruptible = False
        _stopped_during_start_up(signals.received)
        return 0
    except Exception:
        if not (importing and signals.received is not None):
            raise
        # The stop landed in an import, which failed its own way (numpy: ImportError).
        _stopped_during_start_up(signals.received)
        return 0
    finally:
        main_thread = signals.installed
        signals.ignore()
        if main_thread:  # what is left is only the process's exit
            gc.freeze()


def run_node(
    node_class: type[RunnableNode],
    args: list[str] | None = None,
    signals: _StopSignals | None = None,
) -> int:
    """Initialises rclpy, spins a ``node_class`` until Ctrl-C, SIGTERM or shutdown, and
    shuts down in order (worker, node, context); returns the exit status: 0, or 1 for
    invalid parameters or arguments, or unusable weights.

    SIGINT and SIGTERM are handled as the module says (by ``signals``, installed
    already, when a process's main gives it); the handlers found are put back when it
    returns."""
    own = signals is None
    if signals is None:
        signals = _StopSignals()
        signals.install()
    try:
        return _run(node_class, args, signals)
    finally:
        if own:
            signals.restore()


def _run(node_class: type[RunnableNode], args: list[str] | None, signals: _StopSignals) -> int:
    import rclpy  # start-up: rclpy loads after the stop handlers

    from dpt_ros.models.errors import CheckpointError  # start-up: so does torch

    if not _init_quietly(rclpy, args, own_handlers=signals.installed):
        return 1
    context = rclpy.get_default_context()
    node: RunnableNode | None = None
    code = 0
    try:
        try:
            node = node_class()
            # From here a stop signal only records itself and the spin loop sees it: an
            # exception raised in the middle of rclpy's C++ calls would surface as their
            # own error (pybind11: "Unable to convert call argument").
            signals.interruptible = not signals.installed
            _spin(rclpy, node, context, poll=signals.installed, stop=signals.stopped)
        finally:
            signals.interruptible = False
        if signals.received is not None and context.ok():
            node.before_shutdown()
    except KeyboardInterrupt:
        if node is None:
            _stopped_during_start_up(signals.received)
        elif context.ok():
            node.before_shutdown()
    except (ValueError, CheckpointError, OSError) as exc:
        if signals.received is not None or not context.ok():
            _stopped_during_start_up(signals.received)
        else:
            rclpy.logging.get_logger("dpt_node").fatal(_one_line(str(exc)))
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
    return code


def _spin(
    rclpy: Any, node: RunnableNode, context: Any, poll: bool, stop: Callable[[], bool]
) -> None:
    """Spins ``node`` until the context shuts down; with ``poll``, until ``stop()`` too,
    waking at least every :data:`SIGNAL_POLL_S` so that a stop signal's Python handler
    runs and is seen."""
    if not poll:
        rclpy.spin(node)
        return
    executor = rclpy.get_global_executor()
    executor.add_node(node)
    try:
        while context.ok() and not stop():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    finally:
        executor.remove_node(node)


def _init_quietly(rclpy: Any, args: list[str] | None, own_handlers: bool) -> bool:
    """``rclpy.init(args)`` (with no signal handlers of rclpy's where ``own_handlers``);
    False after one FATAL line when rcl cannot parse the arguments (a ``-p`` value with
    a newline, an unclosed quote), instead of rcl's own error line and an RCLError
    traceback."""
    from rclpy.logging import (  # start-up: rclpy loads after the stop handlers
        LoggingSeverity,
        get_logger_effective_level,
        set_logger_level,
    )

    # rcl's own "Failed to parse global arguments" line: ours says it instead.
    set_logger_level("rcl", LoggingSeverity.FATAL)
    try:
        if own_handlers:
            from rclpy.signals import SignalHandlerOptions  # start-up: with rclpy

            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        else:
            rclpy.init(args=args)
    except Exception as exc:  # RCLError (rclpy has no public name for it)
        if type(exc).__name__ != "RCLError":
            raise
        _fatal(f"invalid arguments: {_one_line(str(exc))}")
        return False
    finally:
        # Back to the default unless the arguments set rcl's level (--log-level rcl:=...).
        given = sys.argv if args is None else args
        if get_logger_effective_level("rcl") == LoggingSeverity.FATAL and not any(
            "rcl:=" in arg for arg in given
        ):
            set_logger_level("rcl", LoggingSeverity.UNSET)
    return True


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks within it shown as ``\\n`` (a parameter value
    with a newline), and rcl's source locations (``, at /…/arguments.c:352``) left out."""
    kept = text.split(", at /")[0]
    return kept.replace("\r", "\\r").replace("\n", "\\n").strip()


def _fatal(text: str) -> None:
    """One FATAL line when rclpy could not start (its logging may not work then)."""
    print(f"[FATAL] [dpt_node]: {text}", file=sys.stderr, flush=True)


def _stopped_during_start_up(signum: int | None) -> None:
    """One line: the node stopped before it was ready (printed: the context, and with it
    the node's logging to /rosout, may be gone)."""
    by = f"{signal.Signals(signum).name}: " if signum is not None else ""
    print(f"[dpt_node] {by}stopped during start-up", file=sys.stderr, flush=True)


def _stop_engine_builds() -> None:
    """Stops engine builds still running in their child processes (a build is atomic:
    nothing half-built is kept, and the next start builds it again)."""
    # start-up: engine_build imports torch; only needed once the node has run
    from dpt_ros.runtime.engine_build import stop_builds

    if stop_builds():
        print(
            "[dpt_node] stopped during an engine build: abandoned, nothing half-built is "
            "kept; the next start builds it again",
            file=sys.stderr,
            flush=True,
        )


if __name__ == "__main__":  # python -m dpt_ros.node.main: dpt_node as installed
    sys.exit(dpt_node())
