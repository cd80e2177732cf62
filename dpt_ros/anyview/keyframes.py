"""When the current frame becomes a keyframe: by stamp time, and with odometry by the
camera's motion since the last keyframe. No torch or ROS import."""

from __future__ import annotations

import math

import numpy as np

from dpt_ros.anyview.options import Pose


class KeyframeSelector:
    """Decides, frame by frame, whether a frame becomes a keyframe.

    Args:
        period: seconds (stamp time) since the last keyframe; 0 = not by time.
        translation: metres of camera motion since the last keyframe; 0 = not by it.
        rotation_deg: degrees of camera rotation since the last keyframe; 0 = not by it.
    """

    def __init__(self, period: float, translation: float = 0.0, rotation_deg: float = 0.0) -> None:
        self.period = period
        self.translation = translation
        self.rotation_deg = rotation_deg
        self.last_stamp_ns: int | None = None
        self.last_pose: Pose | None = None

    def reset(self) -> None:
        self.last_stamp_ns = None
        self.last_pose = None

    def why(self, stamp_ns: int, pose: Pose | None = None) -> str | None:
        """Why the frame at ``stamp_ns`` (camera pose ``pose`` in the odometry's world,
        when known) becomes a keyframe (``first``, ``time``, ``translation``,
        ``rotation``), or None."""
        if self.last_stamp_ns is None:
            return "first"
        if self.period > 0 and (stamp_ns - self.last_stamp_ns) * 1e-9 >= self.period:
            return "time"
        if pose is not None and self.last_pose is not None:
            moved = float(np.linalg.norm(pose.translation - self.last_pose.translation))
            if self.translation > 0 and moved >= self.translation:
                return "translation"
            relative = self.last_pose.rotation.T @ pose.rotation
            cos = (float(np.trace(relative)) - 1.0) / 2.0
            turned = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
            if self.rotation_deg > 0 and turned >= self.rotation_deg:
                return "rotation"
        return None

    def taken(self, stamp_ns: int, pose: Pose | None = None) -> None:
        """Records that the frame at ``stamp_ns`` became a keyframe."""
        self.last_stamp_ns = int(stamp_ns)
        self.last_pose = pose
