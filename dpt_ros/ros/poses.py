"""Poses and odometry as messages, and back: geometry_msgs/PoseArray and
nav_msgs/Odometry from numpy poses, :class:`~dpt_ros.anyview.OdometrySample` from a
nav_msgs/Odometry. Plain functions, no Node.

Conventions: a pose ``[R | t]`` here is ``x_parent = R x_child + t`` (the child's
frame in the parent's, as tf2 and nav_msgs give it); quaternions are x y z w.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import Pose as PoseMsg
from geometry_msgs.msg import PoseArray
from std_msgs.msg import Header

from dpt_ros.anyview.odometry import OdometrySample
from dpt_ros.ros.messages import copy_header, stamp_ns


def _quaternion(rotation: np.ndarray) -> np.ndarray:
    from dpt_ros.reconstruct.sim3 import rotation_to_quaternion

    return rotation_to_quaternion(rotation)


def pose_message(pose_3x4: np.ndarray) -> PoseMsg:
    """(3, 4) ``[R | t]`` (child in parent) -> geometry_msgs/Pose."""
    m = np.asarray(pose_3x4, np.float64)
    msg = PoseMsg()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in m[:, 3])
    q = _quaternion(m[:, :3])
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = (
        float(v) for v in q
    )
    return msg


def pose_array_message(header: Header, poses: np.ndarray) -> PoseArray:
    """(N, 3, 4) poses in ``header``'s frame -> PoseArray with that header."""
    msg = PoseArray()
    msg.header = copy_header(header)
    msg.poses = [pose_message(p) for p in poses]
    return msg


def odometry_message(
    header: Header, odom_frame: str, pose_3x4: np.ndarray, covariance: np.ndarray
) -> Any:
    """nav_msgs/Odometry: the frame ``header.frame_id`` (the camera's optical frame) at
    ``pose_3x4`` in ``odom_frame``, stamped as ``header``; ``covariance`` (6, 6) of x y z
    and the rotations about x y z; the twist is left unknown (covariance -1)."""
    from nav_msgs.msg import Odometry

    msg = Odometry()
    msg.header = Header(stamp=header.stamp, frame_id=odom_frame)
    msg.child_frame_id = header.frame_id
    msg.pose.pose = pose_message(pose_3x4)
    msg.pose.covariance = [float(v) for v in np.asarray(covariance, np.float64).ravel()]
    msg.twist.covariance = [-1.0] + [0.0] * 35
    return msg


def odometry_sample(msg: Any) -> OdometrySample:
    """A nav_msgs/Odometry -> :class:`OdometrySample` (unchecked: the buffer checks)."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return OdometrySample(
        stamp_ns(msg.header),
        msg.header.frame_id,
        msg.child_frame_id,
        np.array([p.x, p.y, p.z], np.float64),
        np.array([q.x, q.y, q.z, q.w], np.float64),
        np.asarray(msg.pose.covariance, np.float64).reshape(6, 6),
    )
