"""Pictures of the demo's outputs: the point cloud preview and the per-frame PNG files.

The cloud preview is numpy splatting with a z-buffer: the cloud seen from above,
behind and left of the camera, coloured by depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays
from dpt_ros.viz.colormap import TURBO_LUT, colorize
from dpt_ros.viz.pictures import write_png

#: The kinds of frame pictures, ``frame_XXX_<kind>.png``, in the order they are written.
PICTURE_KINDS = ("input", "depth_color", "labels_overlay", "cloud_preview")
#: Background grey level of the cloud preview.
_BACKGROUND = 24
#: Side margin of the fitted view and the height kept free for the caption (pixels).
_MARGIN, _CAPTION_HEIGHT = 16, 20


@dataclass(frozen=True)
class _OrbitView:
    """A pinhole camera looking at the cloud (world frame: X right, Y up, Z forward).

    Attributes:
        eye: (3,) position in metres.
        right, up, forward: (3,) unit axes of the view.
    """

    eye: np.ndarray
    right: np.ndarray
    up: np.ndarray
    forward: np.ndarray

    def normalized(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u / f, v / f, depth along ``forward`` in metres) of the points ``p`` (N, 3)."""
        rel = p - self.eye
        zc = rel @ self.forward
        with np.errstate(divide="ignore", invalid="ignore"):
            return (rel @ self.right) / zc, -(rel @ self.up) / zc, zc


@dataclass(frozen=True)
class _FittedView:
    """An :class:`_OrbitView` scaled and centred to fit an image.

    Attributes:
        view: the view.
        uc, vc: centre of the fitted region in normalized coordinates.
        scale: pixels per normalized unit.
        width, height: image size in pixels.
    """

    view: _OrbitView
    uc: float
    vc: float
    scale: float
    width: int
    height: int

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v pixel coordinates (N,), depth along the view in metres (N,)) of ``p``."""
        a, b, z = self.view.normalized(p)
        return (
            (a - self.uc) * self.scale + self.width / 2,
            (b - self.vc) * self.scale + (self.height - _CAPTION_HEIGHT) / 2,
            z,
        )


def _orbit_view(world: np.ndarray) -> _OrbitView:
    """The view from above, behind and left of the cloud ``world`` (N, 3), at its median."""
    target = np.median(world, 0)
    extent = float(np.percentile(np.linalg.norm(world - target, axis=1), 95)) + 1e-3
    az, el = math.radians(-25.0), math.radians(40.0)
    eye = target + 2.2 * extent * np.array(
        [math.sin(az) * math.cos(el), math.sin(el), -math.cos(az) * math.cos(el)]
    )
    forward = (target - eye) / np.linalg.norm(target - eye)
    # X right, Y up, Z forward is a left-handed frame: these cross products give the
    # view's right and up vectors.
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    up = np.cross(forward, right)
    return _OrbitView(eye, right, up, forward)


def _fit_view(view: _OrbitView, world: np.ndarray, width: int, height: int) -> _FittedView | None:
    """Fits ``view`` to the cloud ``world`` (N, 3); None when no point is in front of it."""
    # Fit the view to the cloud (1st..99th percentile of the projections), margins kept.
    un, vn, zc = view.normalized(world)
    front = zc > 1e-3
    if not front.any():
        return None
    (u0, u1), (v0, v1) = (np.percentile(un[front], [1, 99]), np.percentile(vn[front], [1, 99]))
    scale = min(
        (width - 2 * _MARGIN) / max(u1 - u0, 1e-6),
        (height - 2 * _MARGIN - _CAPTION_HEIGHT) / max(v1 - v0, 1e-6),
    )
    return _FittedView(view, (u0 + u1) / 2, (v0 + v1) / 2, scale, width, height)


def _splat(
    image: np.ndarray, u: np.ndarray, v: np.ndarray, z: np.ndarray, colors: np.ndarray
) -> None:
    """Draws 2x2 splats into ``image`` (H, W, 3) uint8, in place, nearest on top.

    Args:
        image: the picture.
        u, v: (N,) pixel coordinates of the points.
        z: (N,) their depth along the view (metres).
        colors: (N, 3) uint8 RGB.
    """
    height, width = image.shape[:2]
    ui, vi = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    offsets = ((0, 0), (1, 0), (0, 1), (1, 1))
    us = np.concatenate([ui + dx for dx, _ in offsets])
    vs = np.concatenate([vi + dy for _, dy in offsets])
    zs, cs = np.tile(z, 4), np.tile(colors, (4, 1))
    inside = (us >= 0) & (us < width) & (vs >= 0) & (vs < height)
    us, vs, zs, cs = us[inside], vs[inside], zs[inside], cs[inside]
    order = np.argsort(zs, kind="stable")
    pix = (vs * width + us)[order]
    _, first = np.unique(pix, return_index=True)  # the nearest splat of each pixel
    flat = image.reshape(-1, 3)
    flat[pix[first]] = cs[order][first]


def _draw_camera_marker(image: np.ndarray, fitted: _FittedView) -> None:
    """Marks the real camera (the origin of the cloud's frame) with a white triangle."""
    cam_u, cam_v, cam_z = fitted.project(np.zeros((1, 3)))
    if cam_z[0] > 0 and np.isfinite(cam_u[0]) and np.isfinite(cam_v[0]):
        centre = (int(round(cam_u[0])), int(round(cam_v[0])))
        cv2.drawMarker(image, centre, (255, 255, 255), cv2.MARKER_TRIANGLE_UP, 14, 2)


def _put_text(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    font_scale: float,
    color: tuple[int, int, int],
) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, 1, cv2.LINE_AA)


