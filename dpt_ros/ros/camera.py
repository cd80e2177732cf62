"""Pinhole camera intrinsics and ``sensor_msgs/CameraInfo`` rescaling.

Resizing convention
-------------------
dpt_ros resizes whole images (no crop) with OpenCV / torch bilinear or bicubic
interpolation using ``align_corners=False``. Under that convention pixel
*centres* map onto each other: a pixel with integer index ``u`` covers
``[u, u + 1)`` and its centre ``u + 0.5`` lands at ``u' + 0.5 = (u + 0.5) * sx``
with ``sx = new_width / old_width``. Hence::

    fx' = fx * sx
    cx' = (cx + 0.5) * sx - 0.5

and the same in y with ``sy``. ``image_proc``'s resize node and
``image_geometry``'s binning instead scale ``cx`` plainly (``cx' = cx * sx``),
which puts the principal point ``0.5 * |1 - sx|`` output pixels off, i.e. up
to half a pixel when downscaling. The pixel-centre form is the one that is
exact for the interpolation dpt_ros runs, so its camera_info differs from
image_proc's by that amount.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sensor_msgs.msg import CameraInfo, RegionOfInterest

from dpt_ros.ros.messages import copy_header

__all__ = [
    "Intrinsics",
    "scale_camera_info",
    "check_camera_info_matches",
]


def _check_size(width: int, height: int, what: str) -> tuple[int, int]:
    w, h = int(width), int(height)
    if w <= 0 or h <= 0:
        raise ValueError(f"{what} must be positive, got width={width}, height={height}")
    return w, h


def _scale_coord(c: float, s: float) -> float:
    """Map a pixel coordinate through a resize by ``s`` (pixel-centre convention)."""
    return (c + 0.5) * s - 0.5


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of a given size.

    Attributes:
        fx: Focal length along x, pixels.
        fy: Focal length along y, pixels.
        cx: Principal point x, pixels (0 = centre of the left-most pixel).
        cy: Principal point y, pixels (0 = centre of the top pixel).
        width: Image width, pixels.
        height: Image height, pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        """Validate the fields.

        Raises:
            ValueError: Non-positive or non-finite focal length, non-finite
                principal point, or non-positive image size.
        """
        if not (math.isfinite(self.fx) and math.isfinite(self.fy) and self.fx > 0 and self.fy > 0):
            raise ValueError(
                f"focal lengths must be finite and > 0, got fx={self.fx}, fy={self.fy}"
            )
        if not (math.isfinite(self.cx) and math.isfinite(self.cy)):
            raise ValueError(f"principal point must be finite, got cx={self.cx}, cy={self.cy}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(
                f"image size must be positive, got width={self.width}, height={self.height}"
            )

    @classmethod
    def from_camera_info(cls, info: CameraInfo) -> Intrinsics:
        """Read the intrinsics from a CameraInfo's ``K`` matrix.

        ``K`` describes the (possibly distorted) raw image; skew ``K[1]`` is
        ignored. Binning and ROI fields are not applied: the intrinsics are
        those of an ``info.width`` x ``info.height`` image.

        Args:
            info: Camera calibration message.

        Returns:
            Intrinsics with ``width = info.width``, ``height = info.height``.

        Raises:
            ValueError: ``K`` is all zero (camera not calibrated), ``fx`` or
                ``fy`` is not a finite positive number, ``cx``/``cy`` are not
                finite, or the size is zero.
        """
        k = [float(v) for v in info.k]
        if len(k) != 9:
            raise ValueError(f"camera_info K must have 9 elements, got {len(k)}")
        if all(v == 0.0 for v in k):
            raise ValueError(
                "camera_info K is all zero: the camera is not calibrated. Calibrate "
                "it (camera_calibration) or publish a CameraInfo with K set"
            )
        fx, fy, cx, cy = k[0], k[4], k[2], k[5]
        if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0.0 and fy > 0.0):
            raise ValueError(
                f"camera_info K has invalid focal lengths fx={fx}, fy={fy}; both "
                "must be finite and > 0 (K = [fx 0 cx; 0 fy cy; 0 0 1])"
            )
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise ValueError(f"camera_info K has a non-finite principal point cx={cx}, cy={cy}")
        width, height = _check_size(info.width, info.height, "camera_info width/height")
        return cls(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height)

    def scaled(self, width: int, height: int) -> Intrinsics:
        """Intrinsics of this image resized (no crop) to ``width`` x ``height``.

        Uses the pixel-centre convention described in the module docstring:
        ``fx' = fx * sx``, ``cx' = (cx + 0.5) * sx - 0.5`` (same in y).

        Args:
            width: New image width, pixels (> 0).
            height: New image height, pixels (> 0).

        Returns:
            The rescaled intrinsics.

        Raises:
            ValueError: Non-positive target size.
        """
        w, h = _check_size(width, height, "target size")
        sx = w / self.width
        sy = h / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=_scale_coord(self.cx, sx),
            cy=_scale_coord(self.cy, sy),
            width=w,
            height=h,
        )

    def to_camera_info(self, frame_id: str = "") -> CameraInfo:
        """A CameraInfo of an ideal (undistorted, unrectified) pinhole camera with these
        intrinsics: ``K`` and ``P`` from fx, fy, cx, cy, ``R`` identity, ``plumb_bob``
        with zero distortion. The inverse of :meth:`from_camera_info`.
        """
        info = CameraInfo(width=self.width, height=self.height, distortion_model="plumb_bob")
        info.header.frame_id = frame_id
        info.d = [0.0] * 5
        info.k = [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def matrix(self) -> np.ndarray:
        """Return ``K`` as a (3, 3) float64 array."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]],
            dtype=np.float64,
        )


