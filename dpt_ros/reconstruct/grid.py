"""From the network grid to the input image's grid (plain numpy and OpenCV).

A window's maps and intrinsics are on the network's (h, w) grid, which covers a box of
the input image (:attr:`dpt_ros.reconstruct.chain.WindowResult.network_box`: the whole
image after a plain resize, part of it after a crop, more than it after padding). An
input pixel centre ``u`` (OpenCV: 0 = centre of the first pixel) lies at network
coordinate ``(u + 0.5 - x0) * w / (x1 - x0) - 0.5``; maps are sampled there bilinearly
(depth in inverse depth) and intrinsics follow the same affine map. Input pixels outside
the box have no depth (NaN) and confidence 0. Network pixels outside the image (a box
larger than the image: VGGT's white padding) are not image: :func:`image_mask` tells
them, and :func:`maps_to_input` never samples them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "full_box",
    "image_mask",
    "maps_to_input",
    "intrinsics_to_input",
    "colours_on_network_grid",
]


def full_box(input_hw: Sequence[int]) -> np.ndarray:
    """The box of a plain resize: the whole (H, W) image, ``(0, 0, W, H)``."""
    return np.array([0.0, 0.0, float(input_hw[1]), float(input_hw[0])])


def _axis_map(n_out: int, n_net: int, start: float, end: float) -> np.ndarray:
    """Network coordinates of the ``n_out`` input pixel centres along one axis."""
    return (np.arange(n_out) + 0.5 - start) * n_net / (end - start) - 0.5


def _axis_inside(n_net: int, n_in: int, start: float, end: float) -> np.ndarray:
    """(n_net,) bool: network pixels along one axis whose centre lies on the image."""
    centres = start + (np.arange(n_net) + 0.5) * (end - start) / n_net
    return (centres > 0.0) & (centres < n_in)


def image_mask(network_hw: Sequence[int], input_hw: Sequence[int], box: np.ndarray) -> np.ndarray:
    """(h, w) bool: the network pixels whose centre lies on the (H, W) input image; all
    True unless ``box`` reaches beyond the image (padding)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    inside_y = _axis_inside(int(network_hw[0]), int(input_hw[0]), y0, y1)
    inside_x = _axis_inside(int(network_hw[1]), int(input_hw[1]), x0, x1)
    return inside_y[:, None] & inside_x[None, :]


def _image_span(coords: np.ndarray, inside: np.ndarray) -> tuple[slice, np.ndarray]:
    """The network pixels on the image along one axis, and ``coords`` relative to the
    first of them: sampling that slice never reads the padding (the image's edge is
    replicated)."""
    where = np.flatnonzero(inside)
    if where.size == 0:
        return slice(None), coords
    return slice(int(where[0]), int(where[-1]) + 1), coords - where[0]


