"""Online alignment of a relative depth model to metres, frame after frame, per camera.

The fits themselves are :mod:`dpt_ros.alignment.fit`; this is what turns them into a
calibration a node can publish metres with, without rclpy (the node and the bag tool
share it):

- reference messages are kept per camera and matched to each frame by stamp (the
  nearest within ``stamp_tolerance``);
- each frame's fit is checked (:meth:`Alignment.quality_problems`); good fits are
  filtered over time (an exponential filter of scale and shift with weight
  ``smoothing``), so metric depth does not flicker;
- a frame is published in metres with the filtered calibration; when fits fail the last
  good one is held for ``max_fit_age`` seconds of stamp time, then metric outputs stop
  and :meth:`OnlineAligner.status` says why. Never garbage metres.
- a frame stamped before the camera's previous frame (a bag loop, a clock or sim-time
  reset) starts the camera again from no fit: a fit from another stretch of time is
  never held, whatever its age looks like.

The calibration of frame k is the filter's state after the fits of the frames before it
(the fit of frame k joins the filter for frame k+1): the models' outputs need not wait
for a fit, and the filter makes the one-frame lag immaterial.

Times are the frames' header stamps (nanoseconds), so replay and sim time work.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dpt_ros.alignment.fit import Alignment, PinholeIntrinsics, fit_ground_plane, fit_to_reference
from dpt_ros.options import Naming, Options, option
from dpt_ros.viz.ade20k import CLASS_NAMES

#: ``relative_depth.alignment`` values.
ALIGNMENT_METHODS = ("fixed", "reference_depth", "reference_points", "ground_plane")
#: ADE20K classes taken as ground by ``ground_plane`` when segmentation runs.
GROUND_CLASSES = ("floor", "road", "sidewalk", "earth", "grass", "field", "path", "rug")
#: Their published ids (1-based).
GROUND_IDS = np.array([CLASS_NAMES.index(name) + 1 for name in GROUND_CLASSES], np.uint8)
#: Reference messages kept per camera for matching by stamp.
KEPT_REFERENCES = 16


@dataclass(frozen=True)
class AlignmentOptions(Options):
    """How relative depth becomes metres (the ``relative_depth.*`` parameters).

    Attributes:
        method: one of :data:`ALIGNMENT_METHODS`; ``fixed`` = the calibration given.
        stamp_tolerance: seconds between a frame and the reference matched to it.
        smoothing: weight of a new fit in the temporal filter, (0, 1]; 1 = no filtering.
        max_fit_age: seconds (stamp time) a good fit is held while new fits fail.
        camera_height: metres from the ground up to the camera (``ground_plane``).
        ground_normal: the ground's unit normal pointing up, in the camera optical frame
            (a level camera: (0, -1, 0)); empty = fit it, assuming the model's shift is 0.
        ground_band: without segmentation, the bottom fraction of the image taken as
            ground (``ground_plane``).
    """

    method: str = option(
        "fixed",
        "How a relative model's output becomes metres: fixed (relative_depth.scale and "
        "shift), reference_depth (fitted online to alignment/depth: 32FC1 metres or 16UC1 "
        "millimetres registered to the image, any resolution), reference_points (fitted to "
        "alignment/points, a PointCloud2 in the image's frame or transformed with tf2), "
        "ground_plane (fitted to the ground seen relative_depth.camera_height below the "
        "camera). Metric models ignore it.",
        choices=ALIGNMENT_METHODS,
        param="relative_depth.alignment",
        flag="--alignment",
        summary=(
            "How a relative model's output becomes metres: fixed, reference_depth, "
            "reference_points or ground_plane; metric models ignore it."
        ),
    )
    stamp_tolerance: float = option(
        0.05,
        "Largest stamp difference (s) between an image and the reference matched to it.",
        range=(0.0, 10.0),
        unit="s",
        param="relative_depth.stamp_tolerance",
        flag="--stamp-tolerance",
    )
    smoothing: float = option(
        0.3,
        "Weight of each new fit in the temporal filter of scale and shift (0..1]; 1 = "
        "no filtering.",
        range=(0.01, 1.0),
        param="relative_depth.smoothing",
        flag="--fit-smoothing",
    )
    max_fit_age: float = option(
        2.0,
        "Seconds (of image stamps) the last good fit is used while new fits fail its "
        "quality checks; then metric outputs stop and /diagnostics says why.",
        range=(0.0, 3600.0),
        unit="s",
        param="relative_depth.max_fit_age",
        flag="--max-fit-age",
    )
    camera_height: float = option(
        0.0,
        "Camera height above the ground (metres), for ground_plane.",
        range=(0.0, 100.0),
        unit="m",
        param="relative_depth.camera_height",
        flag="--camera-height",
    )
    ground_normal: tuple[float, ...] = option(
        (),
        "The ground's unit normal pointing up, in the camera optical frame (x right, y "
        "down, z forward), for ground_plane: a level camera [0, -1, 0]; pitched down by p: "
        "[0, -cos p, -sin p]. Empty (unset) = fit it, assuming the model's shift is 0.",
        param="relative_depth.ground_normal",
        flag="--ground-normal",
        summary=(
            "The ground's upward unit normal in the camera optical frame, for ground_plane; empty "
            "= fit it."
        ),
        metavar="X,Y,Z",
        example="[0.0, -1.0, 0.0]",
    )
    ground_band: float = option(
        0.25,
        "Without segmentation, the bottom fraction of the image that ground_plane takes as ground.",
        range=(0.01, 1.0),
        param="relative_depth.ground_band",
        flag="--ground-band",
    )

    def combined_problems(self, naming: Naming | None = None) -> list[str]:
        """A ground plane without a camera height; a ground normal that is none."""
        found = []
        if self.method == "ground_plane" and not self.camera_height > 0:
            found.append(
                f"{self.label('method', naming)}=ground_plane needs "
                f"{self.label('camera_height', naming)} > 0 (metres), got {self.camera_height}"
            )
        if self.ground_normal:
            n = np.asarray(self.ground_normal, dtype=np.float64)
            if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) < 1e-6:
                found.append(
                    f"{self.label('ground_normal', naming)} must be empty or 3 finite numbers, "
                    f"not all 0, got {list(self.ground_normal)}"
                )
        return found


@dataclass
class _Camera:
    references: deque = field(default_factory=lambda: deque(maxlen=KEPT_REFERENCES))
    scale: float | None = None
    shift: float | None = None
    good_stamp: int | None = None
    last: Alignment | None = None
    last_problems: list[str] = field(default_factory=list)
    state: str = "waiting for the first fit"
    #: The stamp of the latest frame seen (calibration or update).
    frame_stamp: int | None = None
    #: Times the camera started again because its stamps went back.
    restarts: int = 0
    #: Reference messages rejected, and the last one's reason (kept for /diagnostics
    #: while later states replace ``state``).
    rejections: int = 0
    last_rejection: str = ""


class OnlineAligner:
    """Per-camera online calibration; see the module docstring.

    Args:
        options: the method and its settings.
    """

    def __init__(self, options: AlignmentOptions) -> None:
        self.options = options
        self._cameras: dict[object, _Camera] = {}

    def _camera(self, stream: object) -> _Camera:
        return self._cameras.setdefault(stream, _Camera())

    def _frame(self, stream: object, stamp_ns: int) -> _Camera:
        """The camera of a frame at ``stamp_ns``, started again from no fit if the stamp
        went back from its previous frame's. References stamped after the frame (beyond
        ``stamp_tolerance``) belong to the time before the jump and are dropped too."""
        cam = self._camera(stream)
        stamp_ns = int(stamp_ns)
        if cam.frame_stamp is not None and stamp_ns < cam.frame_stamp:
            back = (cam.frame_stamp - stamp_ns) * 1e-9
            newest = stamp_ns + self.options.stamp_tolerance * 1e9
            cam = self._cameras[stream] = _Camera(
                references=deque(
                    (r for r in cam.references if r[0] <= newest), maxlen=KEPT_REFERENCES
                ),
                state=(
                    f"waiting for the first fit (started again: image stamps went back by "
                    f"{back:.1f} s, a bag loop or a clock reset)"
                ),
                restarts=cam.restarts + 1,
                rejections=cam.rejections,
                last_rejection=cam.last_rejection,
            )
        cam.frame_stamp = stamp_ns
        return cam

    def add_reference(self, stream: object, stamp_ns: int, reference: np.ndarray) -> None:
        """A reference message: (H, W) metres registered to the camera image (NaN or 0 =
        unknown), or (N, 3) points in the camera optical frame, metres."""
        self._camera(stream).references.append((int(stamp_ns), reference))

    def reject_reference(self, stream: object, reason: str) -> None:
        """A reference message that cannot be used (wrong encoding, frame, ...): the
        reason shows in :meth:`status` as the state until the next frame, and as the last
        rejection (with the count) from then on."""
        cam = self._camera(stream)
        cam.last_problems = [reason]
        cam.state = f"reference rejected: {reason}"
        cam.rejections += 1
        cam.last_rejection = reason

    def calibration(self, stream: object, stamp_ns: int) -> tuple[float, float] | None:
        """(scale, shift) to publish the frame at ``stamp_ns`` in metres, or None (no good
        fit yet, or the last one older than ``max_fit_age``; :meth:`status` says why).
        A stamp before the previous frame's starts the camera again (no fit)."""
        cam = self._frame(stream, stamp_ns)
        if cam.scale is None or cam.shift is None or cam.good_stamp is None:
            return None
        age = _age(cam, stamp_ns)
        if age > self.options.max_fit_age:
            cam.state = self._stopped(age, "; ".join(cam.last_problems) or "no reference")
            return None
        return cam.scale, cam.shift

    def _stopped(self, age: float, reasons: str) -> str:
        return f"stopped: no good fit for {age:.1f} s (> {self.options.max_fit_age} s): {reasons}"

    def update(
        self,
        stream: object,
        stamp_ns: int,
        relative: np.ndarray,
        intrinsics: PinholeIntrinsics | None,
        labels: np.ndarray | None = None,
    ) -> Alignment | None:
        """Fits the frame's (H, W) relative output and feeds a good fit to the filter.

        Args:
            stream: the camera.
            stamp_ns: the frame's stamp.
            relative: (H, W) relative inverse depth as published.
            intrinsics: the camera at (H, W) (points and ground plane need it).
            labels: (H, W) ADE20K ids of the frame, if segmentation runs.

        Returns:
            The frame's fit (good or not), or None when no fit could be attempted.
        """
        cam = self._frame(stream, stamp_ns)
        try:
            fit = self._fit(cam, int(stamp_ns), relative, intrinsics, labels)
        except ValueError as exc:
            fit, cam.last_problems = None, [str(exc)]
        if fit is None:
            self._note_failure(cam, stamp_ns)
            return None
        cam.last = fit
        cam.last_problems = fit.quality_problems()
        if cam.last_problems:
            self._note_failure(cam, stamp_ns)
            return fit
        a = self.options.smoothing if cam.scale is not None else 1.0
        cam.scale = fit.scale if cam.scale is None else (1 - a) * cam.scale + a * fit.scale
        cam.shift = fit.shift if cam.shift is None else (1 - a) * cam.shift + a * fit.shift
        cam.good_stamp = int(stamp_ns)
        cam.state = "ok"
        return fit

    def _note_failure(self, cam: _Camera, stamp_ns: int) -> None:
        reasons = "; ".join(cam.last_problems) or "no fit"
        if cam.good_stamp is None:
            cam.state = f"no metric output: {reasons}"
        else:
            age = _age(cam, stamp_ns)
            if age > self.options.max_fit_age:
                cam.state = self._stopped(age, reasons)
            else:
                cam.state = f"holding the fit of {age:.1f} s ago: {reasons}"

    def _fit(
        self,
        cam: _Camera,
        stamp_ns: int,
        relative: np.ndarray,
        intrinsics: PinholeIntrinsics | None,
        labels: np.ndarray | None,
    ) -> Alignment | None:
        method = self.options.method
        if method == "ground_plane":
            if intrinsics is None:
                raise ValueError("ground_plane needs camera_info")
            return fit_ground_plane(
                relative,
                intrinsics,
                self.options.camera_height,
                self._ground_mask(relative.shape, labels),
                self.options.ground_normal or None,
            )
        reference = self._matching_reference(cam, stamp_ns)
        if reference is None:
            raise ValueError(
                f"no reference within {self.options.stamp_tolerance} s of the frame "
                f"({len(cam.references)} kept)"
            )
        if reference.ndim == 2 and reference.shape[1] == 3 and method == "reference_points":
            if intrinsics is None:
                raise ValueError("reference_points needs camera_info to project the cloud")
            reference = project_points(reference, intrinsics, relative.shape)
        else:
            reference = resize_nearest(reference, relative.shape)
        return fit_to_reference(relative, reference)

    def _matching_reference(self, cam: _Camera, stamp_ns: int) -> np.ndarray | None:
        tolerance_ns = self.options.stamp_tolerance * 1e9
        best = min(cam.references, key=lambda r: abs(r[0] - stamp_ns), default=None)
        if best is None or abs(best[0] - stamp_ns) > tolerance_ns:
            return None
        return best[1]

    def _ground_mask(self, shape: tuple[int, ...], labels: np.ndarray | None) -> np.ndarray:
        if labels is not None and labels.shape == tuple(shape):
            return np.isin(labels, GROUND_IDS)
        mask = np.zeros(shape, dtype=bool)
        rows = max(1, int(round(shape[0] * self.options.ground_band)))
        mask[-rows:] = True
        return mask

    def status(self, stream: object) -> dict[str, str]:
        """The camera's alignment for /diagnostics: state, filtered scale and shift, the
        last fit's inliers and residual, the references rejected and the last reason,
        and how often the camera started again (stamps that went back)."""
        cam = self._camera(stream)
        values = {"alignment": self.options.method, "alignment.state": cam.state}
        if cam.scale is not None:
            values["alignment.scale"] = f"{cam.scale:.6g}"
            values["alignment.shift"] = f"{cam.shift:.6g}"
        if cam.last is not None:
            values["alignment.inliers"] = str(cam.last.inliers)
            values["alignment.inlier_fraction"] = f"{cam.last.inlier_fraction:.3f}"
            values["alignment.residual"] = f"{cam.last.relative_residual:.4f}"
        if cam.restarts:
            values["alignment.restarts"] = str(cam.restarts)
        if cam.rejections:
            values["alignment.references_rejected"] = str(cam.rejections)
            values["alignment.last_rejection"] = cam.last_rejection
        return values

    def fit_age(self, stream: object, stamp_ns: int) -> float:
        """Seconds from the last good fit to ``stamp_ns``; inf without one."""
        return _age(self._camera(stream), stamp_ns)


