"""Depth back-projection and ``sensor_msgs/PointCloud2`` packing.

Frames and units: points are in the camera *optical* frame (REP-103 optical
convention: x right, y down, z forward), in metres, and the cloud is
organised (one point per sampled pixel, ``height`` x ``width``) so RViz and
PCL can keep the image neighbourhood. Invalid pixels are NaN points, hence
``is_dense = False``.

Point layout written by :func:`make_pointcloud2` (all 4-byte fields, host
byte order, no padding)::

    offset  0  x      FLOAT32
    offset  4  y      FLOAT32
    offset  8  z      FLOAT32
    offset 12  rgb    FLOAT32   (only if rgb given)  PCL PointXYZRGB packing
    offset 12/16 label UINT32   (only if labels given)

so ``point_step`` is 12, 16 or 20 bytes. PCL's own ``PointXYZRGB`` pads to
32 bytes; readers that go by the field list (RViz, pcl_conversions,
:func:`pointcloud2_to_arrays`) do not care.
"""

from __future__ import annotations

import array
import functools
import math
import sys
from typing import Final

import cv2
import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.image_codec import copy_header, message_bytes, new_message

__all__ = [
    "backproject",
    "make_pointcloud2",
    "pointcloud2_to_arrays",
    "pack_rgb",
    "unpack_rgb",
]

_HOST_IS_BIGENDIAN: Final[bool] = sys.byteorder == "big"

# PointField datatype constant -> numpy base type (byte order added per message).
_POINTFIELD_DTYPES: Final[dict[int, str]] = {
    PointField.INT8: "i1",
    PointField.UINT8: "u1",
    PointField.INT16: "i2",
    PointField.UINT16: "u2",
    PointField.INT32: "i4",
    PointField.UINT32: "u4",
    PointField.FLOAT32: "f4",
    PointField.FLOAT64: "f8",
}


