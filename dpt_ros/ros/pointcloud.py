"""``sensor_msgs/PointCloud2`` packing and reading.

Frames and units: points are in the camera *optical* frame (REP-103 optical
convention: x right, y down, z forward), in metres, and the cloud is
organised (one point per sampled pixel, ``height`` x ``width``) so RViz and
PCL can keep the image neighbourhood. Invalid pixels are NaN points, hence
``is_dense = False``. The xyz grid itself comes from the back-projection in
:mod:`dpt_ros.models.geometry` (torch, on the model's device).

Point layout written by :func:`make_pointcloud2` (all 4-byte fields, host
byte order, no padding)::

    offset  0  x      FLOAT32
    offset  4  y      FLOAT32
    offset  8  z      FLOAT32
    offset 12  rgb    FLOAT32   (only if rgb given)  PCL PointXYZRGB packing
    next       confidence FLOAT32 (only if confidence given) depth confidence
    last       label  UINT32    (only if labels given)

so ``point_step`` is 12 to 24 bytes. PCL's own ``PointXYZRGB`` pads to
32 bytes; readers that go by the field list (RViz, pcl_conversions,
:func:`pointcloud2_to_arrays`) do not care.
"""

from __future__ import annotations

import array
import sys
from typing import Final

import cv2
import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from dpt_ros.ros.messages import copy_header, message_bytes, new_message
from dpt_ros.text import shown

