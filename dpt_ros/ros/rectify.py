"""Rectification of raw camera images from their ``sensor_msgs/CameraInfo``, as
image_geometry's ``PinholeCameraModel.rectifyImage``: ``initUndistortRectifyMap(K, D, R,
P)``, then a remap, so that the result follows ``P`` (what the node back-projects with).

Distortion models: ``plumb_bob`` and ``rational_polynomial`` (OpenCV's pinhole model, 5
or 8 coefficients) and ``equidistant`` (OpenCV's fisheye model, 4 coefficients).
"""

from __future__ import annotations

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo

from dpt_ros.ros.camera import camera_matrix

#: The distortion models :class:`Rectifier` handles.
DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")


def _key(info: CameraInfo) -> tuple:
    """What the rectification maps depend on."""
    return (
        str(info.distortion_model),
        int(info.width),
        int(info.height),
        tuple(float(v) for v in info.d),
        tuple(float(v) for v in info.k),
        tuple(float(v) for v in info.r),
        tuple(float(v) for v in info.p),
    )


def rectification_maps(info: CameraInfo) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y): for each rectified pixel, where to sample the raw image.

    Args:
        info: the raw image's calibration (``K``, ``D``, ``R``, ``P``; no binning or
            ROI).

    Returns:
        Two (height, width) float32 arrays for ``cv2.remap``.

    Raises:
        ValueError: an unknown distortion model, too few coefficients, binning or ROI
            (not supported here), or no usable camera matrix.
    """
    model = str(info.distortion_model)
    if model not in DISTORTION_MODELS:
        raise ValueError(
            f"cannot rectify distortion_model {model!r}; valid: {', '.join(DISTORTION_MODELS)}"
        )
    roi = info.roi
    if info.binning_x > 1 or info.binning_y > 1 or roi.width or roi.height:
        raise ValueError("rectify does not handle binning or ROI; rectify with image_proc instead")
    k = np.array(info.k, dtype=np.float64).reshape(3, 3)
    r = np.array(info.r, dtype=np.float64).reshape(3, 3)
    if not np.any(r):
        r = np.eye(3)
    new_k, _ = camera_matrix(info)
    d = np.array(info.d, dtype=np.float64)
    size = (int(info.width), int(info.height))
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(k)) and np.all(np.isfinite(r))):
        raise ValueError(f"camera_info D, K or R holds NaN or infinity (D={d.tolist()})")
    if model == "equidistant":
        if d.size < 4:
            raise ValueError(f"equidistant needs 4 coefficients in D, got {d.size}")
        maps = cv2.fisheye.initUndistortRectifyMap(k, d[:4], r, new_k, size, cv2.CV_32FC1)
    elif d.size not in (4, 5, 8, 12, 14):
        raise ValueError(f"{model} needs 4, 5, 8, 12 or 14 coefficients in D, got {d.size}")
    else:
        maps = cv2.initUndistortRectifyMap(k, d, r, new_k, size, cv2.CV_32FC1)
    _check_coverage(maps, size, d)
    return maps


#: Least share of rectified pixels that must see the raw image. A real calibration
#: keeps nearly all of them (a wide fisheye with P = K keeps most); far fewer means D
#: is not this camera's (an absurd coefficient): the frame would come out black, and
#: black would be published as valid depth.
MIN_RECTIFIED_COVERAGE = 0.5


def _check_coverage(
    maps: tuple[np.ndarray, np.ndarray], size: tuple[int, int], d: np.ndarray
) -> None:
    """Raises ValueError when too few rectified pixels sample inside the raw image."""
    map_x, map_y = maps
    width, height = size
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    share = float(np.mean(inside)) if inside.size else 0.0
    if not share >= MIN_RECTIFIED_COVERAGE:
        raise ValueError(
            f"camera_info distortion D={d.tolist()} maps only {share:.0%} of the rectified "
            f"image inside the camera's view (at least {MIN_RECTIFIED_COVERAGE:.0%} "
            "expected): not this camera's calibration; the frame is not rectified"
        )


class Rectifier:
    """Rectifies images, keeping the maps of the latest calibration of each camera."""

    def __init__(self) -> None:
        self._maps: dict[object, tuple[tuple, tuple[np.ndarray, np.ndarray]]] = {}

    def __call__(self, rgb: np.ndarray, info: CameraInfo, stream: object = None) -> np.ndarray:
        """The rectified image.

        Args:
            rgb: (H, W, 3) uint8 raw image of ``info``'s size.
            info: its calibration.
            stream: which camera (each keeps its own maps).

        Returns:
            (H, W, 3) uint8, bilinear; pixels that see outside the raw image are black.

        Raises:
            ValueError: see :func:`rectification_maps`, or an image of another size.
        """
        if rgb.shape[:2] != (int(info.height), int(info.width)):
            raise ValueError(
                f"cannot rectify a {rgb.shape[1]}x{rgb.shape[0]} image with a camera_info "
                f"of {info.width}x{info.height}"
            )
        key = _key(info)
        cached = self._maps.get(stream)
        if cached is None or cached[0] != key:
            cached = self._maps[stream] = (key, rectification_maps(info))
        map_x, map_y = cached[1]
        return cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
