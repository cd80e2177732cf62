"""The ``any_view.*`` options: windows of views in the live node and the bag tool.

Declared once (:func:`dpt_ros.options.option`): the node's parameters, the bag tool's
``--any-view-*`` flags and the docs are made from these fields. No torch or ROS import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dpt_ros.models.registry import MODEL_SPECS, window_model_names
from dpt_ros.options import Naming, Options, option

#: Depth Anything 3's ways of picking a window's reference view.
REFERENCE_VIEWS = ("saddle_balanced", "first", "middle", "saddle_sim_range")
#: The optical frame (x right, y down, z forward) in a REP-103 body frame (x forward,
#: y left, z up) at the same place: ``x y z qx qy qz qw``.
OPTICAL_IN_BODY = "0 0 0 -0.5 0.5 -0.5 0.5"
#: Largest departure of ``camera_in_base``'s quaternion from unit length.
QUATERNION_TOLERANCE = 1e-3
#: Views per window, the current frame included, when windows are on.
WINDOW_SIZES = (2, 8)


@dataclass(frozen=True)
class Pose:
    """A rigid pose ``target_from_source``: ``x_target = rotation @ x_source + translation``.

    Attributes:
        rotation: (3, 3) float64 proper rotation.
        translation: (3,) float64, in the pose's unit (metres for odometry).
    """

    rotation: np.ndarray
    translation: np.ndarray

    @staticmethod
    def identity() -> Pose:
        return Pose(np.eye(3), np.zeros(3))

    def compose(self, other: Pose) -> Pose:
        """``self ∘ other`` (``other`` first)."""
        return Pose(
            self.rotation @ other.rotation, self.rotation @ other.translation + self.translation
        )

    def inverse(self) -> Pose:
        r_t = self.rotation.T
        return Pose(r_t, -(r_t @ self.translation))

    def matrix(self) -> np.ndarray:
        """(3, 4) ``[R | t]``."""
        return np.concatenate([self.rotation, self.translation[:, None]], axis=1)


def quaternion_problem(q: Any) -> str | None:
    """Why ``q`` (x, y, z, w) is not a unit quaternion, or None."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (4,) or not np.isfinite(q).all():
        return f"the quaternion (x y z w) {q.tolist()} is not 4 finite numbers"
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        return f"the quaternion (x y z w) {q.tolist()} has length {norm:.4g}, not 1"
    return None


def rotation_of(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w; Hamilton, as in ROS) -> (3, 3) rotation."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def parse_pose(text: str) -> tuple[Pose | None, str | None]:
    """``"x y z qx qy qz qw"`` -> (pose, None), or (None, why not)."""
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        return None, f"{text!r} is not 7 numbers x y z qx qy qz qw"
    if len(values) != 7 or not all(math.isfinite(v) for v in values):
        return None, f"{text!r} is not 7 finite numbers x y z qx qy qz qw"
    problem = quaternion_problem(values[3:])
    if problem:
        return None, problem
    return Pose(rotation_of(np.array(values[3:])), np.array(values[:3])), None