def _linear_taps(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps along one axis: (lower index, upper index, upper weight) of each
    coordinate, the edge values repeated beyond the grid (as ``F.interpolate`` with
    ``align_corners=False``)."""
    low = np.floor(coords)
    weight = coords - low
    low = low.astype(np.int64)
    return np.clip(low, 0, n - 1), np.clip(low + 1, 0, n - 1), weight


def maps_to_input(
    depth: np.ndarray, confidence: np.ndarray, input_hw: Sequence[int], box: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) depth and confidence on the network grid -> (H, W) on the input's; of a
    padded grid only the pixels on the image are read.

    As the live node's windows are resized (``Predictor.infer_window(output_hw=...)``,
    :func:`dpt_ros.models.geometry.upsample_depth`): depth bilinearly in inverse depth
    (no value leaves the range of its neighbours; where an invalid pixel takes part,
    the nearest pixel's value, so invalid stays NaN without spreading), confidence
    bilinearly; exact weights (float64), edge values repeated, as ``F.interpolate(...,
    mode="bilinear", align_corners=False)``. (OpenCV's ``remap`` rounds its weights to
    1/32 of a pixel.)

    Returns:
        depth (H, W) float32 (NaN outside the box), confidence (H, W) float32 (0 there).
    """
    h, w = depth.shape
    big_h, big_w = int(input_hw[0]), int(input_hw[1])
    x0, y0, x1, y1 = (float(v) for v in box)
    cols, mx = _image_span(_axis_map(big_w, w, x0, x1), _axis_inside(w, big_w, x0, x1))
    rows, my = _image_span(_axis_map(big_h, h, y0, y1), _axis_inside(h, big_h, y0, y1))
    depth = np.asarray(depth)[rows, cols]
    confidence = np.asarray(confidence)[rows, cols]
    h, w = depth.shape
    x_low, x_high, x_weight = _linear_taps(mx, w)
    y_low, y_high, y_weight = _linear_taps(my, h)

    def bilinear(m: np.ndarray) -> np.ndarray:
        rows = m[y_low] * (1.0 - y_weight)[:, None] + m[y_high] * y_weight[:, None]
        return rows[:, x_low] * (1.0 - x_weight) + rows[:, x_high] * x_weight

    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = 1.0 / np.asarray(depth, dtype=np.float64)  # +inf (too far) -> 0
    inverse[~(np.isfinite(inverse) & (inverse >= 0))] = np.nan
    smooth = bilinear(inverse)
    # where an invalid pixel takes part, the nearest one (invalid stays invalid)
    near_y = np.clip(np.floor(my + 0.5).astype(np.int64), 0, h - 1)
    near_x = np.clip(np.floor(mx + 0.5).astype(np.int64), 0, w - 1)
    inverse = np.where(np.isnan(smooth), inverse[near_y][:, near_x], smooth)
    with np.errstate(divide="ignore"):
        out = [1.0 / inverse, bilinear(np.asarray(confidence, dtype=np.float64))]
    inside_x = (np.arange(big_w) + 0.5 > x0) & (np.arange(big_w) + 0.5 < x1)
    inside_y = (np.arange(big_h) + 0.5 > y0) & (np.arange(big_h) + 0.5 < y1)
    inside = inside_y[:, None] & inside_x[None, :]
    return np.where(inside, out[0], np.nan).astype(np.float32), np.where(
        inside, out[1], 0.0
    ).astype(np.float32)


def intrinsics_to_input(k: np.ndarray, network_hw: Sequence[int], box: np.ndarray) -> np.ndarray:
    """(3, 3) intrinsics on the network grid -> on the input image's grid."""
    h, w = int(network_hw[0]), int(network_hw[1])
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    # input pixel = s * (network pixel + 0.5) + start - 0.5
    a = np.array([[sx, 0.0, 0.5 * sx + x0 - 0.5], [0.0, sy, 0.5 * sy + y0 - 0.5], [0, 0, 1.0]])
    return a @ np.asarray(k, dtype=np.float64)


def colours_on_network_grid(
    rgb: np.ndarray, network_hw: Sequence[int], box: np.ndarray
) -> np.ndarray:
    """(H, W, 3) uint8 input image sampled at the (h, w) network pixels' centres
    (area-averaged when it shrinks: the image is resized to the box's scale first);
    pixels outside the image are white, as VGGT's padding."""
    h, w = int(network_hw[0]), int(network_hw[1])
    x0, y0, x1, y1 = (float(v) for v in box)
    big_h, big_w = rgb.shape[:2]
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    # Resize the whole image to the network's pixel size, then shift by the box.
    scaled_w, scaled_h = max(1, round(big_w / sx)), max(1, round(big_h / sy))
    small = cv2.resize(rgb, (scaled_w, scaled_h), interpolation=cv2.INTER_AREA)
    fx, fy = scaled_w / big_w, scaled_h / big_h
    mx = ((np.arange(w) + 0.5) * sx + x0) * fx - 0.5
    my = ((np.arange(h) + 0.5) * sy + y0) * fy - 0.5
    grid_x, grid_y = np.meshgrid(mx.astype(np.float32), my.astype(np.float32))
    return cv2.remap(
        small,
        grid_x,
        grid_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(255, 255, 255),
    )
