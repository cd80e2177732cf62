"""``dpt_node`` stopped by SIGINT or SIGTERM while a frame is being inferred: the worker
publishes nothing on the dead context, no traceback, exit status 0.

The node runs in a child process (``dpt_ros.node.node.main``, as ``ros2 run`` starts it)
whose pipeline signals its own process as the first frame reaches the model and then
waits a little, so the signal always lands with a frame in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import rgb_msg, small_image
from rclpy.node import Node
from sensor_msgs.msg import Image

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import os, sys, time
from dpt_ros.node import node as dpt_node
from dpt_ros.pipeline.frames import FramePipeline

original = FramePipeline.process_batch

def signal_then_run(self, *args, **kwargs):
    os.kill(os.getpid(), int(sys.argv[1]))
    time.sleep(1.0)  # rclpy's handler shuts the context down meanwhile
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
    )
    try:
        deadline = time.monotonic() + 120
        sec = 0
        while child.poll() is None and time.monotonic() < deadline:
            sec += 1
            pub.publish(rgb_msg(small_image(seed=sec), sec))
            executor.spin_once(timeout_sec=0.2)
        output = child.communicate(timeout=60)[0]
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, output
    assert "Traceback" not in output and "RCLError" not in output, output
    assert "ready:" in output  # the node was up and the signal came during inference
    assert output.count("RANDOM weights") == 1, output  # one warning, not three
