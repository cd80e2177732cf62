"""Depth confidence for consumers that read bytes: ``depth/confidence_mono8``.

``depth/confidence`` is Depth Anything 3's confidence as published, 32FC1, ``c >= 1``
and unbounded (1 + exp of the network's map). Consumers that read mono8 (Nav2's
semantic layer reads one byte per pixel), and viewers that scale floats by 255
(Foxglove) or by the image's range (RViz2), cannot use it. ``depth/confidence_mono8``
is the bounded, monotone map

    m = round(255 * (1 - 1 / c)),   c >= 1  ->  0 <= m <= 255

(c = 1 -> 0, 1.5 -> 85, 2 -> 128, 3 -> 170, 10 -> 230), pixel for pixel the same
image; NaN and values below 1 give 0. Its inverse, for a threshold chosen in the
float units: ``c = 255 / (255 - m)``.

``points_confident`` (:func:`confident_points`) carries the same confidence to costmap
layers that read no field but x, y and z (Nav2's obstacle and voxel layers): the points
of ``points`` less confident than a threshold become NaN, which such a layer neither
marks nor clears with.
"""

from __future__ import annotations

import numpy as np


def confidence_to_mono8(confidence: np.ndarray) -> np.ndarray:
    """(H, W) float depth confidence (>= 1) -> (H, W) uint8, by the module's map."""
    c = np.asarray(confidence, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = 255.0 * (1.0 - 1.0 / c)
    m = np.where(np.isfinite(c) & (c >= 1.0), m, 0.0)
    m = np.where(np.isposinf(c), 255.0, m)
    return np.rint(np.clip(m, 0.0, 255.0)).astype(np.uint8)


def mono8_to_confidence(m: int) -> float:
    """The float confidence at which ``depth/confidence_mono8`` reads ``m`` (0..254)."""
    if not 0 <= m < 255:
        raise ValueError(f"a mono8 confidence below 255 has a float value, got {m}")
    return 255.0 / (255.0 - m)


def confident_points(
    xyz: np.ndarray, confidence: np.ndarray | None, threshold: float
) -> np.ndarray:
    """The organised points whose depth confidence is at least ``threshold``.

    Args:
        xyz: (h, w, 3) float points, metres (NaN = no point).
        confidence: (h, w) float depth confidence of each point (>= 1), or None for a
            model without one.
        threshold: the least confidence kept; 0 keeps every point.

    Returns:
        A copy of ``xyz`` with NaN where the confidence is below ``threshold`` or NaN;
        ``xyz`` itself (not copied) when nothing can be left out (no confidence, or a
        threshold of 0).
    """
    if confidence is None or threshold <= 0:
        return xyz
    if confidence.shape != xyz.shape[:2]:
        raise ValueError(
            f"confidence must be {xyz.shape[:2]} to match the points, got {confidence.shape}"
        )
    unsure = ~(confidence >= threshold)  # NaN confidence: not confident
    out = np.array(xyz, copy=True)
    out[unsure] = np.nan
    return out
