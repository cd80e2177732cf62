"""2D rotary position embeddings (RoPE) on a patch grid, computed from static shapes.

Depth Anything 3's encoder rotates queries and keys by each token's (row, column)
position: the first half of every head's channels by the row, the second half by the
column, each half as 1D RoPE (Su et al., 2021) with base frequency 100 and the
"rotate half" channel pairing (channel j with channel j + d/2 of its half).

Here the rotation tables are computed directly from the grid size (Python integers), so
a traced graph holds no data-dependent shapes: the reference looks positions up in a
table sized by ``int(positions.max())`` (a data-dependent integer that the dynamo ONNX
exporter cannot trace) and builds positions with ``torch.cartesian_prod`` (which the
TorchScript exporter cannot export). The angles are the same float32 products
(position times inverse frequency) as the reference's, so the result is the same to
float32 rounding.
"""

from __future__ import annotations

import torch

#: The reference's base frequency (``rope_freq``).
ROPE_BASE = 100.0


def grid_positions(
    grid_hw: tuple[int, int], prefix_tokens: int = 1, shared: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of every token, prefix tokens first, patches row-major.

    Args:
        grid_hw: (h, w) patch grid.
        prefix_tokens: tokens before the patches (class or camera token); they sit at 0.
        shared: every patch at (1, 1) instead of its own place: the positions of the
            "global" (cross-view) attention blocks, where patch tokens share one position
            and only the prefix tokens differ from them.

    Returns:
        Two (prefix_tokens + h*w,) float32 tensors; patches count from 1.
    """
    h, w = int(grid_hw[0]), int(grid_hw[1])
    if shared:
        rows = torch.ones(h * w)
        cols = torch.ones(h * w)
    else:
        rows = torch.arange(1, h + 1, dtype=torch.float32).repeat_interleave(w)
        cols = torch.arange(1, w + 1, dtype=torch.float32).repeat(h)
    prefix = torch.zeros(prefix_tokens)
    return torch.cat((prefix, rows)), torch.cat((prefix, cols))


def _axis_angles(positions: torch.Tensor, dim: int, base: float) -> torch.Tensor:
    """(N, dim) angles of 1D RoPE over ``dim`` channels: each frequency twice."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    angles = positions[:, None] * inv_freq[None, :]
    return torch.cat((angles, angles), dim=-1)


def rope_tables(
    grid_hw: tuple[int, int],
    head_dim: int,
    prefix_tokens: int = 1,
    shared: bool = False,
    base: float = ROPE_BASE,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) tables for :func:`apply_rope`.

    Args:
        grid_hw: (h, w) patch grid.
        head_dim: channels per attention head (a multiple of 4).
        prefix_tokens: tokens before the patches.
        shared: the global blocks' positions (see :func:`grid_positions`).
        base: base frequency.
        device: where the tables live.

    Returns:
        Two (N, head_dim) float32 tensors, N = prefix_tokens + h*w: the row angles'
        cosines / sines in the first half of the channels, the column angles' in the second.
    """
    if head_dim % 4:
        raise ValueError(f"2D RoPE needs a head width divisible by 4, got {head_dim}")
    rows, cols = grid_positions(grid_hw, prefix_tokens, shared)
    half = head_dim // 2
    angles = torch.cat((_axis_angles(rows, half, base), _axis_angles(cols, half, base)), dim=-1)
    return angles.cos().to(device), angles.sin().to(device)


def _rotate_quarters(x: torch.Tensor) -> torch.Tensor:
    """[a, b, c, d] (quarters of the last dim) -> [-b, a, -d, c]: "rotate half" within the
    row half and within the column half."""
    a, b, c, d = x.chunk(4, dim=-1)
    return torch.cat((-b, a, -d, c), dim=-1)


def apply_rope(x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotates (B, heads, N, head_dim) queries or keys by :func:`rope_tables`."""
    cos, sin = tables
    return x * cos.to(x.dtype) + _rotate_quarters(x) * sin.to(x.dtype)
