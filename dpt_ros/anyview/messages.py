"""A finished window (:class:`~dpt_ros.anyview.WindowOutput`) as the messages the node
publishes and the bag tool writes: depth/relative, depth/image (when the scale is
known), depth/confidence, any_view/poses, any_view/odometry (when the scale is known)
and any_view/points. Plain functions on numpy arrays and messages: the one module of
:mod:`dpt_ros.anyview` that builds ROS messages (message packages, no rclpy; the rest
of the package imports no ROS), above :mod:`dpt_ros.ros` and
:mod:`dpt_ros.reconstruct`, below the node and the bag tool that both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.anyview.window import WindowOutput
from dpt_ros.reconstruct.chain import CONFIDENT_QUANTILE, back_project
from dpt_ros.reconstruct.sim3 import rotation_to_quaternion
from dpt_ros.ros.camera import camera_matrix, scale_camera_info
from dpt_ros.ros.image_codec import depth_to_image_msg
from dpt_ros.ros.pointcloud import make_pointcloud2
from dpt_ros.ros.poses import odometry_message, pose_array_message

#: The window's own topics (relative to the camera's namespace).
POSES_TOPIC = "any_view/poses"
ODOMETRY_TOPIC = "any_view/odometry"
POINTS_TOPIC = "any_view/points"
#: Every topic of a window, in the order :func:`window_messages` builds them.
WINDOW_TOPICS = (
    "depth/relative",
    "depth/image",
    "depth/confidence",
    POSES_TOPIC,
    ODOMETRY_TOPIC,
    POINTS_TOPIC,
)
#: Depth pixels taken every this many pixels for any_view/points.
POINT_STRIDE = 4


def intrinsics_of(info: CameraInfo | None, hw: tuple[int, int]) -> np.ndarray | None:
    """(3, 3) pixels of an image of size ``hw`` from its camera_info, or None."""
    if info is None:
        return None
    try:
        if (info.height, info.width) != hw:
            info = scale_camera_info(info, hw[1], hw[0])
        return camera_matrix(info)[0]
    except ValueError:
        return None


def window_points(window: Any, current_from_world: np.ndarray) -> np.ndarray:
    """(1, M, 3) float32 confident points of every view, in the current optical frame:
    per view, every :data:`POINT_STRIDE`-th pixel whose confidence is at least the
    view's median."""
    points = []
    for i in range(len(window)):
        depth, confidence = window.depth[i], window.confidence[i]
        rows, cols = np.mgrid[0 : depth.shape[0] : POINT_STRIDE, 0 : depth.shape[1] : POINT_STRIDE]
        ok = np.isfinite(depth[rows, cols]) & (depth[rows, cols] > 0)
        if not ok.any():
            continue
        c = confidence[rows, cols]
        ok &= c >= np.quantile(c[ok], CONFIDENT_QUANTILE)
        world = back_project(
            depth, window.intrinsics[i], window.camera_from_world[i], rows[ok], cols[ok]
        )
        points.append(world @ current_from_world[:, :3].T + current_from_world[:, 3])
    xyz = np.concatenate(points) if points else np.zeros((0, 3))
    return xyz.astype(np.float32)[None]


def window_messages(
    out: WindowOutput,
    header: Header,
    odom_frame: str,
    wanted: Callable[[str], bool] = lambda topic: True,
) -> dict[str, Any]:
    """{topic: message} of the current frame of ``out``, each with ``header`` (the
    odometry in ``odom_frame``), for the topics of :data:`WINDOW_TOPICS` that are
    ``wanted``. depth/image, any_view/odometry and any_view/points only when the
    window's scale is known (:attr:`WindowOutput.scale_known`)."""
    depth = out.window.depth[-1]
    messages: dict[str, Any] = {}
    if wanted("depth/relative"):
        # As without windows: relative inverse depth (larger = nearer), 0 where the
        # depth is invalid; here the inverse of the window's depth, in 1 / its unit.
        with np.errstate(divide="ignore", invalid="ignore"):
            inverse = np.where(np.isfinite(depth) & (depth > 0), 1.0 / depth, 0.0)
        messages["depth/relative"] = depth_to_image_msg(inverse.astype(np.float32), header)
    if out.scale_known and wanted("depth/image"):
        messages["depth/image"] = depth_to_image_msg(depth, header)
    if wanted("depth/confidence"):
        messages["depth/confidence"] = depth_to_image_msg(out.window.confidence[-1], header)
    if wanted(POSES_TOPIC):
        views = out.current_from_views
        quaternions = np.stack([rotation_to_quaternion(v[:, :3]) for v in views])
        messages[POSES_TOPIC] = pose_array_message(header, views[:, :, 3], quaternions)
    if out.scale_known and wanted(ODOMETRY_TOPIC):
        messages[ODOMETRY_TOPIC] = odometry_message(
            header,
            odom_frame,
            out.world_from_current.translation,
            rotation_to_quaternion(out.world_from_current.rotation),
            out.covariance,
        )
    if out.scale_known and wanted(POINTS_TOPIC):
        current_from_world = out.world_from_current.inverse().matrix()
        xyz = window_points(out.window, current_from_world)
        messages[POINTS_TOPIC] = make_pointcloud2(header, xyz)
    return messages
