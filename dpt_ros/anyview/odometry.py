"""The robot's odometry, kept by stamp, and the camera's pose at an image's stamp.

Messages come in as :class:`OdometrySample` (the fields of a nav_msgs/Odometry that
matter here, converted by the node), are checked (finite numbers, a unit quaternion,
the declared frames) and kept in stamp order. :meth:`OdometryBuffer.pose_at` gives the
base's pose at a stamp: interpolated between the samples around it (linear in
position, spherical in orientation), or the nearest sample when the stamp is outside
them, and a typed refusal when the nearest sample is further than ``max_age`` (stale)
or there is none (absent). No torch or ROS import.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from dpt_ros.anyview.options import Pose, quaternion_problem, rotation_of

#: Samples kept (at 100 Hz: 10 s).
KEPT_SAMPLES = 1000


@dataclass(frozen=True)
class OdometrySample:
    """One odometry message.

    Attributes:
        stamp_ns: the header stamp, nanoseconds.
        frame_id: the header's frame (the odometry's world, e.g. ``odom``).
        child_frame_id: the body frame whose pose it is (e.g. ``base_link``).
        position: (3,) metres, the body's origin in ``frame_id``.
        orientation: (4,) quaternion x y z w, the body's orientation in ``frame_id``.
        covariance: (6, 6) pose covariance (x y z roll pitch yaw) as the message gives it.
    """

    stamp_ns: int
    frame_id: str
    child_frame_id: str
    position: np.ndarray
    orientation: np.ndarray
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))

    def pose(self) -> Pose:
        """``odom_from_base``."""
        return Pose(rotation_of(self.orientation), np.asarray(self.position, np.float64))


@dataclass(frozen=True)
class PoseAt:
    """The base's pose at a stamp, or why there is none.

    Attributes:
        pose: ``odom_from_base`` at the stamp, None when refused.
        reason: why not (``stale``/``absent``), empty when there is a pose.
        gap_s: seconds from the stamp to the nearest sample (inf without one).
        covariance: (6, 6) of the nearest sample.
    """

    pose: Pose | None
    reason: str = ""
    gap_s: float = float("inf")
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))


def _slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    q0 = q0 / np.linalg.norm(q0)
    q1 = q1 / np.linalg.norm(q1)
    dot = float(q0 @ q1)
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


class OdometryBuffer:
    """Odometry samples by stamp (see the module docstring).

    Args:
        odom_frame: the frame the messages must be in.
        base_frame: the child frame they must give; empty = any.
        max_age: seconds from a stamp to the nearest sample beyond which it is stale.
    """

    def __init__(self, odom_frame: str, base_frame: str = "", max_age: float = 0.2) -> None:
        self.odom_frame = odom_frame
        self.base_frame = base_frame
        self.max_age = max_age
        self._stamps: list[int] = []
        self._samples: list[OdometrySample] = []
        #: Samples refused, and the last one's reason.
        self.refused = 0
        self.last_refusal = ""

    def __len__(self) -> int:
        return len(self._samples)

    def problem(self, sample: OdometrySample) -> str | None:
        """Why ``sample`` is refused, or None."""
        if sample.frame_id != self.odom_frame:
            return (
                f"odometry in frame {sample.frame_id!r}, declared {self.odom_frame!r} "
                "(any_view.odom_frame)"
            )
        if self.base_frame and sample.child_frame_id != self.base_frame:
            return (
                f"odometry of child frame {sample.child_frame_id!r}, declared "
                f"{self.base_frame!r} (any_view.base_frame)"
            )
        position = np.asarray(sample.position, np.float64)
        if position.shape != (3,) or not np.isfinite(position).all():
            return f"odometry position {position.tolist()} is not 3 finite numbers"
        q = quaternion_problem(sample.orientation)
        return None if q is None else f"odometry orientation: {q}"

    def add(self, sample: OdometrySample) -> str | None:
        """Keeps ``sample``; returns why it was refused, or None."""
        problem = self.problem(sample)
        if problem is not None:
            self.refused += 1
            self.last_refusal = problem
            return problem
        i = bisect.bisect_right(self._stamps, sample.stamp_ns)
        self._stamps.insert(i, sample.stamp_ns)
        self._samples.insert(i, sample)
        if len(self._samples) > KEPT_SAMPLES:
            del self._stamps[0], self._samples[0]
        return None

    def clear(self) -> None:
        self._stamps.clear()
        self._samples.clear()

    def pose_at(self, stamp_ns: int) -> PoseAt:
        """The base's pose at ``stamp_ns`` (see the module docstring)."""
        if not self._samples:
            return PoseAt(None, "absent: no odometry received")
        i = bisect.bisect_left(self._stamps, stamp_ns)
        near = min(
            (j for j in (i - 1, i) if 0 <= j < len(self._stamps)),
            key=lambda j: abs(self._stamps[j] - stamp_ns),
        )
        gap = abs(self._stamps[near] - stamp_ns) * 1e-9
        cov = self._samples[near].covariance
        if gap > self.max_age:
            return PoseAt(
                None,
                f"stale: the odometry nearest the image is {gap:.3g} s from it "
                f"(any_view.odometry_max_age {self.max_age:g} s)",
                gap,
                cov,
            )
        if 0 < i < len(self._stamps) and self._stamps[i] != stamp_ns:
            a, b = self._samples[i - 1], self._samples[i]
            t = (stamp_ns - a.stamp_ns) / (b.stamp_ns - a.stamp_ns)
            position = (1 - t) * a.position + t * b.position
            q = _slerp(np.asarray(a.orientation, float), np.asarray(b.orientation, float), t)
            return PoseAt(Pose(rotation_of(q), np.asarray(position, np.float64)), "", gap, cov)
        return PoseAt(self._samples[near].pose(), "", gap, cov)
