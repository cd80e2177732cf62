"""Conversions between ``sensor_msgs`` image messages and numpy arrays.

This module replaces ``cv_bridge`` for the few encodings dpt_ros needs. It is
numpy code (OpenCV decodes ``CompressedImage`` payloads and does plain channel
shuffles, where it is much faster than numpy) and never touches an rclpy node,
so it can be tested without ROS running.

Decoding (camera input):

* :func:`image_to_rgb` turns a ``sensor_msgs/Image`` in any supported
  encoding into an ``(H, W, 3)`` uint8 RGB array.
* :func:`compressed_to_rgb` does the same for ``sensor_msgs/CompressedImage``
  (JPEG / PNG, as published by ``image_transport``'s ``compressed`` plugin).

Encoding (our outputs) and reading them back:

* :func:`depth_to_image_msg` (``32FC1`` metres), :func:`labels_to_image_msg`
  (``mono8``) and :func:`rgb_to_image_msg` (``rgb8``).
* :func:`image_msg_to_array` reads those three encodings back into arrays.

Every decoded array is a fresh, writable, C-contiguous copy: it never aliases
the message's buffer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Final

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from dpt_ros.ros.image_size import DEFAULT_MAX_INPUT_PIXELS, size_problem, too_large
from dpt_ros.ros.messages import (
    array_to_msg_data,
    copy_header,
    message_bytes,
    new_message,
    shown,
)

__all__ = [
    "ImageDecodeError",
    "SUPPORTED_ENCODINGS",
    "image_to_rgb",
    "compressed_to_rgb",
    "depth_to_image_msg",
    "labels_to_image_msg",
    "rgb_to_image_msg",
    "image_msg_to_array",
]


class ImageDecodeError(ValueError):
    """An image message cannot be decoded (bad encoding, size or payload)."""


#: Encodings accepted by :func:`image_to_rgb` (as spelled in ROS).
SUPPORTED_ENCODINGS: Final[tuple[str, ...]] = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "mono16",
    "16UC1",
    "yuv422",
    "uyvy",
    "yuv422_yuy2",
    "yuyv",
)

# Packed 4:2:2 encodings (canonical spellings): two pixels per chroma pair,
# so their width must be even.
_YUV422_ENCODINGS: Final[frozenset[str]] = frozenset(("yuv422", "uyvy", "yuv422_yuy2", "yuyv"))

# Encodings image_msg_to_array reads back (our own outputs).
_OUTPUT_ENCODINGS: Final[tuple[str, ...]] = ("32FC1", "mono8", "rgb8")

# BT.601 YCbCr -> RGB, "limited" (studio / video) range: Y in 16..235,
# Cb/Cr in 16..240 centred on 128. Derived from Kr = 0.299, Kb = 0.114:
#   R = 255/219 (Y-16)                                   + 255/224*1.402 (V-128)
#   G = 255/219 (Y-16) - 255/224*0.344136 (U-128)        - 255/224*0.714136 (V-128)
#   B = 255/219 (Y-16) + 255/224*1.772 (U-128)
# UYVY/YUYV from V4L2 / usb_cam / most USB cameras carry standard-definition
# video levels, which is BT.601 limited range; full-range (JPEG-style) YUV
# would come out slightly low-contrast, which is harmless for depth inference.
_Y_GAIN: Final[float] = 255.0 / 219.0
_R_FROM_V: Final[float] = 1.402 * 255.0 / 224.0
_G_FROM_U: Final[float] = 0.344136 * 255.0 / 224.0
_G_FROM_V: Final[float] = 0.714136 * 255.0 / 224.0
_B_FROM_U: Final[float] = 1.772 * 255.0 / 224.0

_HOST_IS_BIGENDIAN: Final[int] = int(sys.byteorder == "big")


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def _canonical_encoding(encoding: str) -> str:
    return str(encoding).strip().lower()


def _image_rows(msg: Image, bytes_per_pixel: int, what: str) -> np.ndarray:
    """Validate an Image's geometry and return its pixel bytes per row.

    Args:
        msg: The image message.
        bytes_per_pixel: Bytes per pixel of ``msg.encoding``.
        what: Short description used in error messages.

    Returns:
        (H, W * bytes_per_pixel) uint8 view of the payload with any row
        padding removed (possibly read-only, possibly non-contiguous).

    Raises:
        ImageDecodeError: Zero size, step shorter than a row, or payload size
            different from ``step * height``.
    """
    width = int(msg.width)
    height = int(msg.height)
    step = int(msg.step)
    if width <= 0 or height <= 0:
        raise ImageDecodeError(
            f"{what} has zero size: width={width}, height={height}; both must be > 0"
        )
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"{what} has step={step} bytes, smaller than one row of "
            f"{width} px x {bytes_per_pixel} bytes/px = {row_bytes} bytes "
            f"(encoding {shown(msg.encoding)}); step must be >= {row_bytes}"
        )
    data = message_bytes(msg.data)
    expected = step * height
    if data.size != expected:
        raise ImageDecodeError(
            f"{what} data has {data.size} bytes but step*height = "
            f"{step}*{height} = {expected} bytes were expected "
            f"(width={width}, encoding {shown(msg.encoding)})"
        )
    return data.reshape(height, step)[:, :row_bytes]


def _yuv422_to_rgb(rows: np.ndarray, width: int, uyvy: bool) -> np.ndarray:
    """Convert packed 4:2:2 YUV rows to RGB (BT.601 limited range).

    Args:
        rows: (H, W * 2) uint8 packed macro-pixels.
        width: Image width in pixels (even).
        uyvy: True for U0 Y0 V0 Y1 byte order, False for Y0 U0 Y1 V0.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    height = rows.shape[0]
    macro = rows.reshape(height, width // 2, 4)
    y_first, u_idx, v_idx = (1, 0, 2) if uyvy else (0, 1, 3)
    # Luma of the two pixels sharing one chroma pair: (H, W/2, 2).
    y = macro[:, :, y_first::2].astype(np.float32)
    y -= 16.0
    y *= np.float32(_Y_GAIN)
    u = macro[:, :, u_idx].astype(np.float32)
    u -= 128.0
    v = macro[:, :, v_idx].astype(np.float32)
    v -= 128.0
    # Chroma terms per channel, (H, W/2, 1) so they broadcast over the pair.
    r_term = (v * np.float32(_R_FROM_V))[..., np.newaxis]
    g_term = u * np.float32(-_G_FROM_U)
    g_term -= v * np.float32(_G_FROM_V)
    g_term = g_term[..., np.newaxis]
    b_term = (u * np.float32(_B_FROM_U))[..., np.newaxis]

    out = np.empty((height, width // 2, 2, 3), dtype=np.uint8)
    scratch = np.empty_like(y)
    for channel, term in enumerate((r_term, g_term, b_term)):
        np.add(y, term, out=scratch)
        np.rint(scratch, out=scratch)
        np.clip(scratch, 0.0, 255.0, out=scratch)
        out[..., channel] = scratch
    return out.reshape(height, width, 3)


# Per-encoding decoders: (rows, width, is_bigendian) -> (H, W, 3) uint8 RGB,
# where rows is the (H, W * bytes_per_pixel) uint8 view from _image_rows
# (padding removed, possibly read-only and non-contiguous). Channel shuffles
# go through cv2.cvtColor, which reads that view directly and is ~40x faster
# than a numpy fancy copy (0.02 ms vs 0.8 ms for 640x480 bgr8).
_Decoder = Callable[[np.ndarray, int, bool], np.ndarray]


def _decode_rgb8(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``rgb8``: a C-contiguous copy of the pixels."""
    return np.array(rows.reshape(rows.shape[0], width, 3), dtype=np.uint8, order="C")


def _decode_bgr8(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``bgr8``: channels swapped."""
    return cv2.cvtColor(rows.reshape(rows.shape[0], width, 3), cv2.COLOR_BGR2RGB)


def _decode_rgba8(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``rgba8``: alpha dropped."""
    return cv2.cvtColor(rows.reshape(rows.shape[0], width, 4), cv2.COLOR_RGBA2RGB)


def _decode_bgra8(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``bgra8``: channels swapped, alpha dropped."""
    return cv2.cvtColor(rows.reshape(rows.shape[0], width, 4), cv2.COLOR_BGRA2RGB)


def _decode_mono8(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``mono8``: grey replicated into three channels."""
    return cv2.cvtColor(rows, cv2.COLOR_GRAY2RGB)


def _decode_mono16(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``mono16`` / ``16UC1``: the high byte (``value >> 8``) as grey."""
    # The high byte of each 16-bit sample is value >> 8; pick it directly
    # so alignment and byte order never need a dtype view.
    high = 0 if is_bigendian else 1
    return cv2.cvtColor(np.ascontiguousarray(rows[:, high::2]), cv2.COLOR_GRAY2RGB)


def _decode_uyvy(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``yuv422`` / ``uyvy``: bytes U0 Y0 V0 Y1."""
    return _yuv422_to_rgb(rows, width, uyvy=True)


def _decode_yuyv(rows: np.ndarray, width: int, is_bigendian: bool) -> np.ndarray:
    """``yuv422_yuy2`` / ``yuyv``: bytes Y0 U0 Y1 V0."""
    return _yuv422_to_rgb(rows, width, uyvy=False)


# Canonical lower-case encoding -> (bytes per pixel, decoder). Keys are what
# ``_canonical_encoding`` maps user input (e.g. "16UC1", " RGB8 ") onto; the
# ROS spellings are in SUPPORTED_ENCODINGS.
_DECODERS: Final[dict[str, tuple[int, _Decoder]]] = {
    "rgb8": (3, _decode_rgb8),
    "bgr8": (3, _decode_bgr8),
    "rgba8": (4, _decode_rgba8),
    "bgra8": (4, _decode_bgra8),
    "mono8": (1, _decode_mono8),
    "mono16": (2, _decode_mono16),
    "16uc1": (2, _decode_mono16),
    "yuv422": (2, _decode_uyvy),
    "uyvy": (2, _decode_uyvy),
    "yuv422_yuy2": (2, _decode_yuyv),
    "yuyv": (2, _decode_yuyv),
}


def image_to_rgb(msg: Image, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into an RGB array.

    Supported encodings (see :data:`SUPPORTED_ENCODINGS`, matched
    case-insensitively):

    * ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8`` (alpha dropped), ``mono8``.
    * ``mono16`` and ``16UC1``: reduced to 8 bits by keeping the high byte
      (``value >> 8``), honouring ``is_bigendian``. Note this is a plain
      shift, not a contrast stretch: a 16UC1 depth image in millimetres
      mostly comes out dark.
    * ``yuv422`` / ``uyvy`` (bytes U0 Y0 V0 Y1) and ``yuv422_yuy2`` / ``yuyv``
      (bytes Y0 U0 Y1 V0), converted with BT.601 limited-range ("video
      levels", Y 16..235) coefficients, rounded to nearest and clipped to
      0..255. Width must be even.

    Row padding (``step`` larger than ``width * bytes_per_pixel``) is skipped.

    Args:
        msg: The image message.
        max_pixels: Largest ``width * height`` decoded; 0 = no limit.

    Returns:
        (H, W, 3) uint8 RGB, C-contiguous, a fresh copy of the pixels.

    Raises:
        ImageDecodeError: More than ``max_pixels`` pixels, unknown encoding, zero width/height, ``step``
            smaller than one row, ``len(data) != step * height``, or odd width
            for a YUV 4:2:2 encoding.
    """
    encoding = _canonical_encoding(msg.encoding)
    entry = _DECODERS.get(encoding)
    if entry is None:
        raise ImageDecodeError(
            f"unsupported image encoding {shown(msg.encoding)}; supported encodings: "
            f"{', '.join(SUPPORTED_ENCODINGS)}"
        )
    bpp, decode = entry
    width = int(msg.width)
    problem = too_large(width, int(msg.height), max_pixels)
    if problem:
        raise ImageDecodeError(problem)
    if encoding in _YUV422_ENCODINGS and width % 2:
        raise ImageDecodeError(
            f"{shown(msg.encoding)} image has odd width {width}; YUV 4:2:2 packs two "
            f"pixels per chroma pair, so the width must be even"
        )
    rows = _image_rows(msg, bpp, f"{shown(msg.encoding)} image")
    return decode(rows, width, bool(msg.is_bigendian))


def compressed_to_rgb(
    msg: CompressedImage, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS
) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...) into RGB.

    The payload is decoded with ``cv2.imdecode``, which detects the container
    from its magic bytes, so the ``format`` field (e.g. ``"jpeg"``, ``"png"``,
    ``"rgb8; jpeg compressed bgr8"``) is only used for error messages and to
    reject ``compressedDepth`` payloads, which carry a private header that
    OpenCV cannot read. Grayscale images are expanded to three channels and
    16-bit PNGs are reduced to 8 bits by OpenCV.

    The size is read from the header first (``ros.image_size``): an image of more
    than ``max_pixels`` pixels, or of a format whose header gives no size, is never
    decoded (a small PNG can hold gigabytes of pixels).

    Args:
        msg: The compressed image message.
        max_pixels: Largest ``width * height`` decoded; 0 = no limit (and any format).

    Returns:
        (H, W, 3) uint8 RGB, C-contiguous.

    Raises:
        ImageDecodeError: Over ``max_pixels``, empty payload, ``compressedDepth`` format, or data
            OpenCV cannot decode (corrupt or unsupported).
    """
    fmt = str(msg.format)
    data = message_bytes(msg.data)
    if data.size == 0:
        raise ImageDecodeError(
            f"CompressedImage (format {shown(fmt)}) has an empty data field; nothing to decode"
        )
    if "compresseddepth" in fmt.replace(" ", "").lower():
        raise ImageDecodeError(
            f"CompressedImage format {shown(fmt)} is image_transport's compressedDepth, "
            "which is not supported; subscribe to the raw or 'compressed' topic"
        )
    problem = size_problem(data, max_pixels)
    if problem:
        raise ImageDecodeError(f"CompressedImage (format {shown(fmt)}): {problem}")
    try:
        bgr = cv2.imdecode(np.ascontiguousarray(data), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageDecodeError(
            f"OpenCV failed to decode CompressedImage ({data.size} bytes, format {shown(fmt)}): {exc}"
        ) from exc
    if bgr is None or bgr.size == 0:
        raise ImageDecodeError(
            f"could not decode CompressedImage ({data.size} bytes, format {shown(fmt)}): "
            "data is corrupt or not an image format OpenCV supports (jpeg, png, ...)"
        )
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    if bgr.dtype != np.uint8:
        bgr = np.right_shift(bgr, 8) if bgr.dtype == np.uint16 else bgr
        bgr = bgr.astype(np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


# --------------------------------------------------------------------------
# Encoding our outputs
# --------------------------------------------------------------------------


def _new_image(header: Header, height: int, width: int, encoding: str, step: int) -> Image:
    msg = new_message(Image)
    msg.header = copy_header(header)
    msg.height = int(height)
    msg.width = int(width)
    msg.encoding = encoding
    msg.is_bigendian = _HOST_IS_BIGENDIAN
    msg.step = int(step)
    return msg


def _check_2d(arr: np.ndarray, name: str) -> None:
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")


def depth_to_image_msg(depth: np.ndarray, header: Header) -> Image:
    """Build a ``32FC1`` Image from a depth map.

    Args:
        depth: (H, W) floating point depth in metres (other float dtypes are
            converted to float32; NaN / inf are kept as-is).
        header: Header to stamp the message with (copied).

    Returns:
        Image with encoding ``32FC1``, ``step = 4 * W`` and host byte order
        (``is_bigendian = sys.byteorder == 'big'``).

    Raises:
        ValueError: ``depth`` is not 2-D or not floating point.
    """
    arr = np.asarray(depth)
    _check_2d(arr, "depth")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"depth must be floating point metres, got dtype {arr.dtype}; "
            "convert it first, e.g. depth.astype(np.float32)"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    height, width = arr.shape
    msg = _new_image(header, height, width, "32FC1", 4 * width)
    msg.data = array_to_msg_data(arr)
    return msg


def labels_to_image_msg(labels: np.ndarray, header: Header) -> Image:
    """Build a ``mono8`` Image from a label map.

    Args:
        labels: (H, W) integer class ids in 0..255 (uint8 preferred; other
            integer dtypes are range-checked and converted).
        header: Header to stamp the message with (copied).

    Returns:
        Image with encoding ``mono8`` and ``step = W``.

    Raises:
        ValueError: ``labels`` is not 2-D, not integer, or has values outside
            0..255.
    """
    arr = np.asarray(labels)
    _check_2d(arr, "labels")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"labels must be an integer array, got dtype {arr.dtype}")
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise ValueError(f"labels must fit in mono8 (0..255), got values in {lo}..{hi}")
        arr = arr.astype(np.uint8)
    height, width = arr.shape
    msg = _new_image(header, height, width, "mono8", width)
    msg.data = array_to_msg_data(arr)
    return msg


def rgb_to_image_msg(rgb: np.ndarray, header: Header) -> Image:
    """Build an ``rgb8`` Image from an RGB array.

    Args:
        rgb: (H, W, 3) uint8 RGB.
        header: Header to stamp the message with (copied).

    Returns:
        Image with encoding ``rgb8`` and ``step = 3 * W``.

    Raises:
        ValueError: ``rgb`` is not (H, W, 3) or not uint8.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"rgb must have shape (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(
            f"rgb must be uint8 (0..255), got dtype {arr.dtype}; scale and convert "
            "it first, e.g. (img * 255).clip(0, 255).astype(np.uint8)"
        )
    height, width = arr.shape[:2]
    msg = _new_image(header, height, width, "rgb8", 3 * width)
    msg.data = array_to_msg_data(arr)
    return msg


def image_msg_to_array(msg: Image) -> np.ndarray:
    """Read an Image in one of our output encodings back into an array.

    Args:
        msg: Image with encoding ``32FC1``, ``mono8`` or ``rgb8`` (any
            ``step`` padding and, for ``32FC1``, either byte order).

    Returns:
        ``32FC1``: (H, W) float32 (native byte order); ``mono8``: (H, W)
        uint8; ``rgb8``: (H, W, 3) uint8. Always a fresh, writable copy.

    Raises:
        ImageDecodeError: Other encodings or inconsistent size fields.
    """
    encoding = str(msg.encoding).strip()
    if encoding.lower() == "32fc1":
        rows = _image_rows(msg, 4, "'32FC1' image")
        dtype = np.dtype(">f4" if msg.is_bigendian else "<f4")
        values = np.ascontiguousarray(rows).view(dtype)
        return values.astype(np.float32)  # copy, native byte order
    if encoding.lower() == "mono8":
        return np.array(_image_rows(msg, 1, "'mono8' image"), dtype=np.uint8, order="C")
    if encoding.lower() == "rgb8":
        rows = _image_rows(msg, 3, "'rgb8' image")
        return np.array(rows.reshape(rows.shape[0], -1, 3), dtype=np.uint8, order="C")
    raise ImageDecodeError(
        f"image_msg_to_array reads only {', '.join(_OUTPUT_ENCODINGS)}, got "
        f"{shown(msg.encoding)}; use image_to_rgb for camera images"
    )


def depth_image_to_metres(msg: Image) -> np.ndarray:
    """A depth image by REP-118 in metres: ``32FC1`` metres or ``16UC1`` millimetres.

    Args:
        msg: the depth Image (any ``step`` padding, either byte order).

    Returns:
        (H, W) float32 metres; NaN where the depth is unknown (NaN, inf, or <= 0 in
        ``32FC1``; 0 in ``16UC1``).

    Raises:
        ImageDecodeError: another encoding, or inconsistent size fields.
    """
    encoding = str(msg.encoding).strip().lower()
    if encoding == "32fc1":
        depth = image_msg_to_array(msg)
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        return depth
    if encoding in ("16uc1", "mono16"):
        rows = _image_rows(msg, 2, f"{shown(msg.encoding)} depth image")
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        millimetres = np.ascontiguousarray(rows).view(dtype).astype(np.float32)
        millimetres[millimetres == 0] = np.nan
        return millimetres / 1000.0
    raise ImageDecodeError(
        f"a depth image must be 32FC1 (metres) or 16UC1 (millimetres), got {shown(msg.encoding)}"
    )