@functools.lru_cache(maxsize=16)
def _rays(intr: Intrinsics, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column and per-row ray slopes for the sampled pixel grid.

    The pinhole model is separable, so ``(u - cx) / fx`` depends only on the
    column and ``(v - cy) / fy`` only on the row; the cache holds two small
    vectors per (intrinsics, stride). The image shape is part of ``intr``.

    Returns:
        ``(rx, ry)``: (w,) and (h,) read-only float32 arrays with
        ``w = ceil(width / stride)``, ``h = ceil(height / stride)``.
    """
    u = np.arange(0, intr.width, stride, dtype=np.float64)
    v = np.arange(0, intr.height, stride, dtype=np.float64)
    rx = ((u - intr.cx) / intr.fx).astype(np.float32)
    ry = ((v - intr.cy) / intr.fy).astype(np.float32)
    rx.flags.writeable = False
    ry.flags.writeable = False
    return rx, ry


def backproject(
    depth_m: np.ndarray,
    intr: Intrinsics,
    stride: int = 1,
    max_depth: float = 0.0,
) -> np.ndarray:
    """Back-project a depth map to an organised xyz grid in the optical frame.

    Pixels ``u = j * stride``, ``v = i * stride`` are sampled and mapped to
    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``, ``z = depth`` (z is
    the distance along the optical axis, not along the ray).

    Args:
        depth_m: (H, W) floating point depth, metres. Non-finite or ``<= 0``
            values are invalid.
        intr: Intrinsics of an image of exactly (H, W) (rescale with
            :meth:`Intrinsics.scaled` first if the depth was resized).
        stride: Sampling step in pixels, >= 1.
        max_depth: If > 0, depths beyond it (metres) are invalid too; 0
            disables the limit.

    Returns:
        (h, w, 3) float32 xyz, metres, ``h = ceil(H / stride)``,
        ``w = ceil(W / stride)``; invalid pixels are NaN in x, y and z.

    Raises:
        ValueError: ``depth_m`` not 2-D or not floating point, size different
            from ``intr``, ``stride < 1``, or negative / non-finite
            ``max_depth``.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f"depth_m must be a 2-D (H, W) array, got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(
            f"depth_m must be floating point metres, got dtype {depth.dtype}; "
            "convert e.g. millimetres with depth.astype(np.float32) / 1000"
        )
    if (depth.shape[1], depth.shape[0]) != (intr.width, intr.height):
        raise ValueError(
            f"depth is {depth.shape[1]}x{depth.shape[0]} (WxH) but the intrinsics are for "
            f"{intr.width}x{intr.height}; rescale them with intr.scaled(width, height)"
        )
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    stride = int(stride)
    max_depth = float(max_depth)
    if not math.isfinite(max_depth) or max_depth < 0.0:
        raise ValueError(
            f"max_depth must be >= 0 metres (0 = no limit), got {max_depth}"
        )

    rx, ry = _rays(intr, stride)
    z = depth[::stride, ::stride]
    if z.dtype != np.float32:
        z = z.astype(np.float32)
    # NaN compares False with everything, so these tests also reject NaN;
    # "< inf" (or "<= max_depth") rejects +inf, "> 0" rejects -inf.
    valid = z > 0.0
    if max_depth > 0.0:
        valid &= z <= np.float32(max_depth)
    else:
        valid &= z < np.float32(np.inf)
    zc = np.where(valid, z, np.float32(np.nan))

    h, w = zc.shape
    out = np.empty((h, w, 3), dtype=np.float32)
    np.multiply(zc, rx[np.newaxis, :], out=out[:, :, 0])
    np.multiply(zc, ry[:, np.newaxis], out=out[:, :, 1])
    out[:, :, 2] = zc
    return out


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Pack RGB into PCL's ``0x00RRGGBB`` integers.

    Args:
        rgb: (..., 3) uint8 RGB.

    Returns:
        (...) uint32 ``(r << 16) | (g << 8) | b``; ``.view(np.float32)`` gives
        the value stored in a PointXYZRGB ``rgb`` float field.
    """
    arr = np.asarray(rgb)
    if arr.shape[-1:] != (3,) or arr.dtype != np.uint8:
        raise ValueError(f"rgb must be (..., 3) uint8, got shape {arr.shape} dtype {arr.dtype}")
    c = arr.astype(np.uint32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def _pack_rgb_fast(rgb: np.ndarray) -> np.ndarray:
    """:func:`pack_rgb` for (h, w, 3) uint8; OpenCV channel shuffle on little-endian hosts."""
    if _HOST_IS_BIGENDIAN:
        return pack_rgb(rgb)
    # BGRA bytes read as a little-endian uint32 are 0xAARRGGBB; clear alpha.
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
    bgra[:, :, 3] = 0
    return bgra.view(np.uint32)[:, :, 0]


def unpack_rgb(rgb_field: np.ndarray) -> np.ndarray:
    """Unpack a PointCloud2 ``rgb`` field into RGB bytes.

    Args:
        rgb_field: (...) float32 values as read from an ``rgb`` FLOAT32 field
            (their bit pattern is ``0x00RRGGBB``), or the uint32 integers.

    Returns:
        (..., 3) uint8 RGB.
    """
    arr = np.asarray(rgb_field)
    if arr.dtype == np.float32:
        packed = np.ascontiguousarray(arr).view(np.uint32)
    elif arr.dtype == np.uint32:
        packed = arr
    else:
        raise ValueError(
            f"rgb_field must be float32 (PCL packed) or uint32, got dtype {arr.dtype}"
        )
    out = np.empty(packed.shape + (3,), dtype=np.uint8)
    out[..., 0] = (packed >> 16) & 0xFF
    out[..., 1] = (packed >> 8) & 0xFF
    out[..., 2] = packed & 0xFF
    return out


def make_pointcloud2(
    header: Header,
    xyz: np.ndarray,
    rgb: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> PointCloud2:
    """Pack an organised xyz grid (plus optional colour and labels) into a PointCloud2.

    Args:
        header: Header for the cloud (copied); its frame should be the
            camera's optical frame.
        xyz: (h, w, 3) floating point xyz, metres (NaN = invalid point).
        rgb: Optional (h, w, 3) uint8 colours, written as a FLOAT32 ``rgb``
            field holding PCL's packed ``0x00RRGGBB`` bit pattern.
        labels: Optional (h, w) non-negative integer labels, written as a
            UINT32 ``label`` field.

    Returns:
        Organised cloud (``height = h``, ``width = w``) with fields x, y, z
        [, rgb][, label], ``point_step = 4 * n_fields``,
        ``row_step = point_step * w``, ``is_dense = False``, host byte order.

    Raises:
        ValueError: Shapes or dtypes that do not match the description above,
            or negative labels.
    """
    pts = np.asarray(xyz)
    if pts.ndim != 3 or pts.shape[2] != 3:
        raise ValueError(f"xyz must have shape (h, w, 3), got {pts.shape}")
    if not np.issubdtype(pts.dtype, np.floating):
        raise ValueError(f"xyz must be floating point metres, got dtype {pts.dtype}")
    h, w = pts.shape[:2]

    names = ["x", "y", "z"]
    if rgb is not None:
        colours = np.asarray(rgb)
        if colours.shape != (h, w, 3) or colours.dtype != np.uint8:
            raise ValueError(
                f"rgb must be ({h}, {w}, 3) uint8 to match xyz, got shape "
                f"{colours.shape} dtype {colours.dtype}"
            )
        names.append("rgb")
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (h, w) or not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(
                f"labels must be a ({h}, {w}) integer array to match xyz, got shape "
                f"{lab.shape} dtype {lab.dtype}"
            )
        if lab.size and np.issubdtype(lab.dtype, np.signedinteger) and int(lab.min()) < 0:
            raise ValueError(f"labels must be >= 0, got minimum {int(lab.min())}")
        if lab.size and lab.dtype.itemsize > 4 and int(lab.max()) > 0xFFFFFFFF:
            raise ValueError(f"labels must fit in uint32, got maximum {int(lab.max())}")
        names.append("label")
    n = len(names)

    point_step = 4 * n
    npoints = int(h) * int(w)
    # The payload is written straight into the array.array that becomes
    # msg.data (new_message makes the setter keep it without a copy).
    data = array.array("B", [0]) * (npoints * point_step)
    if npoints:
        words = np.frombuffer(data, dtype=np.float32).reshape(npoints, n)
        # xyz as one 12-byte item per point: ~2x faster than a strided
        # float copy into the interleaved layout.
        xyz_items = np.ascontiguousarray(pts, dtype=np.float32).reshape(npoints, 3).view("V12")
        words.view(np.uint8)[:, :12].view("V12")[...] = xyz_items
        if rgb is not None:
            words.view(np.uint32)[:, 3] = _pack_rgb_fast(colours).reshape(npoints)
        if labels is not None:
            words.view(np.uint32)[:, names.index("label")] = lab.reshape(npoints)
        del words  # release the buffer export so the array is a plain array again

    msg = new_message(PointCloud2)
    msg.header = copy_header(header)
    msg.height = int(h)
    msg.width = int(w)
    msg.fields = [
        PointField(
            name=name,
            offset=4 * i,
            datatype=PointField.UINT32 if name == "label" else PointField.FLOAT32,
            count=1,
        )
        for i, name in enumerate(names)
    ]
    msg.is_bigendian = _HOST_IS_BIGENDIAN
    msg.point_step = point_step
    msg.row_step = point_step * int(w)
    msg.is_dense = False
    msg.data = data
    return msg


def pointcloud2_to_arrays(msg: PointCloud2) -> dict[str, np.ndarray]:
    """Read every field of a PointCloud2 into its own array.

    Works for any layout: fields are located by their ``offset``,
    ``datatype`` and ``count``, honouring ``point_step``, ``row_step``
    padding and ``is_bigendian``. ``rgb`` fields are returned as stored
    (float32); use :func:`unpack_rgb` to get colours.

    Args:
        msg: The point cloud.

    Returns:
        ``{field name: array}`` with shape (height, width) for ``count == 1``
        (or 0) fields and (height, width, count) otherwise, dtype from the
        field's datatype in native byte order (fresh copies).

    Raises:
        ValueError: Unknown datatype, a field that does not fit in
            ``point_step``, ``row_step < width * point_step``, or a payload
            shorter than ``row_step * height``.
    """
    h, w = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    order = ">" if msg.is_bigendian else "<"

    specs: list[tuple[str, int, np.dtype, int]] = []
    for field in msg.fields:
        base = _POINTFIELD_DTYPES.get(int(field.datatype))
        if base is None:
            raise ValueError(
                f"PointCloud2 field '{field.name}' has unknown datatype {field.datatype}; "
                f"expected one of {sorted(_POINTFIELD_DTYPES)} (PointField constants)"
            )
        dtype = np.dtype(order + base)
        count = max(int(field.count), 1)
        end = int(field.offset) + dtype.itemsize * count
        if end > point_step:
            raise ValueError(
                f"PointCloud2 field '{field.name}' spans bytes {field.offset}..{end} "
                f"but point_step is only {point_step}"
            )
        specs.append((str(field.name), int(field.offset), dtype, int(field.count)))

    if h * w == 0:
        return {
            name: np.empty((h, w) if count <= 1 else (h, w, count), dtype=dtype.newbyteorder("="))
            for name, _, dtype, count in specs
        }
    if row_step < w * point_step:
        raise ValueError(
            f"PointCloud2 row_step={row_step} is smaller than width*point_step = "
            f"{w}*{point_step} = {w * point_step}"
        )
    data = message_bytes(msg.data)
    needed = row_step * h
    if data.size < needed:
        raise ValueError(
            f"PointCloud2 data has {data.size} bytes but row_step*height = "
            f"{row_step}*{h} = {needed} bytes were expected"
        )
    points = data[:needed].reshape(h, row_step)[:, : w * point_step].reshape(h, w, point_step)

    out: dict[str, np.ndarray] = {}
    for name, offset, dtype, count in specs:
        nbytes = dtype.itemsize * max(count, 1)
        chunk = np.ascontiguousarray(points[:, :, offset : offset + nbytes])
        values = chunk.view(dtype).astype(dtype.newbyteorder("="))
        out[name] = values.reshape(h, w) if count <= 1 else values.reshape(h, w, count)
    return out
