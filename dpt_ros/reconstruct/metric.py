"""Metric scale for a window (plain numpy): a least-squares fit of the window's depth to
a metric model's metres, as Depth Anything 3's nested model (any-view + metric) does it.

The fit (facts from ``depth-anything-3`` 0.1.1, ``NestedDepthAnything3Net``): pixels the
metric model calls sky (its sky map >= 0.3) are left out; of the others, those whose
confidence is at least the median confidence of the window's non-sky pixels, whose
window depth is above 1e-3 and whose metric depth is above 1e-2 m enter
``scale = sum(metric * depth) / sum(depth * depth)``; depth and camera translations are
multiplied by it. One scale per window, all its views together.

One difference, on purpose: the reference turns the metric model's output into metres
with the focal length the any-view model predicts; ``dpt-ros reconstruct`` uses the
camera's calibration (camera_info or ``--camera-info``), so that metres come from a
measured focal length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dpt_ros.reconstruct.chain import WindowResult

__all__ = [
    "MetricDepth",
    "MetricFit",
    "SKY_THRESHOLD",
    "fit_metric_scale",
    "scale_window",
    "sample_on_network_grid",
]

#: The metric model's sky map at or above this is sky (the reference's threshold).
SKY_THRESHOLD = 0.3
#: Window depth at or below this is not fitted (the reference's threshold).
MIN_DEPTH = 1e-3
#: Metric depth at or below this (metres) is not fitted (the reference's threshold).
MIN_METRIC_DEPTH = 1e-2
#: Fewer fitted pixels than this: no scale (the reference asserts more than 10 non-sky).
MIN_PIXELS = 11

#: The metric model on a window: (H, W, 3) uint8 RGB images, their (3, 3) intrinsics at
#: the input size, the (h, w) grid wanted -> (metres (N, h, w), sky map (N, h, w)).
MetricDepth = Callable[
    [Sequence[np.ndarray], Sequence[np.ndarray], tuple[int, int]], tuple[np.ndarray, np.ndarray]
]


@dataclass(frozen=True)
class MetricFit:
    """A window's metric scale.

    Attributes:
        scale: metres per unit of the window's depth (> 0).
        pixels: how many pixels entered the fit.
        median_confidence: the confidence threshold used (the non-sky median).
    """

    scale: float
    pixels: int
    median_confidence: float


def fit_metric_scale(
    depth: np.ndarray,
    confidence: np.ndarray,
    metric_depth: np.ndarray,
    sky: np.ndarray,
) -> MetricFit:
    """The least-squares scale taking a window's depth to the metric model's metres.

    Args:
        depth: (N, h, w) the window's depth (any unit, larger = farther).
        confidence: (N, h, w) the window's confidence, larger = surer.
        metric_depth: (N, h, w) the metric model's depth, metres (non-finite = none).
        sky: (N, h, w) the metric model's sky map (sky where >= 0.3).

    Returns:
        The scale and what entered the fit.

    Raises:
        ValueError: shapes that differ, or too few usable pixels (the window is all sky,
            or no depth where the metric model sees some).
    """
    arrays = {"confidence": confidence, "metric depth": metric_depth, "sky": sky}
    for name, a in arrays.items():
        if np.shape(a) != np.shape(depth):
            raise ValueError(
                f"metric scale: {name} has shape {np.shape(a)}, depth {np.shape(depth)}"
            )
    d = np.asarray(depth, np.float64)
    m = np.asarray(metric_depth, np.float64)
    c = np.asarray(confidence, np.float64)
    non_sky = (np.asarray(sky) < SKY_THRESHOLD) & np.isfinite(c)
    if np.count_nonzero(non_sky) < MIN_PIXELS:
        raise ValueError(
            f"metric scale: only {np.count_nonzero(non_sky)} non-sky pixel(s) in the window; "
            f"at least {MIN_PIXELS} are needed"
        )
    median = float(np.median(c[non_sky]))
    with np.errstate(invalid="ignore"):
        mask = non_sky & (c >= median) & (d > MIN_DEPTH) & (m > MIN_METRIC_DEPTH)
    mask &= np.isfinite(d) & np.isfinite(m)
    pixels = int(np.count_nonzero(mask))
    den = float(np.dot(d[mask], d[mask])) if pixels else 0.0
    if pixels < MIN_PIXELS or den <= 0:
        raise ValueError(
            f"metric scale: only {pixels} confident non-sky pixel(s) with depth in both "
            f"models; at least {MIN_PIXELS} are needed"
        )
    scale = float(np.dot(m[mask], d[mask])) / den
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"metric scale: the fit gave {scale}, not a positive scale")
    return MetricFit(scale=scale, pixels=pixels, median_confidence=median)


def scale_window(window: WindowResult, scale: float) -> WindowResult:
    """The window in another unit: depth, camera translations and world points times
    ``scale``; rotations, intrinsics and confidence unchanged."""
    camera_from_world = np.array(window.camera_from_world, dtype=np.float64, copy=True)
    camera_from_world[:, :, 3] *= scale
    points = window.world_points
    return replace(
        window,
        depth=(np.asarray(window.depth, np.float64) * scale).astype(np.float32),
        camera_from_world=camera_from_world,
        world_points=None
        if points is None
        else (np.asarray(points, np.float64) * scale).astype(np.float32),
    )


def sample_on_network_grid(
    maps: np.ndarray, network_hw: Sequence[int], box: np.ndarray, fill: float
) -> np.ndarray:
    """(H, W) input-grid maps -> (h, w) on a network grid covering ``box`` (``x0, y0,
    x1, y1`` in input pixel edges), nearest pixel; cells outside the image get ``fill``."""
    h, w = (int(v) for v in network_hw)
    height, width = maps.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    xs = np.floor(x0 + (np.arange(w) + 0.5) * (x1 - x0) / w).astype(np.int64)
    ys = np.floor(y0 + (np.arange(h) + 0.5) * (y1 - y0) / h).astype(np.int64)
    inside = (ys[:, None] >= 0) & (ys[:, None] < height) & (xs >= 0) & (xs < width)
    out = maps[np.clip(ys, 0, height - 1)][:, np.clip(xs, 0, width - 1)].astype(np.float32)
    out[~inside] = fill
    return out
