"""``dpt_node`` stopped by SIGINT or SIGTERM at every stage (start-up, an eager engine
build, a frame being inferred, a second signal while it stops): no traceback, exit
status 0, within seconds; the worker publishes nothing on the dead context.

The node runs in a child process (``dpt_ros.node.node.main``, as ``ros2 run`` starts it)
that signals itself at the stage under test (here: as the first frame reaches the model,
then waits a little), so the signal always lands there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import default_signals, rgb_msg, scaled, small_image
from rclpy.node import Node
from sensor_msgs.msg import Image

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import os, sys, time
from dpt_ros.node import node as dpt_node
from dpt_ros.pipeline.frames import FramePipeline

original = FramePipeline.process_batch

def signal_then_run(self, *args, **kwargs):
    print(f"SIGNAL {time.monotonic()}", flush=True)
    os.kill(os.getpid(), int(sys.argv[1]))
    # The frame is still being inferred while the main thread stops the node: the
    # context stays valid until the worker has stopped (the node's before_shutdown runs
    # on it), so this is work in flight, not a wait for anything.
    time.sleep(1.0)
    return original(self, *args, **kwargs)

FramePipeline.process_batch = signal_then_run
sys.exit(dpt_node.main(sys.argv[2:]))
"""

_PARAMS = {
    "device": "cpu",
    "network_width": "64",
    "network_height": "64",
    "depth.random_weights": "true",
    "warmup_width": "0",
    "warmup_height": "0",
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stop_with_a_frame_in_flight_is_clean(ros, signum):
    executor, add = ros
    probe = add(Node("shutdown_probe"))
    pub = probe.create_publisher(Image, "image", 10)
    args = ["--ros-args"] + [x for k, v in _PARAMS.items() for x in ("-p", f"{k}:={v}")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(int(signum)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=default_signals,
    )
    try:
        deadline = time.monotonic() + scaled(120)
        sec = 0
        while child.poll() is None and time.monotonic() < deadline:
            sec += 1
            pub.publish(rgb_msg(small_image(seed=sec), sec))
            executor.spin_once(timeout_sec=0.2)
        output = child.communicate(timeout=60)[0]
        ended = time.monotonic()
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, output
    assert _clean(output), output
    assert "ready:" in output  # the node was up and the signal came during inference
    assert ended - float(output.split("SIGNAL ")[1].split()[0]) < scaled(_STOP_BOUND_S), output
    assert output.count("RANDOM weights") == 1, output  # one warning, not three


# -- a stop at every stage: start-up, an eager engine build, a second signal --------------
#
# The node signals itself at the stage under test (a patch in the child), so the signal
# always lands there. Depth Anything V2 small at 70x70 starts in seconds on two cores.

#: Longest time from the signal to the exit (seconds; two idle cores, :func:`scaled` to
#: this machine's load when checked).
_STOP_BOUND_S = 15.0

_CHILD_STAGE = """
import os, signal, sys, threading, time
from dpt_ros.runtime import engine_build
from dpt_ros.node import node as dpt_node
from dpt_ros.pipeline.frames import FramePipeline
from sensor_msgs.msg import Image

stage, signum = sys.argv[1], int(sys.argv[2])

def stop(what):
    print(f"STAGE {what} {time.monotonic()}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signum)

def signal_first(original):
    def wrapper(*args, **kwargs):
        stop(stage)
        return original(*args, **kwargs)
    return wrapper

if stage == "load":
    dpt_node.load_predictor = signal_first(dpt_node.load_predictor)
elif stage == "warm_up":
    dpt_node.warm_up = signal_first(dpt_node.warm_up)
elif stage == "build":
    def watch():  # the signal comes while the build's child process runs
        while not engine_build._CHILDREN:
            time.sleep(0.05)
        for child in list(engine_build._CHILDREN):
            print(f"BUILD_PID {child.pid}", file=sys.stderr, flush=True)
        stop("build")
    threading.Thread(target=watch, daemon=True).start()
elif stage == "twice":
    # A frame in flight: the first signal stops the node, the second lands while the
    # worker is still busy with it (the main thread waits in the worker's join).
    start = dpt_node.DptNode.start
    def start_with_a_frame(self):
        start(self)
        msg = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=bytes(48 * 64 * 3))
        self._on_image(self._cameras[0], msg)
    dpt_node.DptNode.start = start_with_a_frame
    process_batch = FramePipeline.process_batch
    def signal_twice(self, *args, **kwargs):
        stop("first")
        time.sleep(1.0)
        stop("second")
        time.sleep(1.0)
        return process_batch(self, *args, **kwargs)
    FramePipeline.process_batch = signal_twice

code = dpt_node.main(sys.argv[3:])
if stage == "twice":
    stop("exit")  # and a third while the process exits
sys.exit(code)
"""

_FAST = {
    "device": "cpu",
    "depth.model_type": "depth_anything_v2_vits",
    "depth.random_weights": "true",
    "network_width": "70",
    "network_height": "70",
    "warmup_width": "64",
    "warmup_height": "48",
    "backend": "torch",
}


def _run_stage(tmp_path, stage: str, signum: int, **params: str) -> tuple[int, str, float]:
    """Runs the node with ``stage`` patched in; returns (exit status, output, seconds
    from the first signal to the exit)."""
    values = {**_FAST, **params}
    args = ["--ros-args"] + [x for k, v in values.items() for x in ("-p", f"{k}:={v}")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "DPT_ROS_CACHE": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILD_STAGE, stage, str(int(signum)), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        preexec_fn=default_signals,
    )
    ended = time.monotonic()
    output = done.stdout + done.stderr
    signalled = [line.split()[2] for line in output.splitlines() if line.startswith("STAGE ")]
    assert signalled, output  # the stage was reached
    return done.returncode, output, ended - float(signalled[0])


def _clean(output: str) -> bool:
    return not any(s in output for s in ("Traceback", "RCLError", "terminate called"))


@pytest.mark.parametrize("stage", ["load", "warm_up"])
def test_sigterm_during_start_up_ends_at_once(tmp_path, stage):
    """Before: the model load and warm-up went on, then the node's publishers were made
    on the shut-down context: an RCLError traceback and exit status 1."""
    code, output, seconds = _run_stage(tmp_path, stage, signal.SIGTERM)
    assert code == 0, output
    assert _clean(output), output
    assert seconds < scaled(_STOP_BOUND_S), output
    assert "SIGTERM: stopped during start-up" in output
    assert "warmed up" not in output and "ready:" not in output


def test_sigterm_during_an_eager_engine_build_ends_the_build(tmp_path):
    """Before: the node waited for the whole build (45 s for dpt_hybrid on two cores),
    kept the engine, then failed with an RCLError traceback and exit status 1."""
    code, output, seconds = _run_stage(
        tmp_path, "build", signal.SIGTERM, backend="auto", engine_build="eager"
    )
    assert code == 0, output
    assert _clean(output), output
    assert seconds < scaled(_STOP_BOUND_S), output
    assert "SIGTERM: stopped during start-up" in output
    assert "stopped during an engine build: abandoned" in output
    pids = [int(line.split()[1]) for line in output.splitlines() if line.startswith("BUILD_PID")]
    assert pids, output
    for pid in pids:  # gone (a zombie is dead, waiting for init to reap it)
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    engines = tmp_path / "cache" / "engines"
    assert not engines.exists() or not list(engines.iterdir())  # nothing half-built kept


def test_a_second_ctrl_c_waits_for_the_worker(tmp_path):
    """A second Ctrl-C while the worker finishes its frame, and a third as the process
    exits. Before: a KeyboardInterrupt out of the worker's join, often "terminate called
    without an active exception" and SIGABRT."""
    code, output, seconds = _run_stage(tmp_path, "twice", signal.SIGINT)
    assert code == 0, output
    assert _clean(output), output
    assert seconds < scaled(_STOP_BOUND_S), output
    assert "ready:" in output
    assert "SIGINT: already stopping" in output
    assert "STAGE second" in output and "STAGE exit" in output


def test_run_node_puts_back_the_signal_handlers_it_found(capfd):
    """``run_node`` is a library call too (a test session, an application that runs a
    node then goes on). Before: it left SIGINT and SIGTERM ignored once it returned, so
    nothing could interrupt what followed (a later test's Ctrl-C hung until its
    timeout)."""
    from dpt_ros.node.main import run_node
    from dpt_ros.node.node import DptNode

    def handlers():
        return [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]

    before = handlers()
    args = ["dpt_node", "--ros-args", "-p", "device:=tpu", "-p", "depth.random_weights:=true"]
    assert run_node(DptNode, args) == 1
    assert "unknown device 'tpu'" in capfd.readouterr().err
    assert handlers() == before
