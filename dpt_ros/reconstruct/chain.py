"""Windows of views and their chaining into one reconstruction (plain numpy).

A window is what a multi-view model returns for N frames at once
(:class:`WindowResult`): per frame a depth map, its confidence and a camera, all in the
window's own world and unit. Consecutive windows share ``overlap`` frames;
:func:`chain_windows` aligns each new window to the already aligned one with a robust
Sim(3) (:func:`dpt_ros.reconstruct.sim3.fit_sim3`) estimated on the shared frames:

- their camera centres (world-from-camera translations) and orientations;
- points back-projected from their confident depth pixels, subsampled on a regular
  pixel grid, one point per pixel in each window (the same pixel of the same frame is
  the same surface point seen by both windows).

The first window's world is the reconstruction's world and its unit is the
reconstruction's unit. Conventions: ``camera_from_world`` (N, 3, 4) maps world points
into the OpenCV optical frame (x right, y down, z forward); depth is the z coordinate
in that frame (larger = farther); intrinsics are pixels with (0, 0) the centre of the
top-left pixel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dpt_ros.reconstruct.sim3 import Sim3, Sim3Fit, fit_sim3, rotation_from_cross

__all__ = [
    "WindowResult",
    "AlignedWindow",
    "back_project",
    "align_window",
    "world_from_camera",
    "camera_centres",
    "DEFAULT_POINT_STRIDE",
]

_LOG = logging.getLogger(__name__)

#: Depth points of a shared frame taken every this many pixels in x and y.
DEFAULT_POINT_STRIDE = 4
#: Shared pixels used for the fit: those whose confidence is at least this quantile of
#: the frame's (in both windows).
CONFIDENT_QUANTILE = 0.5
#: A fit is refused when fewer of its correspondences than this are inliers...
MIN_INLIER_FRACTION = 0.3
#: ... or when its inliers' rms residual is more than this share of the shared frames'
#: median depth (the windows do not agree on the scene).
MAX_RELATIVE_RMS = 0.1


@dataclass(frozen=True)
class WindowResult:
    """One window's outputs on the network grid, as the model gives them.

    Attributes:
        depth: (N, h, w) float32 depth along the optical axis in the window's unit
            (larger = farther); non-finite or <= 0 = invalid.
        confidence: (N, h, w) float32, larger = more confident.
        camera_from_world: (N, 3, 4) float world -> OpenCV optical frame.
        intrinsics: (N, 3, 3) float pixels on the (h, w) grid.
        reference_view: the index the model took as its reference view.
        world_points: (N, h, w, 3) float32 point map (VGGT) or None.
        network_box: (N, 4) float ``x0, y0, x1, y1``: the region of each input image
            (pixel edges, input pixels) that the (h, w) grid covers: the whole image
            ``(0, 0, W, H)`` after a plain resize; smaller after a crop, larger after
            padding. None: the whole image.
    """

    depth: np.ndarray
    confidence: np.ndarray
    camera_from_world: np.ndarray
    intrinsics: np.ndarray
    reference_view: int = 0
    world_points: np.ndarray | None = None
    network_box: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.depth)
        if self.depth.ndim != 3:
            raise ValueError(f"window depth must be (N, h, w), got {self.depth.shape}")
        checks = {
            "confidence": (self.confidence.shape, self.depth.shape),
            "camera_from_world": (self.camera_from_world.shape, (n, 3, 4)),
            "intrinsics": (self.intrinsics.shape, (n, 3, 3)),
        }
        if self.world_points is not None:
            checks["world_points"] = (self.world_points.shape, (*self.depth.shape, 3))
        if self.network_box is not None:
            checks["network_box"] = (np.shape(self.network_box), (n, 4))
        for name, (got, want) in checks.items():
            if tuple(got) != tuple(want):
                raise ValueError(f"window {name} has shape {tuple(got)}, expected {want}")

    def __len__(self) -> int:
        return len(self.depth)

    def subset(self, index: Sequence[int] | slice) -> WindowResult:
        """The window restricted to some of its frames."""
        pick = np.arange(len(self))[index]
        return replace(
            self,
            depth=self.depth[pick],
            confidence=self.confidence[pick],
            camera_from_world=self.camera_from_world[pick],
            intrinsics=self.intrinsics[pick],
            world_points=None if self.world_points is None else self.world_points[pick],
            network_box=None if self.network_box is None else np.asarray(self.network_box)[pick],
        )


@dataclass(frozen=True)
class AlignedWindow:
    """A window in the reconstruction's world and unit.

    Attributes:
        index: the window's number, from 0.
        frames: indices of its frames in the input.
        window: its outputs, transformed: depth and world points scaled and moved by
            ``sim3``, cameras composed with it.
        sim3: window world -> reconstruction world (identity for the first window, and
            for every window when windows are not chained).
        fit: the quality of the estimate, None where none was made.
    """

    index: int
    frames: tuple[int, ...]
    window: WindowResult
    sim3: Sim3
    fit: Sim3Fit | None = None


def world_from_camera(camera_from_world: np.ndarray) -> np.ndarray:
    """(..., 3, 4) camera-from-world -> (..., 3, 4) world-from-camera."""
    cfw = np.asarray(camera_from_world, dtype=np.float64)
    r_t = np.swapaxes(cfw[..., :3, :3], -1, -2)
    t = -(r_t @ cfw[..., :3, 3:])
    return np.concatenate([r_t, t], axis=-1)


def camera_centres(camera_from_world: np.ndarray) -> np.ndarray:
    """(..., 3, 4) camera-from-world -> (..., 3) camera centres in the world."""
    return world_from_camera(camera_from_world)[..., 3]


def back_project(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    camera_from_world: np.ndarray,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
) -> np.ndarray:
    """World points of depth pixels.

    Args:
        depth: (h, w) depth along the optical axis.
        intrinsics: (3, 3) pixels.
        camera_from_world: (3, 4).
        rows, cols: pixel indices to take (same shape); default every pixel.

    Returns:
        (..., 3) float64 world points, ``rows.shape`` or (h, w).
    """
    if rows is None or cols is None:
        rows, cols = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]]
    k = np.asarray(intrinsics, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)[rows, cols]
    x = (cols - k[0, 2] - k[0, 1] * (rows - k[1, 2]) / k[1, 1]) / k[0, 0] * z
    y = (rows - k[1, 2]) / k[1, 1] * z
    cam = np.stack([x, y, z], axis=-1)
    wfc = world_from_camera(camera_from_world)
    return cam @ wfc[:3, :3].T + wfc[:3, 3]


def transform_window(window: WindowResult, sim3: Sim3) -> WindowResult:
    """``window`` moved into another world by ``sim3`` (window world -> that world)."""
    return replace(
        window,
        depth=(window.depth * sim3.scale).astype(np.float32),
        camera_from_world=sim3.transform_camera_from_world(window.camera_from_world),
        world_points=None
        if window.world_points is None
        else sim3.apply(window.world_points).astype(np.float32),
    )


def _valid(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def _correspondences(
    aligned: WindowResult,
    new: WindowResult,
    stride: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(source (M, 3) in the new window's world, target (M, 3) in the aligned world,
    weights (M,), depth ratios aligned / new (M,)) from the shared frames' confident
    depth pixels, subsampled."""
    sources, targets, weights, ratios = [], [], [], []
    for i in range(len(new)):
        d_new, d_old = new.depth[i], aligned.depth[i]
        if d_new.shape != d_old.shape:
            continue  # grids differ: the cameras still align the windows
        rows, cols = np.mgrid[0 : d_new.shape[0] : stride, 0 : d_new.shape[1] : stride]
        ok = _valid(d_new[rows, cols]) & _valid(d_old[rows, cols])
        c_new, c_old = new.confidence[i][rows, cols], aligned.confidence[i][rows, cols]
        c_new = np.where(np.isfinite(c_new), c_new, -np.inf)
        c_old = np.where(np.isfinite(c_old), c_old, -np.inf)
        if ok.any():
            ok &= c_new >= np.quantile(c_new[ok], CONFIDENT_QUANTILE)
            ok &= c_old >= np.quantile(c_old[ok], CONFIDENT_QUANTILE) if ok.any() else ok
        if not ok.any():
            continue
        r, c = rows[ok], cols[ok]
        sources.append(back_project(d_new, new.intrinsics[i], new.camera_from_world[i], r, c))
        targets.append(
            back_project(d_old, aligned.intrinsics[i], aligned.camera_from_world[i], r, c)
        )
        weights.append(np.ones(len(r)))
        ratios.append(d_old[r, c] / d_new[r, c])
    if not sources:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0)
    return (
        np.concatenate(sources),
        np.concatenate(targets),
        np.concatenate(weights),
        np.concatenate(ratios),
    )


