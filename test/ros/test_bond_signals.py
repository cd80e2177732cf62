"""dpt_lifecycle_node stopped by a real SIGINT or SIGTERM while active breaks its bond
(one ``active = false`` on ``bond``) before its context goes, as Nav2's own nodes do in
their pre-shutdown hook, so the lifecycle manager sees the node leave at once instead
of a heartbeat timeout ("CRITICAL FAILURE", every node reset); and it exits within
launch's 5 s grace before SIGTERM.

The node runs in a child process, as ``ros2 run`` starts it; the test process is the
manager (configure, activate, listen on ``bond``). Where the ``bond`` messages do not
import (a plain venv), the child's NodeBond publishes the same fields as JSON in a
``std_msgs/String``: the protocol, the timers and the shutdown order are the real ones,
only the message class differs."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import spin_until
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.node import Node

ROOT = Path(__file__).resolve().parents[2]
HAVE_BOND = importlib.util.find_spec("bond") is not None

#: launch's sigterm_timeout: after SIGINT, ros2 launch waits this long, then SIGTERM.
LAUNCH_GRACE_S = 5.0

_CHILD = """
import json, sys, types
from dpt_ros.node import lifecycle

if sys.argv[1] == "json":  # no bond messages here: the same fields in a String
    from std_msgs.msg import String

    class JsonBond(lifecycle.NodeBond):
        def message(self, active):
            return String(data=json.dumps(self.heartbeat.status(active)))

        def _on_status(self, msg):
            super()._on_status(types.SimpleNamespace(**json.loads(msg.data)))

    lifecycle.NodeBond = JsonBond
    lifecycle.import_bond_status = lambda: String

sys.exit(lifecycle.main(sys.argv[2:]))
"""

_PARAMS = {
    "device": "cpu",
    "backend": "torch",
    "network_width": "64",
    "network_height": "64",
    "depth.random_weights": "true",
    "warmup_width": "0",
    "warmup_height": "0",
}


def _fields(msg) -> dict:
    if hasattr(msg, "data"):
        return json.loads(msg.data)
    return {k: getattr(msg, k) for k in ("id", "instance_id", "active")}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_breaks_the_bond_before_the_context_goes(ros, signum):
    executor, add = ros
    manager = add(Node("lifecycle_manager_probe"))
    if HAVE_BOND:
        from bond.msg import Status as msg_type
    else:
        from std_msgs.msg import String as msg_type
    heard: list[tuple[float, dict]] = []
    manager.create_subscription(
        msg_type, "bond", lambda m: heard.append((time.monotonic(), _fields(m))), 100
    )
    change = manager.create_client(ChangeState, "/dpt_node/change_state")
    args = ["--ros-args"] + [x for k, v in _PARAMS.items() for x in ("-p", f"{k}:={v}")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "real" if HAVE_BOND else "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert change.wait_for_service(60)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            future = change.call_async(ChangeState.Request(transition=Transition(id=transition)))
            assert spin_until(executor, future.done, 120)
            assert future.result().success
        assert spin_until(executor, lambda: len(heard) >= 3, 10.0)  # heartbeats
        assert all(f["active"] and f["id"] == "dpt_node" for _, f in heard)
        signalled = time.monotonic()
        child.send_signal(signum)
        assert spin_until(executor, lambda: not heard[-1][1]["active"], 3.0), heard[-3:]
        output = child.communicate(timeout=30)[0]
        exited = time.monotonic() - signalled
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    last_time, last = heard[-1]
    assert last["instance_id"] == heard[0][1]["instance_id"]  # the same bond, broken
    assert [f["active"] for _, f in heard].count(False) == 1
    assert last_time - signalled < 1.0  # not a heartbeat timeout (4 s)
    assert child.returncode == 0, output
    assert "Traceback" not in output and "RCLError" not in output, output
    assert exited < LAUNCH_GRACE_S, (exited, output)