def _scale_roi(
    roi: RegionOfInterest, sx: float, sy: float, width: int, height: int
) -> RegionOfInterest:
    """Region of interest of an image resized by ``sx`` x ``sy``.

    Args:
        roi: ROI of the original image (pixel edges).
        sx: New width / old width.
        sy: New height / old height.
        width: New image width, pixels (the ROI is clipped to it).
        height: New image height, pixels.

    Returns:
        A new ROI with rounded, clipped bounds; an all-zero ROI ("full image")
        stays all zero.
    """
    out = RegionOfInterest()
    out.do_rectify = bool(roi.do_rectify)
    if roi.x_offset == 0 and roi.y_offset == 0 and roi.width == 0 and roi.height == 0:
        return out  # "full image" stays all zero
    # ROI bounds are pixel edges, which scale without the half-pixel shift.
    x0 = min(max(round(roi.x_offset * sx), 0), width)
    y0 = min(max(round(roi.y_offset * sy), 0), height)
    x1 = min(max(round((roi.x_offset + roi.width) * sx), x0), width)
    y1 = min(max(round((roi.y_offset + roi.height) * sy), y0), height)
    out.x_offset = int(x0)
    out.y_offset = int(y0)
    out.width = int(x1 - x0)
    out.height = int(y1 - y0)
    return out


def _scale_k(k_in: npt.ArrayLike, sx: float, sy: float) -> np.ndarray:
    """Camera matrix ``K`` of an image resized by ``sx`` x ``sy`` (pixel-centre convention).

    Args:
        k_in: Row-major 3x3 ``K`` (9 values, pixels).
        sx: New width / old width.
        sy: New height / old height.

    Returns:
        (9,) float64 ``K'``: fx and skew times ``sx``, fy times ``sy``, cx and
        cy through :func:`_scale_coord`; an all-zero ``K`` stays all zero.
    """
    k = np.array(k_in, dtype=np.float64).reshape(9)
    if np.any(k != 0.0):
        k[0] *= sx
        k[1] *= sx
        k[2] = _scale_coord(k[2], sx)
        k[4] *= sy
        k[5] = _scale_coord(k[5], sy)
    return k


