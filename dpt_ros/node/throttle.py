"""Warnings throttled per camera and per reason, as one line each.

rclpy throttles a log call by its call site: every rejection of ``dpt_node`` goes
through one call, so one noisy camera would hide every other camera's problems, and one
kind of problem every other kind. :class:`KeyedThrottle` keeps one period per key
(camera, reason) and counts what it held back, to say so on the next line it lets through.

The reason is its kind, not its text (:func:`reason_key`): values from the messages
(quoted, see :func:`dpt_ros.text.shown`) and numbers are masked, so a stream of
ever-new encodings or formats is one reason. :func:`~dpt_ros.text.one_line` escapes what a
message put into a text, so that it cannot forge a log line.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from dpt_ros.text import one_line

__all__ = ["KeyedThrottle", "one_line", "reason_key"]

_NUMBER = re.compile(r"\d+(\.\d+)?")
#: A quoted value as ``repr`` writes it (its quotes inside escaped).
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')
#: Longest reason key: the kinds are short, a long tail is a value.
_KEY_CHARS = 160


def reason_key(text: str) -> str:
    """The kind of problem a warning text describes: the text with quoted values and
    numbers masked, so "unsupported image encoding 'abc'" and "... 'x%s{}'" are one
    reason, as are "frame 12 is late by 0.3 s" and "frame 13 is late by 0.5 s"."""
    return _NUMBER.sub("#", _QUOTED.sub("'*'", text))[:_KEY_CHARS]


class KeyedThrottle:
    """At most one message per ``period_s`` for each key.

    Args:
        period_s: seconds between two messages of one key.
        max_keys: keys remembered (the least recently seen are forgotten first), so
            hostile input with ever-new texts cannot grow the table without bound.
        clock: monotonic seconds (replaceable for tests).
    """

    def __init__(
        self,
        period_s: float,
        max_keys: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period_s = period_s
        self.max_keys = max_keys
        self._clock = clock
        self._last: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: Hashable) -> int | None:
        """None if a message for ``key`` was let through less than ``period_s`` ago
        (it is counted as held back); else the number held back since then (0 or more),
        and the period starts again."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self.period_s:
                self._last[key] = (last[0], last[1] + 1)
                return None
            self._last[key] = (now, 0)
            self._last.move_to_end(key)
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)
            return last[1] if last is not None else 0
