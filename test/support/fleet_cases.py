"""Shared test set-up."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import NET, read_bag, write_bag

from dpt_ros.cli.main import main
from dpt_ros.ros.image_codec import image_msg_to_array


@pytest.fixture(scope="module")
def inputs(module_tmp):
    """Two good bags (sqlite3, MCAP) and a corrupt one."""
    root = module_tmp("fleet_in")
    write_bag(root / "run_a")
    write_bag(root / "run_b", storage="mcap")
    (root / "broken.db3").write_bytes(b"SQLite format 3\x00 but not really")
    return [root / "run_a", root / "run_b", root / "broken.db3"]


def run_fleet(capsys, *argv) -> tuple[int, str, str]:
    code = main(["bag", *map(str, argv), "--image-topic", "/cam/image_raw", *NET])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_same_outputs(got_path, want_path, exact: bool = True) -> None:
    """The same messages at the same times (compared as messages: CDR padding bytes are
    not part of a message and may differ). ``exact=False``: images equal to 1e-5 of their
    largest value (another process, other thread counts: other float summation orders)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    types = {
        "sensor_msgs/msg/Image": Image,
        "sensor_msgs/msg/CameraInfo": CameraInfo,
        "sensor_msgs/msg/PointCloud2": PointCloud2,
    }
    got, want = outputs_of(got_path), outputs_of(want_path)
    assert sorted(got) == sorted(want) and want
    for topic in want:
        assert len(got[topic]) == len(want[topic]), topic
        for (tg, kind, g), (tw, _, w) in zip(got[topic], want[topic]):
            assert tg == tw
            mg, mw = deserialize_message(g, types[kind]), deserialize_message(w, types[kind])
            if exact or kind != "sensor_msgs/msg/Image" or mw.encoding != "32FC1":
                assert mg == mw or (not exact and topic.endswith("colored")), topic
                continue
            assert mg.header == mw.header and (mg.height, mg.width) == (mw.height, mw.width)
            a, b = image_msg_to_array(mg), image_msg_to_array(mw)
            assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max(), topic


def outputs_of(path) -> dict:
    """The dpt outputs of a bag (the copied inputs are checked by test_bag)."""
    return {t: m for t, m in read_bag(path).items() if "/depth/" in t or t == "/cam/points"}