def align_window(
    aligned_shared: WindowResult,
    new_shared: WindowResult,
    stride: int = DEFAULT_POINT_STRIDE,
) -> Sim3Fit:
    """The Sim(3) taking a new window's world onto the aligned world, from the frames
    they share.

    Args:
        aligned_shared: the shared frames as the aligned window has them (its world).
        new_shared: the same frames, in the same order, as the new window has them.
        stride: depth pixels taken every ``stride`` pixels.

    The camera centres count as much as all the depth points together (each centre
    weighted ``points / frames``), and the orientations as much again
    (``rotation_weight``), so that a window whose depth is poor still follows its
    cameras.

    Raises:
        ValueError: no shared frame, or a fit whose inliers are fewer than
            :data:`MIN_INLIER_FRACTION` of its correspondences or whose inliers' rms is
            over :data:`MAX_RELATIVE_RMS` of the median depth.
    """
    k = len(new_shared)
    if k == 0 or len(aligned_shared) != k:
        raise ValueError(f"windows share {k} frame(s) ({len(aligned_shared)} aligned)")
    src, dst, w, ratios = _correspondences(aligned_shared, new_shared, stride)
    centre_weight = max(1.0, len(src) / k)
    c_src = camera_centres(new_shared.camera_from_world)
    c_dst = camera_centres(aligned_shared.camera_from_world)
    src = np.concatenate([c_src, src])
    dst = np.concatenate([c_dst, dst])
    w = np.concatenate([np.full(k, centre_weight), w])
    r_src = world_from_camera(new_shared.camera_from_world)[..., :3, :3]
    r_dst = world_from_camera(aligned_shared.camera_from_world)[..., :3, :3]
    initial = None
    if len(ratios):
        # A first guess no outlier can pull far: the scale is the median ratio of the
        # two windows' depths of the same pixels, the rotation carries the shared
        # cameras' orientations over, the translation their centres.
        scale = float(np.median(ratios))
        rotation = rotation_from_cross(np.einsum("mij,mkj->ik", r_dst, r_src))
        translation = np.mean(c_dst - scale * c_src @ rotation.T, axis=0)
        initial = Sim3(scale, rotation, translation)
    fit = fit_sim3(src, dst, w, r_src, r_dst, rotation_weight=1.0 / k, initial=initial)
    if fit.inlier_fraction < MIN_INLIER_FRACTION:
        raise ValueError(
            f"windows do not agree on their {k} shared frame(s): only "
            f"{fit.inlier_fraction:.0%} of {fit.points} correspondences fit one Sim(3)"
        )
    depth = aligned_shared.depth[_valid(aligned_shared.depth)]
    scene = float(np.median(depth)) if depth.size else 0.0
    if scene > 0 and not fit.rms <= MAX_RELATIVE_RMS * scene:
        raise ValueError(
            f"windows do not agree on their {k} shared frame(s): the Sim(3) leaves an rms "
            f"residual of {fit.rms / scene:.0%} of the median depth (at most "
            f"{MAX_RELATIVE_RMS:.0%}); the model saw these frames as different scenes"
        )
    return fit


