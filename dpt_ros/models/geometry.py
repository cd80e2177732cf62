"""Depth post-processing on the model's device: metric depth from calibrated relative
depth, range semantics, edge-preserving upsampling, the flying-pixel filter and
back-projection to an organised xyz grid.

Range semantics follow REP-118: ``+Inf`` = farther than the model can tell (a metric
model's saturation, or beyond infinity for a calibrated relative model), ``NaN`` =
no measurement.

The package's one implementation of this geometry (``test/support/reference_geometry.py`` holds
the numpy reference it is tested against). It runs where the model runs, so the node
keeps depth on the GPU until one copy per output. Plain floats for the intrinsics: this
package does not import ROS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relative_to_metric(inverse_depth: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """Metres from calibrated relative inverse depth: ``1 / (scale * x + shift)``.

    Args:
        inverse_depth: (..., H, W) float32 relative inverse depth.
        scale, shift: the user's calibration (scale > 0).

    Returns:
        float32 metres of the same shape; ``+Inf`` where ``scale * x + shift <= 0``
        (farther than infinity: too far to tell), NaN where ``x`` is NaN.
    """
    denom = inverse_depth.float() * scale + shift
    depth = torch.reciprocal(denom)
    return depth.masked_fill_(denom <= 0, float("inf"))


#: Relative margin under a model's depth ceiling that counts as saturated: covers the
#: rounding of ``scale * x + shift`` in float16.
SATURATION_MARGIN = 2e-3


def mark_saturated(depth_m: torch.Tensor, ceiling: float) -> torch.Tensor:
    """``+Inf`` where a metric model's depth is at its ceiling (within
    :data:`SATURATION_MARGIN`): a DPT metric model outputs ``1 / (scale * x + shift)``
    with ``x >= 0``, so it reads anything farther than ``1 / shift`` as ``1 / shift``.

    Args:
        depth_m: (...) float metres.
        ceiling: the model's largest depth, metres; ``inf`` = none (returned as is).

    Returns:
        float32 metres of the same shape (a new tensor).
    """
    depth = depth_m.float().clone()
    if ceiling == float("inf"):
        return depth
    return depth.masked_fill_(depth >= ceiling * (1.0 - SATURATION_MARGIN), float("inf"))


def upsample_depth(depth_m: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Resize depth so that no pixel leaves the range of its neighbours.

    Bilinear in inverse depth (``align_corners=False``, the geometry of the rest of
    the pipeline): each value is a convex combination of the four nearest source
    inverse depths, so it never overshoots as bicubic does across an edge (which
    puts points in front of the nearer object). ``+Inf`` is inverse depth 0, so it
    blends into the far side; where an invalid source pixel (NaN, zero or negative
    depth) takes part, the nearest source pixel is used instead, so invalid pixels stay
    NaN without spreading.

    Args:
        depth_m: (B, h, w) float metres; NaN = invalid, ``+Inf`` = too far.
        size_hw: (H, W) of the result.

    Returns:
        (B, H, W) float32 metres.
    """
    size = (int(size_hw[0]), int(size_hw[1]))
    depth = depth_m.float()
    if tuple(depth.shape[-2:]) == size:
        return depth
    inverse = torch.reciprocal(depth)  # +Inf -> 0
    invalid = ~((inverse >= 0) & torch.isfinite(inverse))  # NaN, negative or 0 m
    inverse = inverse.masked_fill(invalid, float("nan")).unsqueeze(1)
    smooth = F.interpolate(inverse, size=size, mode="bilinear", align_corners=False)
    nearest = F.interpolate(inverse, size=size, mode="nearest-exact")
    inverse = torch.where(torch.isnan(smooth), nearest, smooth).squeeze(1)
    return torch.reciprocal(inverse)


def flying_pixels(depth_m: torch.Tensor, threshold: float) -> torch.Tensor:
    """Pixels that lie between a nearer and a farther surface: "flying pixels" of an
    upsampled depth edge, which would be phantom points in the air.

    A pixel is flying when its depth differs from *both* its left and right
    neighbours, or from both the ones above and below, by more than ``threshold``
    times its depth. The last pixel of a real object has a neighbour on its own
    surface and stays.

    Args:
        depth_m: (H, W) float metres (NaN neighbours are ignored).
        threshold: relative depth step, e.g. 0.1 = 10 %.

    Returns:
        (H, W) bool.
    """
    z = depth_m.float()
    step = z.abs() * threshold
    nan = float("nan")
    pad_x = F.pad(z[None, None], (1, 1, 0, 0), value=nan)[0, 0]
    pad_y = F.pad(z[None, None], (0, 0, 1, 1), value=nan)[0, 0]
    left, right = (pad_x[:, :-2] - z).abs(), (pad_x[:, 2:] - z).abs()
    up, down = (pad_y[:-2] - z).abs(), (pad_y[2:] - z).abs()
    across_x = torch.fmin(left, right) > step
    across_y = torch.fmin(up, down) > step
    return across_x | across_y


def backproject(
    depth_m: torch.Tensor,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    stride: int = 1,
    max_depth: float = 0.0,
    min_depth: float = 0.0,
    edge_threshold: float = 0.0,
) -> torch.Tensor:
    """Organised xyz (optical frame, metres) of the pixels ``(j*stride, i*stride)``.

    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``, ``z = depth``. Depths that are
    not finite, ``<= 0``, nearer than ``min_depth``, (when ``max_depth > 0``) beyond
    ``max_depth``, or (when ``edge_threshold > 0``) :func:`flying_pixels` of the full
    depth image give NaN points.

    Args:
        depth_m: (H, W) float depth in metres on any device.
        fx, fy, cx, cy: pinhole intrinsics of an image of exactly (H, W), pixels.
        stride: sampling step in pixels, >= 1.
        max_depth: metres; 0 = no limit.
        min_depth: metres; 0 = no limit.
        edge_threshold: relative depth step of the flying-pixel filter; 0 = off.

    Returns:
        (ceil(H/stride), ceil(W/stride), 3) float32 on the depth's device.
    """
    if depth_m.dim() != 2:
        raise ValueError(f"depth_m must be (H, W), got shape {tuple(depth_m.shape)}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    z = depth_m[::stride, ::stride].float()
    valid = z > min_depth if min_depth > 0 else z > 0
    valid &= (z <= max_depth) if max_depth > 0 else (z < float("inf"))
    if edge_threshold > 0:
        valid &= ~flying_pixels(depth_m, edge_threshold)[::stride, ::stride]
    z = torch.where(valid, z, torch.full_like(z, float("nan")))
    dev = z.device
    # Rays in float64 then rounded, as the numpy version does, so both agree bit for bit.
    rx = (
        (torch.arange(0, depth_m.shape[1], stride, device=dev, dtype=torch.float64) - cx) / fx
    ).float()
    ry = (
        (torch.arange(0, depth_m.shape[0], stride, device=dev, dtype=torch.float64) - cy) / fy
    ).float()
    return torch.stack((z * rx[None, :], z * ry[:, None], z), dim=-1)
