"""Stopping engine builds joins their background threads, even one that ``start()`` has
registered but that does not run yet (joining it raised RuntimeError, which turned a
node's clean stop into a traceback and an abort)."""

from __future__ import annotations

import threading
import time

from dpt_ros.runtime import engine_build


def test_a_build_thread_that_is_not_running_yet_is_waited_for(monkeypatch):
    ran = threading.Event()
    thread = threading.Thread(
        target=ran.set, name=f"{engine_build.BUILD_THREAD_PREFIX}test", daemon=True
    )
    # As threading.enumerate() lists it between start() and its first instruction.
    monkeypatch.setattr(engine_build.threading, "enumerate", lambda: [thread])
    starter = threading.Timer(0.2, thread.start)
    starter.start()
    began = time.monotonic()
    engine_build._join_build_threads(timeout=30)
    assert ran.is_set() and not thread.is_alive()
    assert time.monotonic() - began < 25
    starter.join()


def test_a_thread_that_never_runs_does_not_hold_the_stop(monkeypatch):
    thread = threading.Thread(target=lambda: None, name=f"{engine_build.BUILD_THREAD_PREFIX}x")
    monkeypatch.setattr(engine_build.threading, "enumerate", lambda: [thread])
    began = time.monotonic()
    engine_build._join_build_threads(timeout=0.3)
    assert time.monotonic() - began < 5
