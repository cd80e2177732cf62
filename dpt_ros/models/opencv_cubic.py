"""OpenCV's ``INTER_CUBIC`` resize of float64 images, number for number, in torch.

Both originals resize their [0, 1] float64 RGB image with
``cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)``. torch's bicubic
(``align_corners=False``, a = -0.75) is the same kernel in exact arithmetic, but OpenCV
computes each output pixel's source coordinate, and the four kernel weights, in
float32 even for a float64 image, and torch does not: at scale factors that are not
short binary fractions (1280 -> 672) the two differ by 2e-5 on a camera image (2e-4 on
noise), which a random network amplifies about 30 times. Exact binary factors (640 -> 512) hide it.

OpenCV's arithmetic, per axis of ``n_in`` -> ``n_out`` pixels (reproduced from its
observed behaviour and checked against ``cv2.resize`` by the tests; no code of it):

- ``scale = 1 / (n_out / n_in)`` in float64; for output pixel ``d`` the source coordinate
  ``f = float32((d + 0.5) * scale - 0.5)``, ``s = floor(f)``, fraction
  ``t = f - s`` in float32;
- weights of the source pixels ``s - 1 .. s + 2`` from the cubic convolution kernel with
  ``A = -0.75``, evaluated in float32 in Horner form; the fourth is ``1`` minus the other
  three in float32;
- source pixels outside the image are the nearest edge pixel (replicated border), also
  where ``s`` itself lies outside (upscaling's first and last pixels);
- the image is resized horizontally first, then vertically, each output the float64 sum
  ``((p0 w0 + p1 w1) + p2 w2) + p3 w3`` of the float64 pixels times the float32 weights.

The cubic path has no special case for integer ratios (those are ``INTER_AREA``'s and
``INTER_LINEAR``'s); an axis that keeps its size gets the weights (0, 1, 0, 0), an exact
copy, so it is skipped. :func:`resize_cubic` applies the per-size tables with one
gather-multiply-add per tap and axis on the images' device and, summing in OpenCV's
order, gives its float64 result bit for bit on x86-64 (an OpenCV build that fuses
multiply-adds, as compilers may on aarch64, could round its weights differently).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

#: The cubic convolution kernel's parameter in OpenCV (and torch): -0.75.
CUBIC_A = np.float32(-0.75)


@functools.lru_cache(maxsize=64)
def cubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's ``INTER_CUBIC`` table for one axis of ``n_in`` -> ``n_out`` pixels.

    Cached: a camera has one size, so the table is built once per axis.

    Args:
        n_in: source pixels on the axis (>= 1).
        n_out: output pixels on the axis (>= 1).

    Returns:
        (index, weight): (4, n_out) int64 source pixels (clamped to the image, as
        OpenCV's replicated border) and (4, n_out) float32 weights; output pixel ``d`` is
        ``sum_k weight[k, d] * source[index[k, d]]``, summed in order k = 0..3. Read-only.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"resize needs positive sizes, got {n_in} -> {n_out}")
    scale = 1.0 / (n_out / n_in)  # as OpenCV derives it from the two sizes, in float64
    f = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f)
    t = f - s  # float32 throughout, as OpenCV: numpy does not fuse these operations
    one = np.float32(1)
    a = CUBIC_A
    # Horner forms of the kernel at distances t + 1, t, 1 - t (OpenCV's evaluation
    # order: each rounding step must match to give its float32 weights).
    u = t + one
    w0 = ((a * u - np.float32(5) * a) * u + np.float32(8) * a) * u - np.float32(4) * a
    w1 = ((a + np.float32(2)) * t - (a + np.float32(3))) * t * t + one
    v = one - t
    w2 = ((a + np.float32(2)) * v - (a + np.float32(3))) * v * v + one
    w3 = one - w0 - w1 - w2
    weight = np.stack([w0, w1, w2, w3]).astype(np.float32)
    first = s.astype(np.int64) - 1
    index = np.clip(first[None, :] + np.arange(4, dtype=np.int64)[:, None], 0, n_in - 1)
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


@functools.lru_cache(maxsize=64)
def _device_taps(
    n_in: int, n_out: int, trailing: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """:func:`cubic_taps` on ``device``, cached so that a frame costs no host-to-device
    copy: the four index vectors, and the four weight vectors in ``dtype`` shaped
    (n_out, *trailing) to multiply the gathered pixels. ``trailing`` gives the sizes of
    the dimensions after the resized one: 1 broadcasts, a size repeats the weights,
    which the CPU multiplies much faster than a broadcast along a short last axis."""
    index, weight = cubic_taps(n_in, n_out)
    idx = tuple(torch.tensor(i, device=device) for i in index)
    shape = (n_out,) + (1,) * len(trailing)
    w = torch.tensor(weight, dtype=dtype, device=device)
    return idx, tuple(w[k].view(shape).expand((n_out, *trailing)).contiguous() for k in range(4))


def _resize_axis(x: torch.Tensor, dim: int, n_out: int, trailing: tuple[int, ...]) -> torch.Tensor:
    """One axis of :func:`resize_cubic`: output = sum over the four taps, in order."""
    n_in = x.shape[dim]
    if n_in == n_out:
        return x
    index, weight = _device_taps(n_in, n_out, trailing, x.device, x.dtype)
    out = x.index_select(dim, index[0]) * weight[0]
    for k in range(1, 4):
        # Separate multiply and add (never a fused multiply-add) keeps OpenCV's roundings.
        out.add_(x.index_select(dim, index[k]) * weight[k])
    return out


def resize_cubic(x: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """``cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC)`` on (B, H, W, C) images.

    Args:
        x: (B, H, W, C) float64 (float32 works, but then is not OpenCV's float32 path,
            which uses another arithmetic), on any device.
        size_hw: output (h, w).

    Returns:
        (B, h, w, C) in ``x``'s dtype and device; ``x`` itself when the size is kept.
    """
    if x.ndim != 4:
        raise ValueError(f"expected (B, H, W, C) images, got shape {tuple(x.shape)}")
    h, w = int(size_hw[0]), int(size_hw[1])
    if h < 1 or w < 1:
        raise ValueError(f"resize needs a positive output size, got {h}x{w}")
    # OpenCV resizes rows first (horizontal), then combines rows (vertical).
    return _resize_axis(_resize_axis(x, 2, w, (x.shape[3],)), 1, h, (1, 1))