@dataclass(frozen=True)
class AnyViewOptions(Options):
    """Windows of views (the ``any_view.*`` parameters, the ``--any-view-*`` flags).

    Attributes:
        window: views per forward, the current frame included (2..8); 0 = off.
        keyframe_period: seconds (stamp time) after which the current frame becomes a
            keyframe.
        keyframe_translation, keyframe_rotation: with odometry, metres and degrees of
            camera motion since the last keyframe after which the current frame becomes
            one; 0 = not by that motion.
        reference_view: Depth Anything 3's reference view of windows of 3 or more.
        odometry_topic: nav_msgs/Odometry of the robot; empty = none.
        odometry_max_age: seconds between a frame and the odometry nearest it beyond
            which the odometry counts as stale.
        camera_in_base: ``x y z qx qy qz qw``: the camera's optical frame in the
            odometry's child frame (``base_T_optical``).
        condition_on_odometry: pass the cameras from odometry to the network and align
            its result to them (Depth Anything 3): depth in the odometry's unit.
        odom_frame: the odometry's frame (its header's frame_id must match) and the frame
            of ``any_view/odometry``.
        base_frame: the odometry's child_frame_id; empty = any.
        model_type: the depth model type the options are for (not a parameter: the
            node fills it from ``depth.model_type``); empty = not checked.
    """

    NAMING: ClassVar[Naming] = "param"

    window: int = option(
        0,
        "Views per forward of a model with windows (Depth Anything 3's any-view types, "
        "VGGT), the current frame included: 2 to 8; 0 = off (one image at a time).",
        range=(0, WINDOW_SIZES[1]),
        param="any_view.window",
        flag="--any-view-window",
        metavar="N",
        summary="Views per forward (2..8, the current frame included); 0 = off.",
    )
    keyframe_period: float = option(
        1.0,
        "Seconds (of image stamps) after the last keyframe after which the current "
        "frame becomes a keyframe.",
        range=(0.0, 3600.0),
        unit="s",
        param="any_view.keyframe_period",
        flag="--any-view-keyframe-period",
    )
    keyframe_translation: float = option(
        0.3,
        "With odometry: metres the camera moved since the last keyframe after which the "
        "current frame becomes a keyframe; 0 = not by translation.",
        range=(0.0, 1000.0),
        unit="m",
        param="any_view.keyframe_translation",
        flag="--any-view-keyframe-translation",
    )
    keyframe_rotation: float = option(
        15.0,
        "With odometry: degrees the camera turned since the last keyframe after which the "
        "current frame becomes a keyframe; 0 = not by rotation.",
        range=(0.0, 180.0),
        unit="deg",
        param="any_view.keyframe_rotation",
        flag="--any-view-keyframe-rotation",
    )
    reference_view: str = option(
        "saddle_balanced",
        "Depth Anything 3: how a window of 3 views or more picks its reference view "
        "(saddle_balanced, the reference's default; first; middle; saddle_sim_range).",
        choices=REFERENCE_VIEWS,
        param="any_view.reference_view",
        flag="--any-view-reference-view",
    )
    odometry_topic: str = option(
        "",
        "nav_msgs/Odometry of the robot (wheel or visual odometry); empty = none.",
        param="any_view.odometry_topic",
        flag="--any-view-odometry-topic",
    )
    odometry_max_age: float = option(
        0.2,
        "Seconds between an image stamp and the nearest odometry beyond which the "
        "odometry is stale (conditioning stops, /diagnostics says why).",
        range=(0.0, 60.0),
        unit="s",
        param="any_view.odometry_max_age",
        flag="--any-view-odometry-max-age",
    )
    camera_in_base: str = option(
        OPTICAL_IN_BODY,
        "The camera's optical frame in the odometry's child frame, 'x y z qx qy qz qw' "
        "(metres; quaternion x y z w): what 'ros2 run tf2_ros tf2_echo base_link "
        "camera_optical_frame' prints. The default is an optical frame at the base's "
        "origin looking along its x axis.",
        param="any_view.camera_in_base",
        flag="--any-view-camera-in-base",
        metavar="'X Y Z QX QY QZ QW'",
        summary="The camera's optical frame in the odometry's child frame, 'x y z qx qy qz qw'.",
    )
    condition_on_odometry: bool = option(
        False,
        "Depth Anything 3 only: pass the cameras from odometry to the network and align "
        "its result to them, so depth and any_view/odometry come out in the odometry's "
        "unit (metres).",
        param="any_view.condition_on_odometry",
        flag="--any-view-condition-on-odometry",
        summary="Depth Anything 3: condition on the odometry's cameras; depth in its unit.",
    )
    odom_frame: str = option(
        "odom",
        "The odometry's frame (its messages' frame_id must match) and the frame of "
        "any_view/odometry.",
        param="any_view.odom_frame",
        flag="--any-view-odom-frame",
    )
    base_frame: str = option(
        "",
        "The odometry's child_frame_id; empty = any.",
        param="any_view.base_frame",
        flag="--any-view-base-frame",
    )
    model_type: str = ""

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def camera_pose(self) -> Pose:
        """``camera_in_base`` as a pose (base_from_optical); ValueError if invalid."""
        pose, problem = parse_pose(self.camera_in_base)
        if pose is None:
            raise ValueError(f"{self.label('camera_in_base')}: {problem}")
        return pose

    def combined_problems(self, naming: Naming | None = None) -> list[str]:
        """Every invalid combination, each named as the caller's user set it."""
        if not self.enabled:
            return []
        name = lambda field: self.label(field, naming)  # noqa: E731
        found = []
        if self.window < WINDOW_SIZES[0]:
            found.append(
                f"{name('window')}={self.window}: a window holds the current frame and at "
                f"least one keyframe ({WINDOW_SIZES[0]}..{WINDOW_SIZES[1]}), or 0 = off"
            )
        spec = MODEL_SPECS.get(self.model_type) if self.model_type else None
        if self.model_type and (spec is None or not spec.windows):
            found.append(
                f"{name('window')}={self.window} needs a model with windows; "
                f"{self.model_type or 'none'} sees one image at a time (models with windows: "
                f"{', '.join(window_model_names())})"
            )
        _, problem = parse_pose(self.camera_in_base)
        if problem:
            found.append(f"{name('camera_in_base')}: {problem}")
        if self.condition_on_odometry:
            if not self.odometry_topic:
                found.append(
                    f"{name('condition_on_odometry')} needs {name('odometry_topic')} "
                    "(nav_msgs/Odometry of the robot)"
                )
            if self.model_type and not self.model_type.startswith("depth_anything_3"):
                found.append(
                    f"{name('condition_on_odometry')} needs a Depth Anything 3 type (its "
                    f"camera encoder); {self.model_type} takes no cameras"
                )
        if self.odometry_topic and not self.odom_frame:
            found.append(f"{name('odometry_topic')} needs {name('odom_frame')}")
        if self.keyframe_period <= 0 and not (
            self.odometry_topic and (self.keyframe_translation or self.keyframe_rotation)
        ):
            found.append(
                f"{name('keyframe_period')}=0 takes no keyframe by time, and without "
                f"{name('odometry_topic')} none by motion: the window would never fill"
            )
        return found
