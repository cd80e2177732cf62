"""Depth post-processing on the model's device: metric depth from calibrated relative
depth, and back-projection to an organised xyz grid.

The package's one implementation of this geometry (``test/reference_geometry.py`` holds
the numpy reference it is tested against). It runs where the model runs, so the node
keeps depth on the GPU until one copy per output. Plain floats for the intrinsics: this
package does not import ROS.
"""

from __future__ import annotations

import torch


def relative_to_metric(inverse_depth: torch.Tensor, scale: float, shift: float) -> torch.Tensor:
    """Metres from calibrated relative inverse depth: ``1 / (scale * x + shift)``.

    Args:
        inverse_depth: (..., H, W) float32 relative inverse depth.
        scale, shift: the user's calibration (scale > 0).

    Returns:
        float32 metres of the same shape; NaN where ``scale * x + shift <= 0``.
    """
    denom = inverse_depth.float() * scale + shift
    depth = torch.reciprocal(denom)
    return depth.masked_fill_(~(denom > 0), float("nan"))


def backproject(
    depth_m: torch.Tensor,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    stride: int = 1,
    max_depth: float = 0.0,
) -> torch.Tensor:
    """Organised xyz (optical frame, metres) of the pixels ``(j*stride, i*stride)``.

    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``, ``z = depth``. Depths that are
    not finite, ``<= 0`` or (when ``max_depth > 0``) beyond ``max_depth`` give NaN points.

    Args:
        depth_m: (H, W) float depth in metres on any device.
        fx, fy, cx, cy: pinhole intrinsics of an image of exactly (H, W), pixels.
        stride: sampling step in pixels, >= 1.
        max_depth: metres; 0 = no limit.

    Returns:
        (ceil(H/stride), ceil(W/stride), 3) float32 on the depth's device.
    """
    if depth_m.dim() != 2:
        raise ValueError(f"depth_m must be (H, W), got shape {tuple(depth_m.shape)}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    z = depth_m[::stride, ::stride].float()
    valid = z > 0
    valid &= (z <= max_depth) if max_depth > 0 else (z < float("inf"))
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
