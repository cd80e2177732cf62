"""Poses and odometry as messages (dpt_ros.ros.poses): the pose's quaternion and
position, the Odometry's frames and covariance, and an Odometry read back."""

from __future__ import annotations

import numpy as np
import pytest
from reconstruct_scenes import rotation
from std_msgs.msg import Header

from dpt_ros.anyview import OdometrySample
from dpt_ros.reconstruct.sim3 import rotation_to_quaternion
from dpt_ros.ros.poses import odometry_fields, odometry_message, pose_array_message


def test_pose_array_and_odometry_round_trip():
    header = Header(frame_id="cam_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    r = rotation([0.2, -1.0, 0.4], 0.9)
    q = rotation_to_quaternion(r)
    position = np.array([1.0, -2.0, 0.5])
    array = pose_array_message(
        header, np.stack([np.zeros(3), position]), np.stack([[0, 0, 0, 1.0], q])
    )
    assert array.header.frame_id == "cam_optical" and len(array.poses) == 2
    assert array.poses[0].orientation.w == pytest.approx(1.0)
    covariance = np.diag([1.0, 2, 3, 4, 5, 6])
    msg = odometry_message(header, "odom", position, q, covariance)
    assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "cam_optical")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 34)
    assert msg.twist.covariance[0] == -1.0
    back = OdometrySample(*odometry_fields(msg))
    assert back.stamp_ns == 12 * 10**9 + 34
    assert np.allclose(back.position, [1.0, -2.0, 0.5])
    assert np.allclose(back.pose().rotation, r)
    assert np.allclose(back.covariance, covariance)
