"""The attack harness measures what it claims: a child's own peak memory, its exit by
signal, a hang turned into a failure, default signal dispositions in the child."""

from __future__ import annotations

import signal
import sys

import pytest
from attack import attack


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_peak_memory_is_the_childs_own():
    big = attack(_python("b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"))
    small = attack(_python("pass"))
    assert big.rc == 0 and small.rc == 0
    assert big.peak_rss_mb >= 300, big.peak_rss_mb
    assert small.peak_rss_mb < 100, small.peak_rss_mb  # not the larger sibling's peak


def test_exit_by_signal_and_output():
    done = attack(
        _python(
            "import os, sys; print('out'); print('err', file=sys.stderr); os.kill(os.getpid(), 15)"
        )
    )
    assert done.rc == -signal.SIGTERM
    assert done.stdout == "out\n" and done.error_lines() == ["err"]


def test_a_hang_fails_the_test():
    with pytest.raises(AssertionError, match="still ran after 1 s"):
        attack(_python("import time; time.sleep(60)"), timeout=1)


def test_the_child_does_not_inherit_ignored_signals():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        done = attack(_python("import os; os.kill(os.getpid(), 1)"))
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert done.rc == -signal.SIGHUP
