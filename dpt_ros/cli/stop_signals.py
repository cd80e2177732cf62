"""Stop signals for the command-line tools: SIGTERM and SIGHUP end a run as Ctrl-C does.

``timeout``, ``docker stop`` and systemd send SIGTERM; closing a terminal sends SIGHUP.
Python's default for both is to die at once, which leaves a half-written output (a bag
without ``metadata.yaml``, an sqlite ``-journal``). While :func:`stop_signals_raise` is
active, each raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so
every ``finally`` and ``except KeyboardInterrupt`` that handles Ctrl-C runs for them too,
and :func:`exit_status` gives the shell's convention, 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals turned into :class:`Terminated` (SIGHUP does not exist on Windows).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """A stop signal other than SIGINT arrived.

    Attributes:
        signum: the signal's number (15 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`; the previous
    handlers come back afterwards. Outside the main thread (where Python cannot set
    handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT))
