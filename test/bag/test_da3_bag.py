"""Depth Anything 3's outputs through the frame pipeline, the node and the bag tool:"""

from __future__ import annotations

import math

import pytest
from da3_cases import SMALL, check_small, da3_golden, scene_camera_info
from helpers import (
    rgb_msg,
)

from dpt_ros.ros.image_codec import image_msg_to_array

#: The camera of the metric golden (its ``intrinsics_image``), for scene_a's 640x480.
FX, FY, CX, CY = 600.0, 580.0, 319.5, 239.5


def test_bag_writes_the_small_goldens(small_file, scene_a_rgb, tmp_path):
    """dpt-ros bag at 280 on a bag of scene_a: depth/relative and depth/confidence
    within 1e-3 of the reference, at the image's stamps."""
    from helpers import read_bag, run_bag
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image

    store = get_typestore(Stores.ROS2_HUMBLE)
    inp = tmp_path / "in"
    with Writer(inp, version=8) as writer:
        info_conn = writer.add_connection(
            "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        image_conn = writer.add_connection(
            "/cam/image_raw", "sensor_msgs/msg/Image", typestore=store
        )
        writer.write(info_conn, 1, serialize_message(scene_camera_info()))
        writer.write(image_conn, 2, serialize_message(rgb_msg(scene_a_rgb, 3)))
    out = tmp_path / "out"
    rc = run_bag(
        str(inp), "-o", str(out), "--image-topic", "/cam/image_raw", "--depth-model", SMALL,
        "--depth-weights", small_file, "--network-size", "280x280", "--backend", "torch",
        "--output-size", "network", "-q",
    )  # fmt: skip
    assert rc == 0
    written = read_bag(out)
    ((_, _, raw_relative),) = written["/cam/depth/relative"]
    ((_, _, raw_confidence),) = written["/cam/depth/confidence"]
    relative = image_msg_to_array(deserialize_message(raw_relative, Image))
    confidence = image_msg_to_array(deserialize_message(raw_confidence, Image))
    check_small(da3_golden(SMALL, 280), relative, confidence)
    assert not math.isnan(float(relative.mean()))


@pytest.mark.parametrize("value", ("nan", "-1"))
def test_bag_refuses_a_bad_confidence_threshold(capsys, tmp_path, value):
    from helpers import one_error_line, run_bag, write_bag

    topic = write_bag(tmp_path / "in")
    rc = run_bag(
        str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--image-topic", topic,
        "--cloud-min-confidence", value, "--random-weights", "-q",
    )  # fmt: skip
    one_error_line(rc, capsys.readouterr().err, "--cloud-min-confidence")
    assert not (tmp_path / "out").exists()
