"""Numpy reference back-projection, the one the node's torch version is checked against.

The node back-projects on the model's device with
:func:`dpt_ros.models.geometry.backproject`; this is the same formula and the
same NaN rules written in plain numpy on :class:`dpt_ros.ros.camera.Intrinsics`,
with full argument checks. Tests compare the two (``test/unit/test_pipeline.py``,
``test/unit/test_pointcloud.py``) and use this one to make xyz grids for the
PointCloud2 packing tests.

Import it as ``import reference_geometry`` from tests (pytest puts ``test/`` on
``sys.path``); scripts insert the ``test`` directory into ``sys.path`` first.

Frames and units: points are in the camera *optical* frame (REP-103 optical
convention: x right, y down, z forward), in metres.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from dpt_ros.ros.camera import Intrinsics

__all__ = ["backproject"]


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


def _check_args(depth: np.ndarray, intr: Intrinsics, stride: int, max_depth: float) -> None:
    """Validate :func:`backproject`'s arguments (see its ``Raises``)."""
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
    max_depth = float(max_depth)
    if not math.isfinite(max_depth) or max_depth < 0.0:
        raise ValueError(f"max_depth must be >= 0 metres (0 = no limit), got {max_depth}")


def backproject(
    depth_m: np.ndarray,
    intr: Intrinsics,
    stride: int = 1,
    max_depth: float = 0.0,
) -> np.ndarray:
    """Back-project a depth map to an organised xyz grid in the optical frame.

    Pixels ``u = j * stride``, ``v = i * stride`` are sampled and mapped to
    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``, ``z = depth`` (z is
    the distance along the optical axis, not along the ray). The ray slopes are
    computed in float64 and rounded to float32, the products in float32.

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
    _check_args(depth, intr, stride, max_depth)
    stride = int(stride)
    max_depth = float(max_depth)

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
