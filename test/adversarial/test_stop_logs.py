"""A node stopped while its camera still streams: after the stop signal, nothing but
the stop itself is logged. The third attack saw stale-camera_info warnings (the
camera_info subscription went first, images kept coming) and rosout errors (logging on
a context already gone) after Ctrl-C; each would read as a fault in a robot's logs."""

from __future__ import annotations

import signal
import time

import pytest
from attack import DPT_NODE, attack, node_argv
from helpers import camera_info, rgb_msg, small_image, spin_until
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_nothing_is_logged_after_the_stop_but_the_stop(ros, signum):
    executor, add = ros
    probe = add(Node("stop_log_probe"))
    image_pub = probe.create_publisher(Image, "image", 10)
    info_pub = probe.create_publisher(CameraInfo, "camera_info", 10)
    points: list = []
    probe.create_subscription(Image, "depth/image", points.append, 10)
    marks: dict[str, float] = {}

    def stream(proc) -> None:
        sec = [0]

        def publish() -> None:
            sec[0] += 1
            msg = rgb_msg(small_image(seed=sec[0]), sec[0])
            info = camera_info(64, 48)
            info.header = msg.header
            info_pub.publish(info)
            image_pub.publish(msg)

        assert spin_until(executor, lambda: (publish(), bool(points))[1], 240), "no depth"
        marks["signal"] = time.monotonic()
        proc.send_signal(signum)
        # the camera keeps streaming while the node stops (20 Hz for 3 s or until exit)
        end = time.monotonic() + 3.0
        while time.monotonic() < end and proc.poll() is None:
            publish()
            executor.spin_once(timeout_sec=0.05)

    # metres (relative_depth.scale), so the camera_info is used for points
    argv = node_argv(relative_depth__scale="1.0")
    done = attack([*DPT_NODE, *argv], during=stream, timeout=400)
    assert done.rc == 0, done.stderr[-3000:]
    output = done.stderr + done.stdout
    assert "Traceback" not in output
    after = output.split("ready:", 1)[-1]
    for line in after.splitlines():
        low = line.lower()
        assert "stale" not in low and "rosout" not in low and "[error]" not in low, line
        assert "failed to publish" not in low and "context" not in low, line
