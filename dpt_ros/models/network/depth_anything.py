"""Depth Anything V2 (Yang et al., 2024): the DPT decoder on a DINOv2 encoder.

The encoder is timm's DINOv2 ViT (``vit_*_patch14_dinov2``, built with
``pretrained=False``), used through its public modules and walked block by block as
the DPT encoder is. Module names reproduce the official ``.pth`` key layout
(``pretrained.*``, ``depth_head.*``). Behaviour that moves the numbers follows the
original (DepthAnything/Depth-Anything-V2 at a561b84):

- position embeddings: the 37x37 grid resized with bicubic interpolation (no
  antialiasing) by a *scale factor* of ``(grid + 0.1) / 37``, not to a target size;
- four intermediate blocks, each through the final LayerNorm, class token dropped;
- the finest fused map upsampled (bilinear, align_corners=True) to the input's
  patch-aligned size before the last convolutions;
- relative models end in ReLU, metric ones in sigmoid times the maximum depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.models.network.blocks import REASSEMBLE_FACTORS, fuse, make_resample, make_scratch

#: DINOv2's patch side in pixels; network inputs are multiples of it.
PATCH_SIZE = 14
#: The original adds this to the target grid before computing the scale factor.
_POS_EMBED_OFFSET = 0.1


@dataclass(frozen=True)
class DinoConfig:
    """One Depth Anything V2 encoder size.

    Attributes:
        name: ``vits``, ``vitb`` or ``vitl`` (the official file names' suffix).
        timm_name: timm's DINOv2 architecture, built with ``pretrained=False``.
        embed_dim: token width.
        layers: the blocks whose outputs feed the decoder.
        features: decoder width.
        channels: channels of the four reassembled maps.
    """

    name: str
    timm_name: str
    embed_dim: int
    layers: tuple[int, int, int, int]
    features: int
    channels: tuple[int, int, int, int]


DINO_ENCODERS = {
    "vits": DinoConfig(
        "vits", "vit_small_patch14_dinov2", 384, (2, 5, 8, 11), 64, (48, 96, 192, 384)
    ),
    "vitb": DinoConfig(
        "vitb", "vit_base_patch14_dinov2", 768, (2, 5, 8, 11), 128, (96, 192, 384, 768)
    ),
    "vitl": DinoConfig(
        "vitl", "vit_large_patch14_dinov2", 1024, (4, 11, 17, 23), 256, (256, 512, 1024, 1024)
    ),
}


def get_dino_config(name: str) -> DinoConfig:
    """The config of encoder ``name``; ValueError lists the valid names."""
    try:
        return DINO_ENCODERS[name]
    except KeyError:
        raise ValueError(
            f"unknown Depth Anything V2 encoder {name!r}; valid: {', '.join(DINO_ENCODERS)}"
        ) from None


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Position embeddings for an (h, w) patch grid, as the original DINOv2 computes them.

    The square grid is resized bicubically (no antialiasing) with the scale factor
    ``(h + 0.1) / side`` by ``(w + 0.1) / side``; torch then samples with exactly that
    factor, which differs from resizing to a target size. The class token's embedding
    is kept.

    Args:
        pos_embed: (1, 1 + side*side, C).
        grid_hw: (h, w) patch grid.

    Returns:
        (1, 1 + h*w, C), in pos_embed's dtype.
    """
    n = pos_embed.shape[1] - 1
    h, w = int(grid_hw[0]), int(grid_hw[1])
    if n == h * w and h == w:
        return pos_embed
    side = int(math.sqrt(n))
    grid = pos_embed[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = ((h + _POS_EMBED_OFFSET) / side, (w + _POS_EMBED_OFFSET) / side)
    grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)
    if tuple(grid.shape[-2:]) != (h, w):
        raise ValueError(f"position embeddings resized to {tuple(grid.shape[-2:])}, not {(h, w)}")
    grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1).to(pos_embed.dtype)
    return torch.cat((pos_embed[:, :1], grid), dim=1)


