"""Stop signals for the command-line tools: SIGTERM and SIGHUP end a run as Ctrl-C does.

``timeout``, ``docker stop`` and systemd send SIGTERM; closing a terminal sends SIGHUP.
Python's default for both is to die at once, which leaves a half-written output (a bag
without ``metadata.yaml``, an sqlite ``-journal``). While :func:`stop_signals_raise` is
active, each raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so
every ``finally`` and ``except KeyboardInterrupt`` that handles Ctrl-C runs for them too,
and :func:`exit_status` gives the shell's convention, 128 + the signal number.

Closing an output must not be cut short in turn (a second Ctrl-C while a bag writes its
``metadata.yaml``): within :func:`stop_signals_deferred`, SIGINT, SIGTERM and SIGHUP are
only recorded, and :func:`raise_received` acts on them once the output is closed.
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


@contextlib.contextmanager
def stop_signals_raise(received: list[int] | None = None) -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`; the previous
    handlers come back afterwards. A signal that was ignored stays ignored (``nohup``
    ignores SIGHUP so that a run outlives its terminal). Outside the main thread (where
    Python cannot set handlers) it changes nothing.

    Args:
        received: if given, every stop signal's number is appended to it as it
            arrives, SIGINT's too (which then raises ``KeyboardInterrupt`` as Python's
            own handler does): a stop that lands in the middle of an import may surface
            as that import's own error (numpy's ImportError), and the list still says a
            stop came.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if received is not None:
            received.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    signals = (*STOP_SIGNALS, signal.SIGINT) if received is not None else STOP_SIGNALS
    previous = {
        sig: signal.signal(sig, handle)
        for sig in signals
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


#: The signals :func:`stop_signals_deferred` holds back: the stop signals and Ctrl-C.
_DEFERRED: tuple[signal.Signals, ...] = (signal.SIGINT, *STOP_SIGNALS)


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[list[int]]:
    """Within the block SIGINT, SIGTERM and SIGHUP only append their number to the list
    it yields, so that the block (closing an output) runs to its end; the previous
    handlers come back afterwards, and :func:`raise_received` acts on what arrived. A
    signal that was ignored stays ignored. Outside the main thread it changes nothing."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {}
    for sig in _DEFERRED:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, record)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def raise_received(received: list[int]) -> None:
    """Raises the stop of the first signal in ``received`` (from
    :func:`stop_signals_deferred`): :class:`Terminated`, or ``KeyboardInterrupt`` for
    SIGINT. Nothing when it is empty."""
    if not received:
        return
    raise stop_of(received[0])


def stop_of(signum: int) -> KeyboardInterrupt:
    """The exception a stop by ``signum`` raises: ``KeyboardInterrupt`` for SIGINT,
    else :class:`Terminated`."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT))
