"""Depth Anything V2 through every public path: the sizing rule, the checkpoint checks,"""

from __future__ import annotations

import numpy as np
from depth_anything_cases import END_TO_END_RTOL, METRIC, RELATIVE
from helpers import Probe, rgb_msg, spin_until, wait_for_subscribers
from rclpy.parameter import Parameter

from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays


def _node(add, model_type: str, weights) -> object:
    from dpt_ros.node.node import DptNode

    overrides = [
        Parameter("device", value="cpu"),
        Parameter("backend", value="torch"),
        Parameter("precision", value="fp32"),
        Parameter("depth.model_type", value=model_type),
        Parameter("depth.weights", value=str(weights)),
    ]
    return add(DptNode(parameter_overrides=overrides))


def test_node_relative_matches_golden(ros, det_checkpoint, scene_a_rgb, golden):
    executor, add = ros
    _node(add, RELATIVE, det_checkpoint(RELATIVE))
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    probe.image_pub.publish(rgb_msg(scene_a_rgb, 5))
    assert spin_until(executor, lambda: probe.got["depth/relative"])
    out = probe.got["depth/relative"][0]
    assert out.encoding == "32FC1" and out.header.stamp.sec == 5
    assert golden(RELATIVE).relative_error("final", image_msg_to_array(out)) <= END_TO_END_RTOL
    assert not probe.got["depth/image"] and not probe.got["points"]  # relative: never metres


def test_node_metric_publishes_metres_and_a_cloud(ros, det_checkpoint, scene_a_rgb, golden):
    """A metric type publishes depth/image in metres and points with no calibration; the
    cloud back-projects depth/image through the camera's intrinsics exactly."""
    from helpers import camera_info

    executor, add = ros
    node = _node(add, METRIC, det_checkpoint(METRIC))
    assert "depth/image" in node.pipeline.topics() and "points" in node.pipeline.topics()
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    probe.info_pub.publish(camera_info(640, 480))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(scene_a_rgb, 9))
    assert spin_until(executor, lambda: probe.got["depth/image"] and probe.got["points"])
    depth_msg = probe.got["depth/image"][0]
    assert depth_msg.encoding == "32FC1" and depth_msg.header.stamp.sec == 9
    depth = image_msg_to_array(depth_msg)
    assert golden(METRIC).relative_error("final", depth) <= END_TO_END_RTOL
    assert 0 < np.nanmin(depth) and np.nanmax(depth) < 20.0
    cloud = pointcloud2_to_arrays(probe.got["points"][0])
    stride = node.pipeline.cloud_stride(640)
    intr = Intrinsics.from_camera_info(camera_info(640, 480))
    z = depth[::stride, ::stride]
    v, u = np.mgrid[0:480:stride, 0:640:stride]
    kept = np.isfinite(cloud["z"])  # the flying-pixel filter (cloud.edge_filter) drops some
    assert kept.mean() > 0.5, kept.mean()
    z, u, v = z[kept], u[kept], v[kept]
    np.testing.assert_allclose(cloud["z"][kept], z, rtol=1e-6)
    np.testing.assert_allclose(cloud["x"][kept], (u - intr.cx) * z / intr.fx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cloud["y"][kept], (v - intr.cy) * z / intr.fy, rtol=1e-5, atol=1e-5)


def test_node_logs_the_weights_licence(ros, capfd):
    from dpt_ros.node.node import DptNode

    _, add = ros
    overrides = [
        Parameter("device", value="cpu"),
        Parameter("backend", value="torch"),
        Parameter("network_width", value=28),
        Parameter("network_height", value=28),
        Parameter("depth.model_type", value="depth_anything_v2_vitb"),
        Parameter("depth.random_weights", value=True),
    ]
    add(DptNode(parameter_overrides=overrides))
    captured = capfd.readouterr()
    assert "depth_anything_v2_vitb (weights licence CC-BY-NC-4.0)" in captured.out + captured.err
