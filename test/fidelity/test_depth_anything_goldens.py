"""Depth Anything V2 through every public path: the sizing rule, the checkpoint checks,"""

from __future__ import annotations

import numpy as np
import pytest
from depth_anything_cases import END_TO_END_RTOL, RELATIVE
from helpers import rgb_msg

from dpt_ros.cli.main import main
from dpt_ros.models import Predictor
from dpt_ros.ros.image_codec import image_msg_to_array


def test_predict_command_matches_golden(tmp_path, capsys, det_checkpoint, fixtures_dir, golden):
    out = tmp_path / "out"
    argv = ["predict", "--model-type", RELATIVE, "--weights", str(det_checkpoint(RELATIVE))]
    argv += ["--input", str(fixtures_dir / "scene_a.png"), "--output", str(out)]
    argv += ["--device", "cpu", "--precision", "fp32", "--backend", "torch"]
    assert main(argv) == 0, capsys.readouterr().err
    depth = np.load(out / "scene_a_depth.npy")
    assert golden(RELATIVE).relative_error("final", depth) <= END_TO_END_RTOL


def test_bag_command_matches_golden(tmp_path, capsys, det_checkpoint, scene_a_rgb, golden):
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import Reader, Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(tmp_path / "in", version=8) as writer:
        conn = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=store)
        writer.write(conn, 1_000, serialize_message(rgb_msg(scene_a_rgb, 3)))
    argv = ["bag", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--depth-model", RELATIVE]
    argv += ["--image-topic", "/cam/image_raw"]
    argv += ["--depth-weights", str(det_checkpoint(RELATIVE)), "--device", "cpu", "-q"]
    argv += ["--backend", "torch"]
    assert main([*argv, "--precision", "fp32"]) == 0, capsys.readouterr().err
    with Reader(tmp_path / "out") as reader:
        found = [
            deserialize_message(raw, Image)
            for c, _, raw in reader.messages()
            if c.topic == "/cam/depth/relative"
        ]
    assert len(found) == 1 and found[0].header.stamp.sec == 3
    assert golden(RELATIVE).relative_error("final", image_msg_to_array(found[0])) <= END_TO_END_RTOL


def test_onnx_export_and_onnxruntime_backend_match_the_original(
    tmp_path, det_checkpoint, golden, scene_a_rgb
):
    """depth_anything_v2_vits exported at the golden's network input (686x518, the
    640x480 camera's): the export's own check, then the onnxruntime backend through the
    Predictor on scene_a against the original's end-to-end result."""
    pytest.importorskip("onnxruntime")
    from dpt_ros.runtime.export import export_onnx

    path = tmp_path / "dav2_vits.onnx"
    weights = det_checkpoint(RELATIVE)
    report = export_onnx(RELATIVE, path, weights=weights, width=686, height=518, check=True)
    assert report.max_rel_diff is not None and report.max_rel_diff <= 1e-4
    predictor = Predictor(RELATIVE, backend="onnxruntime", engine=str(path), device="cpu")
    assert predictor.input_size((480, 640)) == (518, 686)
    final = predictor.predict(scene_a_rgb)
    assert golden(RELATIVE).relative_error("final", final) <= END_TO_END_RTOL