def _age(cam: _Camera, stamp_ns: int) -> float:
    """Seconds of stamp time from the camera's last good fit to ``stamp_ns``; inf without one."""
    if cam.good_stamp is None:
        return math.inf
    return (int(stamp_ns) - cam.good_stamp) * 1e-9


def resize_nearest(depth: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(h, w) metres -> ``shape`` with nearest-neighbour sampling (never blends depths
    across edges or with unknowns); pixel centres map to pixel centres."""
    h, w = depth.shape
    out_h, out_w = int(shape[0]), int(shape[1])
    if (h, w) == (out_h, out_w):
        return depth
    rows = np.minimum(((np.arange(out_h) + 0.5) * h / out_h).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * w / out_w).astype(np.int64), w - 1)
    return depth[rows[:, None], cols[None, :]]


def project_points(
    points: np.ndarray, intrinsics: PinholeIntrinsics, shape: tuple[int, ...]
) -> np.ndarray:
    """(N, 3) points in the camera optical frame (metres) -> (H, W) sparse depth, NaN
    where no point falls; the nearest point wins a pixel.

    Args:
        points: x right, y down, z forward (REP-103 optical frame).
        intrinsics: the camera at ``shape``.
        shape: (H, W) of the depth image.
    """
    h, w = int(shape[0]), int(shape[1])
    depth = np.full(h * w, np.inf)
    p = points[np.isfinite(points).all(axis=1) & (points[:, 2] > 0)]
    u = np.floor(intrinsics.fx * p[:, 0] / p[:, 2] + intrinsics.cx + 0.5).astype(np.int64)
    v = np.floor(intrinsics.fy * p[:, 1] / p[:, 2] + intrinsics.cy + 0.5).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    np.minimum.at(depth, v[inside] * w + u[inside], p[inside, 2])
    depth[~np.isfinite(depth)] = np.nan
    return depth.reshape(h, w).astype(np.float32)


def transform_points(
    points: np.ndarray, translation: tuple[float, float, float], rotation_xyzw: tuple
) -> np.ndarray:
    """Applies a rigid transform (a unit quaternion x, y, z, w, then a translation) to
    (N, 3) points: what a tf2 TransformStamped from the cloud's frame to the camera's
    frame describes."""
    x, y, z, w = (float(v) for v in rotation_xyzw)
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    return points @ rot.T + np.asarray(translation, dtype=np.float64)
