"""Poses and odometry as messages, and back: geometry_msgs/PoseArray and
nav_msgs/Odometry from positions and quaternions, the fields of a nav_msgs/Odometry as
numpy arrays. Plain functions, no Node.

Conventions: a pose ``[R | t]`` here is ``x_parent = R x_child + t`` (the child's
frame in the parent's, as tf2 and nav_msgs give it); quaternions are x y z w.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import Pose as PoseMsg
from geometry_msgs.msg import PoseArray
from std_msgs.msg import Header

from dpt_ros.ros.messages import copy_header, stamp_ns


def pose_message(position: np.ndarray, quaternion: np.ndarray) -> PoseMsg:
    """(3,) position and (4,) unit quaternion x y z w (child in parent) ->
    geometry_msgs/Pose."""
    msg = PoseMsg()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in position)
    q = np.asarray(quaternion, np.float64)
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = (
        float(v) for v in q
    )
    return msg


def pose_array_message(header: Header, positions: np.ndarray, quaternions: np.ndarray) -> PoseArray:
    """(N, 3) positions and (N, 4) quaternions x y z w in ``header``'s frame -> PoseArray
    with that header."""
    msg = PoseArray()
    msg.header = copy_header(header)
    msg.poses = [pose_message(p, q) for p, q in zip(positions, quaternions)]
    return msg


def odometry_message(
    header: Header,
    odom_frame: str,
    position: np.ndarray,
    quaternion: np.ndarray,
    covariance: np.ndarray,
) -> Any:
    """nav_msgs/Odometry: the frame ``header.frame_id`` (the camera's optical frame) at
    ``position`` and ``quaternion`` (x y z w) in ``odom_frame``, stamped as ``header``; ``covariance`` (6, 6) of x y z
    and the rotations about x y z; the twist is left unknown (covariance -1)."""
    from nav_msgs.msg import Odometry  # optional: only the windows need nav_msgs

    msg = Odometry()
    msg.header = Header(stamp=header.stamp, frame_id=odom_frame)
    msg.child_frame_id = header.frame_id
    msg.pose.pose = pose_message(position, quaternion)
    msg.pose.covariance = [float(v) for v in np.asarray(covariance, np.float64).ravel()]
    msg.twist.covariance = [-1.0] + [0.0] * 35
    return msg


def odometry_fields(msg: Any) -> tuple[int, str, str, np.ndarray, np.ndarray, np.ndarray]:
    """A nav_msgs/Odometry -> (stamp ns, frame_id, child_frame_id, position (3,),
    orientation (4,) x y z w, pose covariance (6, 6)), unchecked."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return (
        stamp_ns(msg.header),
        msg.header.frame_id,
        msg.child_frame_id,
        np.array([p.x, p.y, p.z], np.float64),
        np.array([q.x, q.y, q.z, q.w], np.float64),
        np.asarray(msg.pose.covariance, np.float64).reshape(6, 6),
    )
