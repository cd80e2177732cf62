"""The state of the live window: keyframes held, the chain of windows, the scale.

Each processed frame runs as one window: the keyframes held (oldest first) and the
current frame last. :meth:`WindowState.plan` says what goes into the forward (the
images, and the cameras from odometry when the forward is conditioned on them);
:meth:`WindowState.finish` takes the model's result, moves it into the chain's world
and decides whether the current frame becomes a keyframe.

**The chain.** Consecutive windows share keyframes (a frame taken as keyframe was the
current frame of the window before). Each new window is moved onto the previous one
with the robust Sim(3) of :func:`dpt_ros.reconstruct.chain.align_window` fitted on the
frames they share (their cameras and confident depth points). The chain's world is the
world of the window that started it:

- a window conditioned on odometry (its result aligned to the odometry's cameras, in
  their unit) *anchors* the chain: its world is the odometry's frame and its unit the
  odometry's (metres), so the scale is known; chain length 0;
- a window that is not conditioned (no odometry, or it went stale) is chained to the
  previous window; the chain length grows by one. The scale stays known as long as the
  chain started from an anchor;
- with no anchor the chain's unit is the first window's own (relative): the scale is
  unknown, and nothing metric is published.

**The covariance** of the current camera's pose (x y z, then rotations about x y z,
as in nav_msgs/Odometry) is a random walk over the chain's links, every link adding an
independent error: an anchor starts from the odometry's own covariance (as its message
gave it); each link adds ``rms**2 + (LINK_TRANSLATION_FRACTION * step)**2`` to each
position variance (``rms`` the link's Sim(3) inlier residual, ``step`` the distance the
camera moved in the link, both in the chain's unit) and ``LINK_ROTATION_SIGMA**2`` to
each rotation variance. The constants are assumptions, not measurements; the point is
that the covariance grows with the chain, linearly in its length, and returns to the
odometry's when the next anchor comes.

**Restarts.** A frame stamped before the previous one (a bag loop, a clock reset) or a
change of the camera (its intrinsics or image size) drops the keyframes and the chain:
the next window starts from the current frame alone, as online alignment does.

No torch or ROS import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dpt_ros.anyview.keyframes import KeyframeSelector
from dpt_ros.anyview.odometry import OdometryBuffer
from dpt_ros.anyview.options import AnyViewOptions, Pose
from dpt_ros.reconstruct.chain import (
    AlignedWindow,
    WindowResult,
    align_window,
    transform_window,
)
from dpt_ros.reconstruct.sim3 import Sim3

#: Each link's position error, as a share of the distance the camera moved in it.
LINK_TRANSLATION_FRACTION = 0.02
#: Each link's rotation error (radians, one sigma per axis): 0.5 degrees.
LINK_ROTATION_SIGMA = math.radians(0.5)
#: Why the first window after a start or restart is not conditioned (not a fault).
ONE_VIEW = "a window of one view (no keyframe yet) has no motion to align to"
#: Smallest spread (odometry unit, metres) of a window's camera centres that its
#: alignment to odometry takes a scale from.
MIN_BASELINE = 0.01


@dataclass
class Keyframe:
    """A frame held for the next windows.

    Attributes:
        stamp_ns: its stamp.
        rgb: (H, W, 3) uint8.
        odom_from_camera: the camera (optical frame) in the odometry's world when known.
        reason: why it became a keyframe (``first``, ``time``, ``translation``, ``rotation``).
    """

    stamp_ns: int
    rgb: np.ndarray
    odom_from_camera: Pose | None
    reason: str


@dataclass(frozen=True)
class WindowPlan:
    """What one forward takes.

    Attributes:
        images: N (H, W, 3) uint8: the keyframes, oldest first, then the current frame.
        stamps: their stamps (ns).
        extrinsics: (N, 3, 4) camera-from-odom of each view (OpenCV axes, metres) when
            the forward is conditioned on odometry, else None.
        intrinsics: (N, 3, 3) pixels of the images, with ``extrinsics``.
        odom_from_camera: the current camera in the odometry's world, when known.
        conditioning: empty when conditioned (or not asked for), else why not.
        restarted: why the window started again at this frame, empty if it did not.
    """

    images: list[np.ndarray]
    stamps: list[int]
    extrinsics: np.ndarray | None
    intrinsics: np.ndarray | None
    odom_from_camera: Pose | None
    conditioning: str
    restarted: str
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class WindowOutput:
    """One window, finished.

    Attributes:
        window: the model's result moved into the chain's world (depth in its unit).
        current_from_views: (N, 3, 4) each view's camera in the current camera's optical
            frame (``x_current = R x_view + t``), in the chain's unit.
        world_from_current: the current camera in the chain's world.
        scale_known: whether the chain's unit is the odometry's (metres).
        scale_source: ``odometry conditioning``, ``chained from odometry (n windows)`` or
            ``none: ...`` (why not).
        chain_length: links since the chain's anchor or start.
        covariance: (6, 6) of the current camera's pose (see the module docstring).
        keyframe: why the current frame became a keyframe, or None.
        link_rms: the last link's Sim(3) inlier rms (chain unit), None without a link.
        chain_break: why the chain started again at this window (a failed link), or "".
    """

    window: WindowResult
    current_from_views: np.ndarray
    world_from_current: Pose
    scale_known: bool
    scale_source: str
    chain_length: int
    covariance: np.ndarray
    keyframe: str | None
    link_rms: float | None = None
    chain_break: str = ""


def pose_of(camera_from_world: np.ndarray) -> Pose:
    """(3, 4) camera-from-world -> world-from-camera :class:`Pose`."""
    m = np.asarray(camera_from_world, np.float64)
    return Pose(m[:3, :3], m[:3, 3]).inverse()


class WindowState:
    """One camera's window (see the module docstring).

    Args:
        options: the ``any_view.*`` options (``window`` > 0).
        odometry: the robot's odometry, or None.
    """

    def __init__(self, options: AnyViewOptions, odometry: OdometryBuffer | None = None) -> None:
        self.options = options
        self.odometry = odometry
        self.base_from_camera = options.camera_pose()
        self.selector = KeyframeSelector(
            options.keyframe_period,
            options.keyframe_translation if odometry is not None else 0.0,
            options.keyframe_rotation if odometry is not None else 0.0,
        )
        self.keyframes: list[Keyframe] = []
        self.previous: AlignedWindow | None = None
        self.chain_length = 0
        self.anchored = False
        self.covariance = np.zeros((6, 6))
        self.last_stamp_ns: int | None = None
        self.camera_key: object = None
        #: Times the window started again, and the last reason.
        self.restarts = 0
        self.last_restart = ""
        #: Why the last window was not conditioned ("" = it was, or it was not asked).
        self.conditioning = ""
        self.scale_source = "none: no window yet"

    # -- before the forward -------------------------------------------------------------
    def reset(self, reason: str = "") -> None:
        """Drops the keyframes and the chain."""
        self.keyframes.clear()
        self.selector.reset()
        self.previous = None
        self.chain_length = 0
        self.anchored = False
        self.covariance = np.zeros((6, 6))
        if reason:
            self.restarts += 1
            self.last_restart = reason

    def camera_at(self, stamp_ns: int) -> tuple[Pose | None, str, np.ndarray]:
        """The camera (optical frame) in the odometry's world at ``stamp_ns``, or why
        there is none, and the odometry's covariance there."""
        if self.odometry is None:
            return None, "no odometry (any_view.odometry_topic is empty)", np.zeros((6, 6))
        at = self.odometry.pose_at(stamp_ns)
        if at.pose is None:
            return None, at.reason, at.covariance
        return at.pose.compose(self.base_from_camera), "", at.covariance

    def plan(
        self,
        rgb: np.ndarray,
        stamp_ns: int,
        intrinsics: np.ndarray | None = None,
    ) -> WindowPlan:
        """The window of the frame ``rgb`` (H, W, 3) uint8 at ``stamp_ns`` with camera
        ``intrinsics`` (3, 3) pixels of the image (None = no camera_info)."""
        stamp_ns = int(stamp_ns)
        restarted = ""
        key = (
            rgb.shape,
            None if intrinsics is None else tuple(np.round(np.asarray(intrinsics), 6).ravel()),
        )
        if self.last_stamp_ns is not None and stamp_ns < self.last_stamp_ns:
            restarted = f"image stamps went back by {(self.last_stamp_ns - stamp_ns) * 1e-9:.3f} s"
        elif self.camera_key is not None and key != self.camera_key:
            restarted = "the camera changed (camera_info or image size)"
        if restarted:
            self.reset(restarted)
        self.last_stamp_ns = stamp_ns
        self.camera_key = key
        camera, why, covariance = self.camera_at(stamp_ns)
        keep = self.options.window - 1
        keyframes = self.keyframes[-keep:] if keep > 0 else []
        images = [k.rgb for k in keyframes] + [rgb]
        stamps = [k.stamp_ns for k in keyframes] + [stamp_ns]
        extrinsics = ks = None
        conditioning = ""
        if self.options.condition_on_odometry:
            conditioning = self._conditioning(keyframes, camera, why, intrinsics)
            if not conditioning:
                poses = [k.odom_from_camera for k in keyframes] + [camera]
                extrinsics = np.stack([p.inverse().matrix() for p in poses if p is not None])
                ks = np.repeat(np.asarray(intrinsics, np.float64)[None], len(images), 0)
        return WindowPlan(
            images, stamps, extrinsics, ks, camera, conditioning, restarted, covariance
        )

    def _conditioning(
        self,
        keyframes: list[Keyframe],
        camera: Pose | None,
        why: str,
        intrinsics: np.ndarray | None,
    ) -> str:
        """Why this window cannot be conditioned on odometry, or ""."""
        if intrinsics is None:
            return "no camera_info: the cameras need intrinsics"
        if camera is None:
            return f"no odometry at the image: {why}"
        missing = sum(k.odom_from_camera is None for k in keyframes)
        if missing:
            return f"{missing} keyframe(s) were taken without odometry"
        if not keyframes:
            return ONE_VIEW
        poses = [k.odom_from_camera for k in keyframes if k.odom_from_camera] + [camera]
        centres = np.stack([p.translation for p in poses])
        if float(np.ptp(centres, axis=0).max()) < MIN_BASELINE:
            return (
                f"the cameras from odometry are within {MIN_BASELINE * 1e3:g} mm of each "
                "other: no motion to take the scale from"
            )
        return ""

    # -- after the forward ----------------------------------------------------------------
    def finish(self, plan: WindowPlan, result: WindowResult, conditioned: bool) -> WindowOutput:
        """Moves ``result`` (the model's outputs for ``plan``'s views; in the odometry's
        world and unit when ``conditioned``) into the chain's world, takes the current
        frame as a keyframe when it is due, and returns what to publish."""
        if len(result) != len(plan):
            raise ValueError(f"a window of {len(plan)} views gave {len(result)} results")
        self.conditioning = plan.conditioning
        frames = tuple(plan.stamps)
        sim3 = Sim3.identity()
        link_rms = None
        chain_break = ""
        if conditioned:
            self.anchored = True
            self.chain_length = 0
            self.covariance = np.array(plan.covariance, np.float64).reshape(6, 6).copy()
        elif self.previous is not None:
            shared = [f for f in frames[:-1] if f in self.previous.frames]
            if shared:
                new_idx = [frames.index(f) for f in shared]
                old_idx = [self.previous.frames.index(f) for f in shared]
                try:
                    fit = align_window(self.previous.window.subset(old_idx), result.subset(new_idx))
                except ValueError as exc:
                    chain_break = str(exc)
                else:
                    sim3 = fit.sim3
                    link_rms = fit.rms
            else:
                chain_break = "the window shares no keyframe with the one before"
            if chain_break:
                self.anchored = False
                self.chain_length = 0
                self.covariance = np.zeros((6, 6))
            else:
                step = self._step(result, sim3)
                self.chain_length += 1
                self.covariance = self.covariance.copy()
                grow = (link_rms or 0.0) ** 2 + (LINK_TRANSLATION_FRACTION * step) ** 2
                self.covariance[[0, 1, 2], [0, 1, 2]] += grow
                self.covariance[[3, 4, 5], [3, 4, 5]] += LINK_ROTATION_SIGMA**2
        else:
            self.anchored = False
            self.chain_length = 0
            self.covariance = np.zeros((6, 6))
        moved = transform_window(result, sim3)
        self.previous = AlignedWindow(0, frames, moved, sim3)
        cfw = moved.camera_from_world
        world_from_current = pose_of(cfw[-1])
        current_from_world = world_from_current.inverse()
        current_from_views = np.stack(
            [current_from_world.compose(pose_of(c)).matrix() for c in cfw]
        )
        if conditioned:
            self.scale_source = "odometry conditioning"
        elif self.anchored:
            self.scale_source = f"chained from odometry ({self.chain_length} windows)"
        else:
            self.scale_source = "none: " + (
                plan.conditioning
                or chain_break
                or "relative windows (any_view.condition_on_odometry is off)"
            )
        keyframe = self._keyframe(plan)
        return WindowOutput(
            moved,
            current_from_views,
            world_from_current,
            self.anchored,
            self.scale_source,
            self.chain_length,
            self.covariance,
            keyframe,
            link_rms,
            chain_break,
        )

    def _step(self, result: WindowResult, sim3: Sim3) -> float:
        """Distance (chain unit) from the previous window's current camera to this one's."""
        assert self.previous is not None
        before = pose_of(self.previous.window.camera_from_world[-1]).translation
        after = pose_of(sim3.transform_camera_from_world(result.camera_from_world[-1:])[0])
        return float(np.linalg.norm(after.translation - before))

    def _keyframe(self, plan: WindowPlan) -> str | None:
        stamp = plan.stamps[-1]
        why = self.selector.why(stamp, plan.odom_from_camera)
        if why is None:
            return None
        self.selector.taken(stamp, plan.odom_from_camera)
        self.keyframes.append(Keyframe(stamp, plan.images[-1], plan.odom_from_camera, why))
        del self.keyframes[: -max(1, self.options.window - 1)]
        return why

    def status(self, now_ns: int | None = None) -> dict[str, str]:
        """The window's state for /diagnostics."""
        age = "none"
        if self.keyframes and now_ns is not None:
            age = f"{(now_ns - self.keyframes[-1].stamp_ns) * 1e-9:.2f} s"
        return {
            "any_view keyframes held": str(len(self.keyframes)),
            "any_view last keyframe age": age,
            "any_view scale source": self.scale_source,
            "any_view chain length": str(self.chain_length),
            "any_view restarts": f"{self.restarts}"
            + (f" (last: {self.last_restart})" if self.last_restart else ""),
        }
