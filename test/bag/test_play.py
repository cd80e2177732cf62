"""``dpt-ros play``: a small bag published to an in-process subscriber over real DDS."""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import rclpy
from helpers import scaled
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from dpt_ros.cli.main import main

T0 = 1_700_000_000_000_000_000
PERIOD = 100_000_000  # 10 Hz
N = 4
# Other processes on this machine may use ROS too: a unique namespace, and a random
# domain (see the listener fixture).
NS = f"/play_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def write_bag(path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        image = writer.add_connection(f"{NS}/image_raw", "sensor_msgs/msg/Image", typestore=store)
        info = writer.add_connection(
            f"{NS}/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        chat = writer.add_connection(f"{NS}/chatter", "std_msgs/msg/String", typestore=store)
        for i in range(N):
            msg = Image(height=2, width=3, encoding="rgb8", step=9)
            msg.data = bytes(range(i, i + 18))
            msg.header.frame_id = "cam"
            msg.header.stamp.sec = 100 + i
            t = T0 + i * PERIOD
            writer.write(image, t, serialize_message(msg))
            cam = CameraInfo(width=3, height=2)
            cam.header.stamp.sec = 100 + i
            writer.write(info, t, serialize_message(cam))
            writer.write(chat, t + 1, serialize_message(String(data=f"m{i}")))


class Listener:
    """A subscriber node on its own context, spun on a thread."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("play_listener", context=self.context)
        self.lock = threading.Lock()
        self.received: dict[str, list] = {"image": [], "info": [], "clock": [], "chatter": []}
        self.on_image = None
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        best_effort = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(Image, f"{NS}/image_raw", self._cb("image"), reliable)
        self.node.create_subscription(CameraInfo, f"{NS}/camera_info", self._cb("info"), reliable)
        # Like rclpy's TimeSource: /clock best effort.
        self.node.create_subscription(Clock, "/clock", self._cb("clock"), best_effort)
        self.node.create_subscription(String, f"{NS}/chatter", self._cb("chatter"), reliable)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # shutdown while spinning
            pass

    def _cb(self, key: str):
        def callback(msg) -> None:
            with self.lock:
                self.received[key].append((time.monotonic(), msg))
            if key == "image" and self.on_image is not None:
                self.on_image(len(self.received["image"]))

        return callback

    def wait_for(self, key: str, count: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + scaled(timeout)
        while time.monotonic() < end and len(self.received[key]) < count:
            time.sleep(0.02)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout=5)


@pytest.fixture
def listener(monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random.randint(20, 99)))
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture
def bag(tmp_path) -> Path:
    path = tmp_path / "bag"
    write_bag(path)
    return path


def test_play_images_camera_info_and_clock(bag, listener, capsys):
    start = time.monotonic()
    assert main(["play", str(bag), "--rate", "2", "--delay", "1.0"]) == 0
    listener.wait_for("image", N)
    listener.wait_for("info", N)
    images = [m for _, m in listener.received["image"]]
    assert [m.header.stamp.sec for m in images] == [100 + i for i in range(N)]
    assert bytes(images[2].data) == bytes(range(2, 20))
    assert images[0].encoding == "rgb8" and images[0].header.frame_id == "cam"
    assert len(listener.received["info"]) == N
    assert listener.received["chatter"] == []  # only camera topics by default
    # Paced at twice the recorded rate: 3 periods of 0.1 s take >= 0.15 s.
    times = [t for t, _ in listener.received["image"]]
    assert times[-1] - times[0] >= 0.12
    assert times[-1] - start < 10
    clock = [m.clock.sec * 10**9 + m.clock.nanosec for _, m in listener.received["clock"]]
    assert len(clock) >= N
    assert clock == sorted(clock)
    assert clock[-1] == T0 + (N - 1) * PERIOD and min(clock) >= T0
    assert f"published {2 * N} message(s)" in capsys.readouterr().err


def test_play_selected_topics_without_clock(bag, listener):
    assert (
        main(
            [
                "play",
                str(bag),
                "--topics",
                f"{NS}/chatter",
                "--no-clock",
                "--rate",
                "10",
                "--delay",
                "1.0",
            ]
        )
        == 0
    )
    listener.wait_for("chatter", N)
    time.sleep(0.2)
    assert [m.data for _, m in listener.received["chatter"]] == [f"m{i}" for i in range(N)]
    assert listener.received["image"] == [] and listener.received["clock"] == []


def test_play_loop_stops_cleanly_on_ctrl_c(bag, listener, capsys):
    def interrupt(count: int) -> None:
        if count == 2 * N + 1:  # into the third pass
            os.kill(os.getpid(), signal.SIGINT)

    listener.on_image = interrupt
    # Should the listener never hear the loop (discovery), Ctrl-C comes anyway: the test
    # then fails on the count below instead of looping until CI's time runs out.
    backstop = threading.Timer(scaled(120), os.kill, (os.getpid(), signal.SIGINT))
    # Ctrl-C as in a terminal, whatever this process inherited or an earlier test left
    # (a runner in the background ignores SIGINT; the CLI keeps an ignored one ignored).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    backstop.start()
    try:
        assert main(["play", str(bag), "--loop", "--rate", "5", "--delay", "1.0"]) == 0
    finally:
        backstop.cancel()
        signal.signal(signal.SIGINT, inherited)
    err = capsys.readouterr().err
    assert "stopped (Ctrl-C)" in err and re.search(r"\b[23] complete pass", err)
    assert len(listener.received["image"]) >= 2 * N + 1


def test_play_unknown_topic_is_an_error(bag, capsys):
    assert main(["play", str(bag), "--topics", "/nope"]) == 2
    err = capsys.readouterr().err
    assert "/nope is not in the bag" in err and f"{NS}/image_raw (sensor_msgs/msg/Image)" in err
    assert "does not exist" in (
        main(["play", str(bag) + "_missing"]) == 2 and capsys.readouterr().err
    )
