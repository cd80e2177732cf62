"""``dpt-ros bag --temporal``: the node's temporal stabilisation over a bag, and each
bag of a run starting its stream afresh (outputs independent of the order of bags).

The depth model is the jittered one of ``jittered_depth`` (each frame's raw depth the
same scene times a factor the frame carries), loaded through ``bag_job.make_predictor``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import one_error_line, read_bag, run_bag, small_image
from jittered_depth import jitter, marked, relative_scales
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from dpt_ros.cli.bag import job as bag_job
from dpt_ros.ros.image_codec import image_msg_to_array

H, W = 48, 64
TOPIC = "/cam/image_raw"
FLAGS = [
    "--image-topic",
    TOPIC,
    "--depth-model",
    "depth_anything_v2_vits",
    "--network-size",
    "56x56",
    "--random-weights",
    "--backend",
    "torch",
    "-q",
]


@pytest.fixture(autouse=True)
def jittered(monkeypatch):
    plain = bag_job.make_predictor
    monkeypatch.setattr(bag_job, "make_predictor", lambda options: jitter(plain(options)))


def _write_bag(path: Path, factors: list[float], first_frame: int) -> list[float]:
    """A bag of the same scene at 10 Hz, frame ``k`` carrying ``factors[k]``, stamps
    from ``first_frame`` tenths of a second. Returns the factors as carried."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    base = small_image(H, W)
    carried = []
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=store)
        for k, wanted in enumerate(factors):
            rgb, factor = marked(base, wanted)
            carried.append(factor)
            msg = Image(height=H, width=W, encoding="rgb8", step=W * 3)
            msg.data = rgb.tobytes()
            msg.header.frame_id = "cam_optical"
            n = first_frame + k
            msg.header.stamp.sec, msg.header.stamp.nanosec = n // 10, (n % 10) * 100_000_000
            writer.write(conn, 1_000_000_000 + n * 100_000_000, serialize_message(msg))
    return carried


def _relative(out: Path) -> list[np.ndarray]:
    return [
        image_msg_to_array(deserialize_message(data, Image))
        for _, _, data in read_bag(out)["/cam/depth/relative"]
    ]


def test_bag_temporal_writes_stabilised_relative_depth(tmp_path):
    carried = _write_bag(tmp_path / "in", [1.0, 1.25, 0.8, 1.2, 0.85, 1.15], 0)
    assert run_bag(str(tmp_path / "in"), "-o", str(tmp_path / "out"), *FLAGS, "--temporal") == 0
    written = _relative(tmp_path / "out")
    assert len(written) == len(carried)
    raw_spread = np.std(np.asarray(carried) / carried[0])
    spread = np.std(relative_scales(written))
    assert raw_spread > 0.15
    assert spread < raw_spread / 3, (spread, raw_spread)


def test_bags_of_one_run_do_not_depend_on_their_order(tmp_path):
    """Bag b's stamps follow bag a's, so a stream carried over from a (no reset per bag)
    would fit b's first frame to a's last output and change it."""
    _write_bag(tmp_path / "a", [1.0, 1.3, 0.8], 0)
    _write_bag(tmp_path / "b", [1.2, 0.9, 1.1], 3)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert run_bag(a, b, "-o", str(tmp_path / "ab"), *FLAGS, "--temporal") == 0
    assert run_bag(b, a, "-o", str(tmp_path / "ba"), *FLAGS, "--temporal") == 0
    for name in ("a", "b"):
        first, second = _relative(tmp_path / "ab" / name), _relative(tmp_path / "ba" / name)
        assert len(first) == 3
        for x, y in zip(first, second):
            np.testing.assert_array_equal(x, y)


def test_bag_temporal_flags_are_checked_as_the_parameters(tmp_path, capsys):
    _write_bag(tmp_path / "in", [1.0], 0)
    rc = run_bag(
        str(tmp_path / "in"), "-o", str(tmp_path / "out"), *FLAGS, "--temporal-smoothing", "0"
    )
    one_error_line(rc, capsys.readouterr().err, "--temporal-smoothing=0.0 is outside 0.01..1.0")
    assert not (tmp_path / "out").exists()