def _scale_p(p_in: npt.ArrayLike, sx: float, sy: float) -> np.ndarray:
    """Projection matrix ``P`` of an image resized by ``sx`` x ``sy`` (pixel-centre convention).

    Args:
        p_in: Row-major 3x4 ``P`` (12 values, pixels; ``P[3] = -fx * B``).
        sx: New width / old width.
        sy: New height / old height.

    Returns:
        (12,) float64 ``P'``: ``P[0]``, ``P[1]``, ``P[3]`` times ``sx``,
        ``P[5]``, ``P[7]`` times ``sy``, ``P[2]`` and ``P[6]`` through
        :func:`_scale_coord`, third row unchanged; an all-zero ``P`` stays all
        zero.
    """
    p = np.array(p_in, dtype=np.float64).reshape(12)
    if np.any(p != 0.0):
        p[0] *= sx
        p[1] *= sx
        p[2] = _scale_coord(p[2], sx)
        p[3] *= sx
        p[5] *= sy
        p[6] = _scale_coord(p[6], sy)
        p[7] *= sy
    return p


def scale_camera_info(info: CameraInfo, width: int, height: int) -> CameraInfo:
    """CameraInfo for the image resized from ``info``'s size to ``width`` x ``height``.

    The whole image is resized (no crop) with ``align_corners=False``
    geometry, so (pixel-centre convention, see module docstring)::

        K: fx' = fx*sx, skew' = skew*sx, cx' = (cx + 0.5)*sx - 0.5,
           fy' = fy*sy,                  cy' = (cy + 0.5)*sy - 0.5
        P: P[0], P[1], P[3] (= -fx'*B) scale by sx; P[2] like cx;
           P[5], P[7] scale by sy; P[6] like cy; third row unchanged.

    An all-zero ``K`` or ``P`` (uncalibrated) stays all zero. ``D``, ``R``
    and ``distortion_model`` are unchanged (distortion acts on normalised
    coordinates). ``binning_x``/``binning_y`` are set to 0 and the ROI is
    scaled to the new size (an all-zero ROI stays all zero). The input is
    assumed unbinned: with binning > 1 the result describes a resize of the
    full-resolution calibration, not of the binned image.

    Args:
        info: Calibration of the original image (not modified).
        width: New image width, pixels (> 0).
        height: New image height, pixels (> 0).

    Returns:
        A new CameraInfo with its own copy of the header.

    Raises:
        ValueError: ``info`` has zero width/height or the target is not positive.
    """
    old_w, old_h = _check_size(info.width, info.height, "camera_info width/height")
    new_w, new_h = _check_size(width, height, "target size")
    sx = new_w / old_w
    sy = new_h / old_h

    out = CameraInfo()
    out.header = copy_header(info.header)
    out.width = new_w
    out.height = new_h
    out.distortion_model = str(info.distortion_model)
    out.d = array.array("d", [float(v) for v in info.d])
    out.k = _scale_k(info.k, sx, sy)
    out.r = np.array(info.r, dtype=np.float64).reshape(9)
    out.p = _scale_p(info.p, sx, sy)
    out.binning_x = 0
    out.binning_y = 0
    out.roi = _scale_roi(info.roi, sx, sy, new_w, new_h)
    return out


def check_camera_info_matches(info: CameraInfo, width: int, height: int) -> None:
    """Check that a CameraInfo describes an image of the given size.

    Args:
        info: Calibration received with the image.
        width: Width of the image, pixels.
        height: Height of the image, pixels.

    Raises:
        ValueError: ``info.width x info.height`` differs from
            ``width x height``; the message names both sizes.
    """
    if int(info.width) != int(width) or int(info.height) != int(height):
        raise ValueError(
            f"camera_info is {info.width}x{info.height} but the image is "
            f"{width}x{height} (width x height); the camera_info topic must belong "
            "to the same image stream (check the remappings, or that the driver "
            "publishes camera_info for the resolution it streams)"
        )