__all__ = [
    "make_pointcloud2",
    "pointcloud2_to_arrays",
    "cloud_points",
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
        raise ValueError(f"rgb_field must be float32 (PCL packed) or uint32, got dtype {arr.dtype}")
    out = np.empty(packed.shape + (3,), dtype=np.uint8)
    out[..., 0] = (packed >> 16) & 0xFF
    out[..., 1] = (packed >> 8) & 0xFF
    out[..., 2] = packed & 0xFF
    return out


def _checked_xyz(xyz: np.ndarray) -> np.ndarray:
    """Validate the point grid of :func:`make_pointcloud2`.

    Args:
        xyz: (h, w, 3) floating point xyz, metres.

    Returns:
        ``xyz`` as an ndarray (not copied).

    Raises:
        ValueError: Wrong shape or not floating point.
    """
    pts = np.asarray(xyz)
    if pts.ndim != 3 or pts.shape[2] != 3:
        raise ValueError(f"xyz must have shape (h, w, 3), got {pts.shape}")
    if not np.issubdtype(pts.dtype, np.floating):
        raise ValueError(f"xyz must be floating point metres, got dtype {pts.dtype}")
    return pts


def _checked_rgb(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """Validate the colours of :func:`make_pointcloud2`.

    Args:
        rgb: (h, w, 3) uint8 RGB.
        h: Rows of the point grid.
        w: Columns of the point grid.

    Returns:
        ``rgb`` as an ndarray (not copied).

    Raises:
        ValueError: Shape other than (h, w, 3) or dtype other than uint8.
    """
    colours = np.asarray(rgb)
    if colours.shape != (h, w, 3) or colours.dtype != np.uint8:
        raise ValueError(
            f"rgb must be ({h}, {w}, 3) uint8 to match xyz, got shape "
            f"{colours.shape} dtype {colours.dtype}"
        )
    return colours


def _checked_labels(labels: np.ndarray, h: int, w: int) -> np.ndarray:
    """Validate the labels of :func:`make_pointcloud2`.

    Args:
        labels: (h, w) integer class ids, 0..2**32 - 1.
        h: Rows of the point grid.
        w: Columns of the point grid.

    Returns:
        ``labels`` as an ndarray (not copied).

    Raises:
        ValueError: Shape other than (h, w), not integer, negative values or
            values that do not fit in uint32.
    """
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
    return lab


def _checked_confidence(confidence: np.ndarray, h: int, w: int) -> np.ndarray:
    """Validate the confidences of :func:`make_pointcloud2`.

    Raises:
        ValueError: Shape other than (h, w), or not floating point.
    """
    values = np.asarray(confidence)
    if values.shape != (h, w) or not np.issubdtype(values.dtype, np.floating):
        raise ValueError(
            f"confidence must be a ({h}, {w}) floating point array to match xyz, got "
            f"shape {values.shape} dtype {values.dtype}"
        )
    return values


def _point_fields(names: list[str]) -> list[PointField]:
    """The field list of the module's point layout.

    Args:
        names: Field names in point order, e.g. ``["x", "y", "z", "rgb"]``.

    Returns:
        One 4-byte PointField per name at offset ``4 * index``: UINT32 for
        ``label``, FLOAT32 for the others.
    """
    return [
        PointField(
            name=name,
            offset=4 * i,
            datatype=PointField.UINT32 if name == "label" else PointField.FLOAT32,
            count=1,
        )
        for i, name in enumerate(names)
    ]


def _pack_points(
    pts: np.ndarray,
    colours: np.ndarray | None,
    lab: np.ndarray | None,
    confidence: np.ndarray | None = None,
) -> array.array:
    """Interleave xyz [, rgb][, confidence][, label] into the PointCloud2 payload.

    Args:
        pts: (h, w, 3) floating point xyz, metres (written as float32).
        colours: Optional (h, w, 3) uint8 RGB (written PCL-packed).
        lab: Optional (h, w) non-negative integer labels (written as uint32).
        confidence: Optional (h, w) floating point depth confidence (float32).

    Returns:
        ``array.array('B')`` of ``h * w * point_step`` bytes, host byte
        order, ``point_step = 4 * (3 + [rgb] + [confidence] + [label])``, rows
        of points in C order.
    """
    h, w = pts.shape[:2]
    n = 3 + (colours is not None) + (confidence is not None) + (lab is not None)
    npoints = int(h) * int(w)
    # The payload is written straight into the array.array that becomes
    # msg.data (new_message makes the setter keep it without a copy).
    data = array.array("B", [0]) * (npoints * 4 * n)
    if npoints:
        words = np.frombuffer(data, dtype=np.float32).reshape(npoints, n)
        # xyz as one 12-byte item per point: ~2x faster than a strided
        # float copy into the interleaved layout.
        xyz_items = np.ascontiguousarray(pts, dtype=np.float32).reshape(npoints, 3).view("V12")
        words.view(np.uint8)[:, :12].view("V12")[...] = xyz_items
        if colours is not None:
            words.view(np.uint32)[:, 3] = _pack_rgb_fast(colours).reshape(npoints)
        if confidence is not None:
            words[:, 3 + (colours is not None)] = confidence.reshape(npoints)
        if lab is not None:
            words.view(np.uint32)[:, n - 1] = lab.reshape(npoints)
        del words  # release the buffer export so the array is a plain array again
    return data


def make_pointcloud2(
    header: Header,
    xyz: np.ndarray,
    rgb: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> PointCloud2:
    """Pack an organised xyz grid (plus optional colour, labels and depth confidence)
    into a PointCloud2.

    Args:
        header: Header for the cloud (copied); its frame should be the
            camera's optical frame.
        xyz: (h, w, 3) floating point xyz, metres (NaN = invalid point).
        rgb: Optional (h, w, 3) uint8 colours, written as a FLOAT32 ``rgb``
            field holding PCL's packed ``0x00RRGGBB`` bit pattern.
        labels: Optional (h, w) non-negative integer labels, written as a
            UINT32 ``label`` field.
        confidence: Optional (h, w) float depth confidence of each point (Depth
            Anything 3), written as a FLOAT32 ``confidence`` field.

    Returns:
        Organised cloud (``height = h``, ``width = w``) with fields x, y, z
        [, rgb][, confidence][, label], ``point_step = 4 * n_fields``,
        ``row_step = point_step * w``, ``is_dense = False``, host byte order.

    Raises:
        ValueError: Shapes or dtypes that do not match the description above,
            or negative labels.
    """
    pts = _checked_xyz(xyz)
    h, w = pts.shape[:2]
    names = ["x", "y", "z"]
    colours = lab = None
    if rgb is not None:
        colours = _checked_rgb(rgb, h, w)
        names.append("rgb")
    conf = None
    if confidence is not None:
        conf = _checked_confidence(confidence, h, w)
        names.append("confidence")
    if labels is not None:
        lab = _checked_labels(labels, h, w)
        names.append("label")
    data = _pack_points(pts, colours, lab, conf)

    point_step = 4 * len(names)
    msg = new_message(PointCloud2)
    msg.header = copy_header(header)
    msg.height = int(h)
    msg.width = int(w)
    msg.fields = _point_fields(names)
    msg.is_bigendian = _HOST_IS_BIGENDIAN
    msg.point_step = point_step
    msg.row_step = point_step * int(w)
    msg.is_dense = False
    msg.data = data
    return msg


# (name, byte offset in the point, dtype in the message's byte order, count)
_FieldSpec = tuple[str, int, np.dtype, int]


def _field_specs(msg: PointCloud2) -> list[_FieldSpec]:
    """Locate every field of a PointCloud2 inside its point.

    Args:
        msg: The point cloud.

    Returns:
        One ``(name, offset, dtype, count)`` per field, in message order;
        ``dtype`` carries the message's byte order, ``count`` is as stored
        (0 and 1 both mean one element).

    Raises:
        ValueError: Unknown datatype, or a field that does not fit in
            ``point_step``.
    """
    point_step = int(msg.point_step)
    order = ">" if msg.is_bigendian else "<"
    specs: list[_FieldSpec] = []
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
    return specs


def _point_bytes(msg: PointCloud2) -> np.ndarray:
    """The bytes of each point of a non-empty PointCloud2, row padding removed.

    Args:
        msg: The point cloud, ``height * width > 0``.

    Returns:
        (height, width, point_step) uint8 view of ``msg.data`` (possibly
        read-only, possibly non-contiguous).

    Raises:
        ValueError: ``row_step < width * point_step``, or a payload shorter
            than ``row_step * height``.
    """
    h, w = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
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
    return data[:needed].reshape(h, row_step)[:, : w * point_step].reshape(h, w, point_step)


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
    specs = _field_specs(msg)
    if h * w == 0:
        return {
            name: np.empty((h, w) if count <= 1 else (h, w, count), dtype=dtype.newbyteorder("="))
            for name, _, dtype, count in specs
        }
    points = _point_bytes(msg)
    out: dict[str, np.ndarray] = {}
    for name, offset, dtype, count in specs:
        nbytes = dtype.itemsize * max(count, 1)
        chunk = np.ascontiguousarray(points[:, :, offset : offset + nbytes])
        values = chunk.view(dtype).astype(dtype.newbyteorder("="))
        out[name] = values.reshape(h, w) if count <= 1 else values.reshape(h, w, count)
    return out


def cloud_points(msg: PointCloud2) -> np.ndarray:
    """(N, 3) float64 finite x, y, z of a PointCloud2, in its own frame (metres).

    Raises:
        ValueError: the cloud has no float x, y and z fields.
    """
    fields = pointcloud2_to_arrays(msg)
    if not {"x", "y", "z"} <= set(fields):
        names = [shown(name) for name in list(fields)[:8]] + ["..."] * (len(fields) > 8)
        raise ValueError(f"the cloud has no x, y, z fields (fields: {', '.join(names)})")
    xyz = np.stack([np.asarray(fields[a], np.float64).reshape(-1) for a in "xyz"], axis=1)
    return xyz[np.isfinite(xyz).all(axis=1)]
