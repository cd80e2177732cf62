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


#: The signals handled here: the stop signals and Ctrl-C.
_DEFERRED: tuple[signal.Signals, ...] = (signal.SIGINT, *STOP_SIGNALS)


class Terminated(KeyboardInterrupt):
    """A stop signal other than SIGINT arrived.

    Attributes:
        signum: the signal's number (15 for SIGTERM).
    """

    def __init__(self, signum: int, note: str = "") -> None:
        text = f"stopped by {signal.Signals(signum).name}"
        super().__init__(f"{text}; {note}" if note else text)
        self.signum = signum


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) with a note on what was kept (:func:`with_note`)."""

    signum = int(signal.SIGINT)


def with_note(exc: KeyboardInterrupt, note: str) -> KeyboardInterrupt:
    """The same stop as ``exc``, its text followed by ``note`` (what the run kept), so
    that the one line the command prints says both."""
    signum = getattr(exc, "signum", int(signal.SIGINT))
    if signum == signal.SIGINT:
        return Interrupted(f"{exc}; {note}" if str(exc) else note)
    return Terminated(signum, note)


class _Stops:
    """What the handlers of :func:`stop_signals_raise` do: the first stop signal raises
    (:class:`Terminated`, or ``KeyboardInterrupt`` for SIGINT) and every later one is
    only recorded, so that a storm of signals (Ctrl-C mashed, SIGTERM with SIGINT) can
    never interrupt the ``finally`` that closes an output; within
    :func:`stop_signals_deferred` even the first one is only recorded."""

    def __init__(self, received: list[int] | None = None) -> None:
        self.stopping = False
        self.deferring: list[list[int]] = []
        self.received = received
        #: The signal whose stop the handler raised (None: none yet).
        self.raised: int | None = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self.received.append(signum)
        for received in self.deferring:
            received.append(signum)
        if self.stopping or self.deferring:
            return
        self.stopping = True
        self.raised = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)


#: The state of the innermost :func:`stop_signals_raise` block (None outside one).
_active: _Stops | None = None


@contextlib.contextmanager
def stop_signals_raise(received: list[int] | None = None) -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP stop the run: the first raises
    ``KeyboardInterrupt`` (SIGINT) or :class:`Terminated` in the main thread, later ones
    are only recorded (see :class:`_Stops`); the previous handlers come back afterwards.
    A signal that was ignored stays ignored (``nohup`` ignores SIGHUP so that a run
    outlives its terminal). Outside the main thread (where Python cannot set handlers)
    it changes nothing.

    Args:
        received: if given, every stop signal's number is appended to it as it arrives:
            a stop that lands in the middle of an import may surface as that import's
            own error (numpy's ImportError), and the list still says a stop came.
    """
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer, stops = _active, _Stops(received)
    if outer is not None:
        outer.stopping = True  # this block handles the stops; after it, the outer records
    previous = {}
    for sig in _DEFERRED:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, stops.handler)
    _active = stops
    try:
        yield
    finally:
        stops.stopping = True  # from here on a signal is only recorded, until restored
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _active = outer


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[list[int]]:
    """Within the block SIGINT, SIGTERM and SIGHUP only append their number to the list
    it yields, so that the block (opening or closing an output) runs to its end;
    :func:`raise_received` acts on what arrived. Within :func:`stop_signals_raise` its
    handlers stay in place (no moment without one); elsewhere the previous handlers come
    back afterwards. A signal that was ignored stays ignored. Outside the main thread it
    changes nothing."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    stops = _active
    if stops is not None and all(signal.getsignal(s) == stops.handler for s in _handled()):
        stops.deferring.append(received)
        try:
            yield received
        finally:
            stops.deferring.remove(received)
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


def _handled() -> list[signal.Signals]:
    """The handled signals that are not ignored."""
    return [s for s in _DEFERRED if signal.getsignal(s) is not signal.SIG_IGN]


def stopping() -> bool:
    """A stop signal has already raised its stop (the run is ending)."""
    return _active is not None and _active.stopping


def swallowed_stop() -> KeyboardInterrupt | None:
    """The stop that a signal has raised, if one has (None: none yet).

    Code between the handler and the run's own handling can turn the
    ``KeyboardInterrupt`` into another error (a binding that reports it as a
    ``TypeError``), and a caller that skips bad input would then skip it: the run would
    go on as if no stop had come and end with exit status 0. A place that a stop must
    have passed through, had it come whole (the end of an output about to count as
    finished, the handling of an error), asks here."""
    if _active is not None and _active.raised is not None:
        return stop_of(_active.raised)
    return None


def raise_swallowed() -> None:
    """Raises :func:`swallowed_stop`'s stop, if there is one."""
    stop = swallowed_stop()
    if stop is not None:
        raise stop


def raise_received(received: list[int]) -> None:
    """Raises the stop of the first signal in ``received`` (from
    :func:`stop_signals_deferred`): :class:`Terminated`, or ``KeyboardInterrupt`` for
    SIGINT. Nothing when it is empty, or when an earlier signal's stop is already on
    its way (the run is ending anyway: one stop, one exit status)."""
    if not received or stopping():
        return
    if _active is not None:
        _active.stopping = True
    raise stop_of(received[0])


def stop_of(signum: int) -> KeyboardInterrupt:
    """The exception a stop by ``signum`` raises: ``KeyboardInterrupt`` for SIGINT,
    else :class:`Terminated`."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal number: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT))


def handle_for_the_process() -> None:
    """For the whole process (the ``dpt-ros`` program, not a library call): the first
    SIGINT, SIGTERM or SIGHUP raises its stop, as in :func:`stop_signals_raise`, until a
    :func:`stop_signals_raise` block takes over; once that block has ended, they are
    only recorded (the run is over). Never restored: call :func:`ignore_stop_signals`
    when the exit status is known. A signal that was ignored stays ignored."""
    global _active
    if threading.current_thread() is not threading.main_thread():
        return
    stops = _Stops()
    for sig in _DEFERRED:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, stops.handler)
    _active = stops


def ignore_stop_signals() -> None:
    """From now on SIGINT, SIGTERM and SIGHUP do nothing: for the end of the process,
    once its exit status is known (a Ctrl-C during the interpreter's shutdown must not
    print a traceback nor change how it ended)."""
    for sig in _DEFERRED:
        signal.signal(sig, signal.SIG_IGN)
