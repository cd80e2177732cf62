"""Pinhole camera intrinsics and ``sensor_msgs/CameraInfo`` rescaling.

Which matrix
------------
As image_geometry's ``PinholeCameraModel``: pixels are back-projected with ``P`` (the
rectified camera; ``image_rect`` is the normal input of a depth node), with ``K`` only
when ``P`` is all zero. Binning and ROI adjust the matrix (``cx' = (cx - x_offset) /
binning_x``), not the image. The published ``depth/camera_info`` describes the
published depth image exactly: rectified, ``D`` = 0, ``K`` = ``P``'s left 3x3
(:func:`depth_camera_info`).

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
from std_msgs.msg import Header

from dpt_ros.ros.messages import copy_header

__all__ = [
    "Intrinsics",
    "camera_matrix",
    "focal_length_range",
    "image_size",
    "depth_camera_info",
    "is_distorted",
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


def camera_matrix(info: CameraInfo) -> tuple[np.ndarray, str]:
    """The 3x3 camera matrix that maps rays to pixels of ``info``'s image, and its source.

    Args:
        info: Camera calibration message.

    Returns:
        (matrix, source): ``P``'s left 3x3 and ``"P"`` when ``P`` is set (not all
        zero), as image_geometry uses it; else ``K`` and ``"K"``.

    Raises:
        ValueError: ``K`` or ``P`` has the wrong length, or both are all zero.
    """
    k = np.array([float(v) for v in info.k], dtype=np.float64)
    p = np.array([float(v) for v in info.p], dtype=np.float64)
    if k.size != 9 or p.size != 12:
        raise ValueError(f"camera_info K must have 9 elements and P 12, got {k.size} and {p.size}")
    if np.any(p != 0.0):
        return p.reshape(3, 4)[:, :3].copy(), "P"
    if np.all(k == 0.0):
        raise ValueError(
            "camera_info K is all zero: the camera is not calibrated. Calibrate "
            "it (camera_calibration) or publish a CameraInfo with K set"
        )
    return k.reshape(3, 3), "K"


def _roi_box(info: CameraInfo) -> tuple[int, int, int, int]:
    """(x_offset, y_offset, width, height) of the ROI in full-resolution pixels; the
    whole image when the ROI is all zero."""
    roi = info.roi
    if roi.x_offset == 0 and roi.y_offset == 0 and roi.width == 0 and roi.height == 0:
        return 0, 0, int(info.width), int(info.height)
    box = int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)
    if box[0] + box[2] > int(info.width) or box[1] + box[3] > int(info.height):
        raise ValueError(
            f"camera_info ROI {box[2]}x{box[3]}+{box[0]}+{box[1]} lies outside its "
            f"{info.width}x{info.height} sensor (REP-104: the ROI is a window of it)"
        )
    return box


def image_size(info: CameraInfo) -> tuple[int, int]:
    """(width, height) of the image published with ``info``: its ROI (the full
    ``width`` x ``height`` when the ROI is all zero) divided by the binning.

    Raises:
        ValueError: the size is zero.
    """
    _, _, w, h = _roi_box(info)
    bx, by = max(1, int(info.binning_x)), max(1, int(info.binning_y))
    return _check_size(w // bx, h // by, "camera_info image size (ROI / binning)")


#: The widest and narrowest fields of view a pinhole calibration may describe, across
#: the larger image side: a 179 degree fisheye and a 0.5 degree telephoto. A focal length
#: outside them (in pixels, f = side / (2 tan(fov / 2))) is a broken calibration, not a
#: lens: fx = 1e30 published depth of 1e27 m and fx = 1e-30 put every point at the camera.
WIDEST_FOV_DEG = 179.0
NARROWEST_FOV_DEG = 0.5


def focal_length_range(width: int, height: int) -> tuple[float, float]:
    """(shortest, longest) plausible focal length in pixels of a ``width`` x ``height``
    image: the 179 and 0.5 degree fields of view across ``max(width, height)`` (about
    0.0044 and 114.6 times that side)."""
    side = max(int(width), int(height))
    shortest = side / (2.0 * math.tan(math.radians(WIDEST_FOV_DEG) / 2.0))
    longest = side / (2.0 * math.tan(math.radians(NARROWEST_FOV_DEG) / 2.0))
    return shortest, longest


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
        """The pinhole camera of the image that ``info`` comes with, as image_geometry's
        ``PinholeCameraModel`` sees it.

        Rays come from ``P`` (the rectified camera: the normal input of a depth node is
        ``image_rect``); a ``P`` that is all zero (a driver that fills only ``K``) falls
        back to ``K``. Skew is ignored. Binning and ROI adjust the model, not the image:
        ``fx' = fx / binning_x``, ``cx' = (cx - roi.x_offset) / binning_x`` (same in y),
        and the image is ``roi.width / binning_x`` x ``roi.height / binning_y`` pixels
        (the full ``width`` x ``height`` when the ROI is all zero).

        Args:
            info: Camera calibration message.

        Returns:
            Intrinsics of the image the camera publishes with this calibration.

        Raises:
            ValueError: ``K`` is all zero (camera not calibrated), the focal lengths
                are not finite and positive or outside :func:`focal_length_range` (after
                binning), ``cx``/``cy`` are not finite, or the size is zero.
        """
        matrix, source = camera_matrix(info)
        fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
        if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0.0 and fy > 0.0):
            raise ValueError(
                f"camera_info {source} has invalid focal lengths fx={fx}, fy={fy}; both "
                "must be finite and > 0 (K = [fx 0 cx; 0 fy cy; 0 0 1])"
            )
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise ValueError(
                f"camera_info {source} has a non-finite principal point cx={cx}, cy={cy}"
            )
        bx, by = max(1, int(info.binning_x)), max(1, int(info.binning_y))
        x0, y0, _, _ = _roi_box(info)
        width, height = image_size(info)
        shortest, longest = focal_length_range(width, height)
        for name, f in (("fx", float(fx) / bx), ("fy", float(fy) / by)):
            if not shortest <= f <= longest:
                raise ValueError(
                    f"camera_info {source} has an implausible focal length {name}={f:.6g} px "
                    f"for its {width}x{height} image: a pinhole camera's lies between "
                    f"{shortest:.3g} and {longest:.4g} px (fields of view of "
                    f"{WIDEST_FOV_DEG:g} to {NARROWEST_FOV_DEG:g} degrees)"
                )
        return cls(
            fx=float(fx) / bx,
            fy=float(fy) / by,
            cx=(float(cx) - x0) / bx,
            cy=(float(cy) - y0) / by,
            width=width,
            height=height,
        )

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

    def to_camera_info(self, frame_id: str = "", tx: float = 0.0) -> CameraInfo:
        """A CameraInfo of an ideal (undistorted, rectified) pinhole camera with these
        intrinsics: ``K`` and ``P`` from fx, fy, cx, cy, ``R`` identity, ``plumb_bob``
        with zero distortion. The inverse of :meth:`from_camera_info`.

        Args:
            frame_id: the header's frame.
            tx: ``P[3] = -fx * baseline`` (pixels; a stereo pair's right camera), else 0.
        """
        info = CameraInfo(width=self.width, height=self.height, distortion_model="plumb_bob")
        info.header.frame_id = frame_id
        info.d = [0.0] * 5
        info.k = [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [self.fx, 0.0, self.cx, float(tx), 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
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

    The camera_info's image is its ROI divided by its binning (:func:`image_size`).

    Args:
        info: Calibration received with the image.
        width: Width of the image, pixels.
        height: Height of the image, pixels.

    Raises:
        ValueError: the camera_info's image size differs from ``width x height``; the
            message names both sizes, and the binning and ROI when set.
    """
    info_w, info_h = image_size(info)
    if info_w != int(width) or info_h != int(height):
        how = f"{info.width}x{info.height}"
        if (info_w, info_h) != (int(info.width), int(info.height)):
            roi = info.roi
            how += (
                f" with ROI {roi.width}x{roi.height}+{roi.x_offset}+{roi.y_offset} and "
                f"binning {info.binning_x}x{info.binning_y}, i.e. {info_w}x{info_h}"
            )
        raise ValueError(
            f"camera_info is {how} but the image is "
            f"{width}x{height} (width x height); the camera_info topic must belong "
            "to the same image stream (check the remappings, or that the driver "
            "publishes camera_info for the resolution it streams)"
        )


def depth_camera_info(
    info: CameraInfo,
    width: int,
    height: int,
    header: Header,
    camera: Intrinsics | None = None,
) -> tuple[Intrinsics, CameraInfo]:
    """The camera of a depth image computed from ``info``'s image and resized to
    ``width`` x ``height``, and the CameraInfo that describes exactly that image.

    The depth image is taken as rectified (its pixels follow ``P``, see
    :meth:`Intrinsics.from_camera_info`), so the CameraInfo has ``D`` = 0
    (``plumb_bob``), ``R`` = identity, ``K`` = ``P``'s left 3x3 and ``P`` with its
    ``Tx`` (``-fx * baseline``) kept, all rescaled to the output size; no binning,
    no ROI. A ``P`` that was all zero is filled from ``K``, so consumers that read ``P``
    (depth_image_proc) never divide by zero.

    Args:
        info: Calibration received with the camera image.
        width: Published width, pixels.
        height: Published height, pixels.
        header: The camera image's header (copied).
        camera: ``Intrinsics.from_camera_info(info)``, when the caller has it already
            (read once per frame); None = read here.

    Returns:
        (intrinsics at the published size, CameraInfo for the published images).

    Raises:
        ValueError: ``info`` is not a usable calibration (see ``from_camera_info``).
    """
    if camera is None:
        camera = Intrinsics.from_camera_info(info)
    intrinsics = camera.scaled(width, height)
    p = [float(v) for v in info.p]
    if len(p) == 12 and not all(math.isfinite(v) for v in p):
        raise ValueError(
            f"camera_info P holds NaN or infinity (P={p}); Tx and Ty too must be finite"
        )
    tx = p[3] * intrinsics.fx / p[0] if len(p) == 12 and p[0] != 0.0 else 0.0
    out = intrinsics.to_camera_info(tx=tx)
    out.header = copy_header(header)
    return intrinsics, out


def is_distorted(info: CameraInfo) -> bool:
    """True when ``info`` has non-zero distortion coefficients: its image is the raw one,
    and pixels follow the rectified ``P`` only after rectification (image_proc)."""
    return any(float(v) != 0.0 for v in info.d)