def render_cloud_preview(xyz: np.ndarray, width: int = 480, height: int = 360) -> np.ndarray:
    """An oblique view of camera-frame points (optical: x right, y down, z forward).

    The virtual camera is above, behind and left of the real one, looking at the
    cloud; points are coloured by their depth (Turbo, near = red) and drawn as 2x2
    splats, nearest on top. The real camera is the white marker.

    Args:
        xyz: (..., 3) points in metres; non-finite ones are skipped.
        width, height: size of the picture in pixels.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    image = np.full((height, width, 3), _BACKGROUND, np.uint8)
    pts = np.asarray(xyz, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        _put_text(image, "no valid points", (10, 24), 0.6, (220, 220, 220))
        return image
    world = np.stack([pts[:, 0], -pts[:, 1], pts[:, 2]], 1)  # Y up
    fitted = _fit_view(_orbit_view(world), world, width, height)
    if fitted is None:
        return image

    u, v, zc = fitted.project(world)
    lo, hi = np.percentile(pts[:, 2], [2, 98])
    colors = colorize(pts[:, 2][None], float(hi), float(max(lo, 0.0)), lut=TURBO_LUT)[0]
    ok = zc > 1e-3
    _splat(image, u[ok], v[ok], zc[ok], colors[ok])
    _draw_camera_marker(image, fitted)
    _put_text(
        image, f"{len(pts)} points, z {lo:.1f}-{hi:.1f} m", (8, height - 10), 0.5, (230, 230, 230)
    )
    return image


def write_frame_pictures(stem: Path, image_msg: Any, outputs: dict[str, Any]) -> list[str]:
    """Writes the pictures of one frame: ``<stem>_input.png`` and, for the outputs
    received, ``_depth_color``, ``_labels_overlay`` and ``_cloud_preview``.

    Args:
        stem: path of the frame's files without the suffix (``<dir>/frame_XXX``).
        image_msg: the input ``sensor_msgs/Image``.
        outputs: the node's output messages of the frame, by output topic name
            (``depth/colored``, ``segmentation/colored``, ``points``, ...).

    Returns:
        The names of the files written, in order.
    """
    files: list[str] = []
    write_png(Path(f"{stem}_input.png"), image_msg_to_array(image_msg), rgb=True)
    files.append(f"{stem.name}_input.png")
    if "depth/colored" in outputs:
        write_png(
            Path(f"{stem}_depth_color.png"), image_msg_to_array(outputs["depth/colored"]), rgb=True
        )
        files.append(f"{stem.name}_depth_color.png")
    if "segmentation/colored" in outputs:
        write_png(
            Path(f"{stem}_labels_overlay.png"),
            image_msg_to_array(outputs["segmentation/colored"]),
            rgb=True,
        )
        files.append(f"{stem.name}_labels_overlay.png")
    if "points" in outputs:
        arrays = pointcloud2_to_arrays(outputs["points"])
        xyz = np.stack([arrays["x"], arrays["y"], arrays["z"]], -1)
        write_png(Path(f"{stem}_cloud_preview.png"), render_cloud_preview(xyz), rgb=True)
        files.append(f"{stem.name}_cloud_preview.png")
    return files
