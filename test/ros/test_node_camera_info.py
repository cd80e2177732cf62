"""dpt_node's camera_info handling over real rclpy: image_transport's sibling rule,
missing camera_info in /diagnostics, the published depth/camera_info and frame_id."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from helpers import FAST, camera_info, rgb_msg, small_image, spin_until
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from dpt_ros.node.node import DptNode

CALIBRATED = FAST + [
    Parameter("depth.random_weights", value=True),
    Parameter("relative_depth.scale", value=0.5),
    Parameter("relative_depth.shift", value=0.2),
]


class CameraProbe:
    """Publishes ``<ns>/image_rect`` and ``<ns>/camera_info``; records the node's
    ``points``, ``depth/camera_info`` and /diagnostics."""

    def __init__(self, add, ns: str = "/cam") -> None:
        self.node = add(Node("camera_probe"))
        self.image_pub = self.node.create_publisher(Image, f"{ns}/image_rect", 10)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{ns}/camera_info", 10)
        self.points: list[PointCloud2] = []
        self.infos: list[CameraInfo] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(PointCloud2, "/points", self.points.append, 10)
        self.node.create_subscription(CameraInfo, "/depth/camera_info", self.infos.append, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)


def remapped_node(add, *extra: Parameter) -> DptNode:
    return add(
        DptNode(
            cli_args=["--ros-args", "-r", "image:=/cam/image_rect"],
            parameter_overrides=CALIBRATED
            + list(extra)
            + [Parameter("diagnostics_period", value=0.2)],
        )
    )


def test_camera_info_is_the_image_topics_sibling(ros):
    """Remapping only the image (docs/ros.md's example) finds /cam/camera_info: points
    and depth/camera_info appear, and /diagnostics says how the two were paired."""
    executor, add = ros
    node = remapped_node(add)
    probe = CameraProbe(add)
    assert spin_until(executor, lambda: probe.info_pub.get_subscription_count() > 0, 10)
    assert node.status()["camera_info"].endswith("(/cam/camera_info)")
    msg = rgb_msg(small_image(48, 64), 5)
    info = camera_info(64, 48)
    info.header.stamp = msg.header.stamp
    probe.info_pub.publish(info)
    assert spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(msg)
    assert spin_until(executor, lambda: probe.points and probe.infos)
    assert node.status()["camera_info"].startswith("ok, paired by stamp")


def test_missing_camera_info_is_a_warning(ros):
    """Images without any camera_info: no points, and /diagnostics is WARN naming the
    topic it waits on (it said OK)."""
    executor, add = ros
    node = remapped_node(add)
    probe = CameraProbe(add)
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() > 0, 10)
    probe.image_pub.publish(rgb_msg(small_image(48, 64), 5))
    assert spin_until(executor, lambda: node.cameras[0].processed == 1)
    probe.diagnostics.clear()
    assert spin_until(executor, lambda: probe.diagnostics, 5)
    status = probe.diagnostics[-1].status[0]
    assert status.level == DiagnosticStatus.WARN
    assert "no camera_info on /cam/camera_info" in status.message
    assert not probe.points


def test_published_camera_info_and_frame_id_override(ros):
    """A raw, distorted camera_info with K != P: depth/camera_info is the rectified
    camera (D = 0, K = P), every output carries the frame_id parameter's frame, and the
    points follow P."""
    executor, add = ros
    node = remapped_node(add, Parameter("frame_id", value="cam_optical"))
    probe = CameraProbe(add)
    assert spin_until(executor, lambda: probe.info_pub.get_subscription_count() > 0, 10)
    info = camera_info(64, 48, frame_id="")
    info.d = [-0.3, 0.09, 0.0, 0.0, 0.0]
    info.p = [40.0, 0.0, 30.0, 0.0, 0.0, 42.0, 25.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    probe.info_pub.publish(info)
    assert spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(small_image(48, 64), 6, frame_id=""))
    assert spin_until(executor, lambda: probe.points and probe.infos)
    out = probe.infos[0]
    assert out.header.frame_id == "cam_optical" and probe.points[0].header.frame_id == "cam_optical"
    assert list(out.d) == [0.0] * 5
    assert list(out.k) == [40.0, 0.0, 30.0, 0.0, 42.0, 25.0, 0.0, 0.0, 1.0]
    assert list(out.p)[:3] == [40.0, 0.0, 30.0]
    from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

    fields = pointcloud2_to_arrays(probe.points[0])
    z, x = fields["z"], fields["x"]
    u = np.arange(64)[None, :]
    ok = np.isfinite(z)
    np.testing.assert_allclose(x[ok], ((u - 30.0) * z / 40.0)[ok], rtol=1e-5, atol=1e-6)


def test_cloud_enabled_at_run_time_publishes_points_of_a_metric_model(ros):
    """cloud.enabled false at start, true at run time: a metric model's points appear
    (there was no publisher for them)."""
    executor, add = ros
    node = add(
        DptNode(
            cli_args=["--ros-args", "-r", "image:=/cam/image_rect"],
            parameter_overrides=FAST
            + [
                Parameter("depth.model_type", value="dpt_hybrid_nyu"),
                Parameter("depth.random_weights", value=True),
                Parameter("cloud.enabled", value=False),
            ],
        )
    )
    probe = CameraProbe(add)
    assert spin_until(executor, lambda: probe.info_pub.get_subscription_count() > 0, 10)
    node.set_parameters([Parameter("cloud.enabled", value=True)])
    probe.info_pub.publish(camera_info(64, 48))
    assert spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    assert spin_until(
        executor, lambda: node.cameras[0].publishers["points"].get_subscription_count(), 5
    )
    probe.image_pub.publish(rgb_msg(small_image(48, 64), 7))
    assert spin_until(executor, lambda: probe.points)


def test_diagnostics_judge_the_recent_window(ros):
    """A corrupt frame makes /diagnostics WARN only while it is recent; a camera_info
    rejected on every frame keeps it WARN and says why."""
    executor, add = ros
    node = remapped_node(add)
    node.diagnostics.recent.window = 1.0  # seconds, instead of 10, to keep the test short
    probe = CameraProbe(add)
    assert spin_until(executor, lambda: probe.info_pub.get_subscription_count() > 0, 10)
    probe.info_pub.publish(camera_info(64, 48))
    assert spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    bad = rgb_msg(small_image(48, 64), 1)
    bad.step = 10
    probe.image_pub.publish(bad)
    assert spin_until(executor, lambda: node.status()["rejected"] == "1", 10)
    assert any(level == DiagnosticStatus.WARN for level, _ in node.problems())
    probe.image_pub.publish(rgb_msg(small_image(48, 64), 2))
    assert spin_until(executor, lambda: probe.points)
    assert spin_until(executor, lambda: not node.problems(), 5)
    assert node.status()["rejected"] == "1"  # the total stays

    probe.info_pub.publish(camera_info(640, 480))  # another resolution, from now on
    assert spin_until(executor, lambda: node.cameras[0].camera_info.width == 640, 5)
    for sec in (3, 4):
        probe.image_pub.publish(rgb_msg(small_image(48, 64), sec))
        assert spin_until(executor, lambda s=sec: node.cameras[0].processed == s - 1)
    texts = [text for _, text in node.problems()]
    assert any("camera_info rejected: camera_info is 640x480" in t for t in texts), texts