class DinoV2Encoder(nn.Module):
    """The DINOv2 ViT, returning the normalised patch tokens of four blocks.

    Registered as ``pretrained``: its state_dict keys are the official ones
    (``cls_token``, ``pos_embed``, ``mask_token``, ``patch_embed.proj.*``,
    ``blocks.N.*``, ``norm.*``). ``mask_token`` (masked-image training) is never used
    at inference; it is kept so that official files load strictly.
    """

    def __init__(self, config: DinoConfig) -> None:
        super().__init__()
        self.config = config
        # timm's modules are reached by attribute: typed Any. pretrained=False: the
        # weights come from a Depth Anything V2 checkpoint, never from a hub.
        model: Any = timm.create_model(config.timm_name, pretrained=False, num_classes=0)
        self.cls_token = model.cls_token
        self.pos_embed = model.pos_embed
        self.mask_token = nn.Parameter(torch.zeros(1, config.embed_dim))
        self.patch_embed = model.patch_embed
        self.blocks = model.blocks
        self.norm = model.norm

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W), H and W multiples of 14 -> four (B, H/14 * W/14, C) token maps."""
        b, _, height, width = x.shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(
                f"Depth Anything V2 input size must be a multiple of {PATCH_SIZE}, "
                f"got {height}x{width}"
            )
        grid_hw = (height // PATCH_SIZE, width // PATCH_SIZE)
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        tokens = tokens + interpolate_pos_embed(self.pos_embed, grid_hw)
        layers = self.config.layers
        outputs: list[torch.Tensor] = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in layers:
                outputs.append(self.norm(tokens)[:, 1:])
            if index == layers[-1]:
                break
        return outputs


class DepthAnythingHead(nn.Module):
    """The DPT decoder of Depth Anything V2 (``depth_head``).

    Args:
        config: the encoder size (token width, decoder width, map channels).
        max_depth: 0 for relative models (ReLU output); otherwise the output is
            ``sigmoid * max_depth`` metres.
    """

    def __init__(self, config: DinoConfig, max_depth: float = 0.0) -> None:
        super().__init__()
        self.projects = nn.ModuleList(
            nn.Conv2d(config.embed_dim, c, kernel_size=1) for c in config.channels
        )
        self.resize_layers = nn.ModuleList(
            make_resample(c, f) or nn.Identity()
            for c, f in zip(config.channels, REASSEMBLE_FACTORS, strict=True)
        )
        features = config.features
        self.scratch = make_scratch(config.channels, features)
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(32, 1, kernel_size=1),
            nn.Sigmoid() if max_depth > 0 else nn.ReLU(True),
            nn.Identity(),
        )

    def forward(self, tokens: list[torch.Tensor], grid_hw: tuple[int, int]) -> torch.Tensor:
        """Four (B, h*w, C) token maps on an (h, w) grid -> (B, 1, 14h, 14w)."""
        maps = []
        for i, t in enumerate(tokens):
            x = t.transpose(1, 2).reshape(t.shape[0], t.shape[-1], grid_hw[0], grid_hw[1])
            maps.append(self.resize_layers[i](self.projects[i](x)))
        s: Any = self.scratch
        out = s.output_conv1(fuse(s, maps))
        size = (grid_hw[0] * PATCH_SIZE, grid_hw[1] * PATCH_SIZE)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        return s.output_conv2(out)


class DepthAnythingV2(nn.Module):
    """Depth Anything V2, relative (``max_depth`` 0) or metric.

    Args:
        encoder: ``vits``, ``vitb`` or ``vitl``.
        max_depth: 0 for the relative models (affine-invariant inverse depth);
            20 (Hypersim, indoor) or 80 (Virtual KITTI 2, outdoor) metres for the metric ones.
    """

    def __init__(self, encoder: str = "vits", max_depth: float = 0.0) -> None:
        super().__init__()
        config = get_dino_config(encoder)
        self.max_depth = float(max_depth)
        self.pretrained = DinoV2Encoder(config)
        self.depth_head = DepthAnythingHead(config, self.max_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, H, W) relative inverse depth or metres."""
        grid_hw = (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE)
        depth = self.depth_head(self.pretrained(x), grid_hw)
        if self.max_depth > 0:
            depth = depth * self.max_depth
        else:
            depth = F.relu(depth)
        return depth.squeeze(1)
