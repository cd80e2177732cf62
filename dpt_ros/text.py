"""Untrusted text in log lines and error messages (no dependencies: the command line,
the node and the bag tools share it).

Values that come from outside (a message's frame_id or encoding, a bag's topic names, a
file name) must never forge a log line (a newline followed by ``[FATAL] ...``), move the
terminal (ESC sequences) or flood it (a 20 kB frame_id). :func:`shown` is how such a
value appears in a text: quoted as ``repr`` writes it (control characters escaped) and
cut to a length. :func:`one_line` escapes a whole text that may hold such values.
"""

from __future__ import annotations

from typing import Any, Final

#: Characters of an untrusted string shown in a message (:func:`shown`).
SHOWN_CHARS: Final = 64


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """An untrusted string (an encoding, a format, a frame_id, a topic, a file name) as
    it may appear in an error or a log line: quoted, escaped (a newline cannot start a
    forged line, nor a control character move the terminal) and cut to ``limit``
    characters. Quoted this way, a log throttle can tell the kind of a problem from its
    values (:func:`dpt_ros.node.throttle.reason_key`)."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (newlines, carriage returns,
    terminal escapes) written as its escape, so a value from a message cannot start a
    forged log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
