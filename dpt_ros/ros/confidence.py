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