class WindowChain:
    """Aligns windows one after another (see the module docstring).

    Args:
        overlap: frames shared by consecutive windows; 0 = not chained (every window
            keeps its own world).
        stride: depth pixels taken every ``stride`` pixels for the fit.
    """

    def __init__(self, overlap: int, stride: int = DEFAULT_POINT_STRIDE) -> None:
        self.overlap = overlap
        self.stride = stride
        self.previous: AlignedWindow | None = None
        self.count = 0

    def add(self, frames: Sequence[int], window: WindowResult) -> AlignedWindow:
        """Aligns the next window (its frames' input indices and its outputs)."""
        frames = tuple(int(f) for f in frames)
        if len(frames) != len(window):
            raise ValueError(f"{len(frames)} frame indices for a window of {len(window)}")
        prev = self.previous
        fit = None
        sim3 = Sim3.identity()
        if prev is not None and self.overlap > 0:
            shared = [f for f in frames if f in prev.frames]
            if not shared:
                raise ValueError(f"window {self.count} shares no frame with the one before")
            new_idx = [frames.index(f) for f in shared]
            old_idx = [prev.frames.index(f) for f in shared]
            try:
                fit = align_window(prev.window.subset(old_idx), window.subset(new_idx), self.stride)
            except ValueError as exc:
                raise ValueError(
                    f"window {self.count} (frames {frames[0]}..{frames[-1]}): {exc}"
                ) from None
            sim3 = fit.sim3
            _LOG.info(
                "window %d: scale %.4g, %d correspondences, %.0f%% inliers, rms %.3g",
                self.count,
                sim3.scale,
                fit.points,
                100 * fit.inlier_fraction,
                fit.rms,
            )
        aligned = AlignedWindow(self.count, frames, transform_window(window, sim3), sim3, fit)
        self.previous = aligned
        self.count += 1
        return aligned
