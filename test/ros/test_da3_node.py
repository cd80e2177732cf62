"""Depth Anything 3's outputs through the frame pipeline, the node and the bag tool:"""

from __future__ import annotations

import numpy as np
from da3_cases import METRIC, SMALL, check_small, da3_golden, scene_camera_info
from helpers import (
    camera_info,
    rgb_msg,
    small_image,
    spin_until,
    start_node,
    wait_for_subscribers,
)

from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays


def test_node_publishes_the_small_goldens(ros, small_file, scene_a_rgb):
    """dpt_node over rclpy at 280 on scene_a: depth/relative and depth/confidence on
    the network's grid within 1e-3 of the reference, and a cloud with a confidence
    field, all with the image's header."""
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.model_type", value=SMALL),
        Parameter("depth.weights", value=small_file),
        Parameter("network_width", value=280),
        Parameter("network_height", value=280),
        Parameter("output_size", value="network"),
        Parameter("relative_depth.scale", value=1.0),
        Parameter("cloud.min_confidence", value=1.5),
        Parameter("cloud.stride", value=1),  # pixel for pixel with depth/confidence
    )
    wait_for_subscribers(executor, probe)
    probe.info_pub.publish(scene_camera_info())
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(scene_a_rgb, 21))
    wanted = ("depth/relative", "depth/confidence", "points", "points_confident")
    assert spin_until(executor, lambda: all(probe.got[t] for t in wanted), 120)
    assert not probe.got["depth/sky"]
    for topic in wanted:
        assert probe.got[topic][0].header.stamp.sec == 21, topic
    relative = image_msg_to_array(probe.got["depth/relative"][0])
    confidence = image_msg_to_array(probe.got["depth/confidence"][0])
    check_small(da3_golden(SMALL, 280), relative, confidence)
    fields = pointcloud2_to_arrays(probe.got["points"][0])
    np.testing.assert_array_equal(fields["confidence"], confidence)
    assert np.isnan(fields["z"][confidence < 1.5]).all()
    # points_confident (cloud.confident_threshold 2.0): the same organised cloud, NaN
    # below 2.0 too, every other point as in points.
    confident = pointcloud2_to_arrays(probe.got["points_confident"][0])
    assert confident["z"].shape == fields["z"].shape
    unsure = confidence < 2.0
    assert unsure.any() and (~unsure).any()
    assert np.isnan(confident["z"][unsure]).all()
    for axis in "xyz":
        np.testing.assert_array_equal(confident[axis][~unsure], fields[axis][~unsure])


def _diagnostic(probe, key: str) -> str | None:
    for array in reversed(probe.diagnostics):
        for status in array.status:
            for kv in status.values:
                if kv.key == key:
                    return kv.value
    return None


def test_node_metric_da3_without_camera_info_says_why_once(ros, capfd):
    """No camera_info: depth/sky only, one warning for the camera however many frames,
    and /diagnostics says why (WARN); with camera_info the metres come."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.model_type", value=METRIC),
        Parameter("depth.random_weights", value=True),
        Parameter("network_width", value=56),
        Parameter("network_height", value=56),
        Parameter("diagnostics_period", value=0.2),
    )
    wait_for_subscribers(executor, probe)
    rgb = small_image(48, 64)
    for sec in range(3):
        probe.image_pub.publish(rgb_msg(rgb, sec + 1))
        assert spin_until(executor, lambda n=sec + 1: len(probe.got["depth/sky"]) >= n, 30)
    assert not probe.got["depth/image"] and not probe.got["points"]
    assert spin_until(
        executor, lambda: (_diagnostic(probe, "metric_depth") or "").startswith("none:"), 10
    )
    assert "no camera_info" in _diagnostic(probe, "metric_depth")
    (status,) = probe.diagnostics[-1].status
    assert status.level == DiagnosticStatus.WARN and "publishes no metres" in status.message
    err = capfd.readouterr().err
    assert err.count("publishes no metres") == 1, err

    probe.info_pub.publish(camera_info(64, 48))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(rgb, 9))
    assert spin_until(executor, lambda: bool(probe.got["depth/image"]), 30)
    depth = image_msg_to_array(probe.got["depth/image"][0])
    assert depth.dtype == np.float32 and (np.isfinite(depth) | np.isposinf(depth)).all()
    assert spin_until(executor, lambda: _diagnostic(probe, "metric_depth") == "published", 10)
