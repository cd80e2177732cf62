"""The DPT encoder: a timm Vision Transformer whose tokens from four layers are
reassembled into image-like feature maps.

The timm model is used through its public modules (``patch_embed``, ``cls_token``,
``pos_embed``, ``blocks``); the encoder walks the blocks itself and keeps the
outputs it needs, so no forward hooks, shared state or patched timm methods are
involved. Position embeddings are resampled for the input's patch grid exactly as
the original DPT does it (bilinear, align_corners=False, patch tokens only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from dpt_ros.models.network.blocks import REASSEMBLE_FACTORS, Reassemble
from dpt_ros.models.network.hybrid import HYBRID_TIMM_NAME, create_hybrid_vit
from dpt_ros.models.network.std_conv import use_original_weight_standardization

#: DPT input sides are multiples of this (the decoder's coarsest map is 1/32; the DPT
#: family's ``size_multiple``).
NETWORK_MULTIPLE = 32


@dataclass(frozen=True)
class BackboneConfig:
    """One of the DPT backbones.

    Attributes:
        name: DPT's name for it (``vitl16_384`` ...).
        timm_name: the timm architecture built with ``pretrained=False``.
        embed_dim: token width.
        hooks: indices of the layers whose outputs are used; for the hybrid the first
            two are ResNet stages, the last two transformer blocks.
        channels: channels of the four reassembled maps.
        hybrid: ResNet-50 patch embedding whose stages 0 and 1 give the first two maps.
        patch_size: pixels per token side.
    """

    name: str
    timm_name: str
    embed_dim: int
    hooks: tuple[int, int, int, int]
    channels: tuple[int, int, int, int]
    hybrid: bool = False
    patch_size: int = 16


BACKBONES = {
    "vitl16_384": BackboneConfig(
        "vitl16_384", "vit_large_patch16_384", 1024, (5, 11, 17, 23), (256, 512, 1024, 1024)
    ),
    "vitb16_384": BackboneConfig(
        "vitb16_384", "vit_base_patch16_384", 768, (2, 5, 8, 11), (96, 192, 384, 768)
    ),
    "vitb_rn50_384": BackboneConfig(
        "vitb_rn50_384",
        "vit_base_r50_s16_384",
        768,
        (0, 1, 8, 11),
        (256, 512, 768, 768),
        hybrid=True,
    ),
}


def get_backbone_config(name: str) -> BackboneConfig:
    """Returns the config of backbone ``name``; ValueError lists the valid names."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; valid backbones are {', '.join(sorted(BACKBONES))}"
        ) from None


def resample_pos_embed(
    pos_embed: torch.Tensor, grid_hw: tuple[int, int], num_prefix_tokens: int = 1
) -> torch.Tensor:
    """Resamples a square grid of position embeddings to ``grid_hw``.

    Bilinear, align_corners=False, on the patch tokens only; the prefix tokens'
    embeddings are kept. This is what the original DPT does (timm's own
    ``resample_abs_pos_embed`` defaults to antialiased bicubic, which differs).

    Args:
        pos_embed: (1, P + S*S, C).
        grid_hw: target patch grid (h, w).
        num_prefix_tokens: P.

    Returns:
        (1, P + h*w, C).
    """
    prefix = pos_embed[:, :num_prefix_tokens]
    grid = pos_embed[0, num_prefix_tokens:]
    side = int(math.sqrt(grid.shape[0]))
    h, w = int(grid_hw[0]), int(grid_hw[1])
    if (h, w) == (side, side):
        return pos_embed
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)
    return torch.cat([prefix, grid], dim=1)


class DPTEncoder(nn.Module):
    """ViT backbone plus the four reassemble stages.

    Registered as ``pretrained`` in ``DPT`` so that the state_dict keys are the
    official ones (``pretrained.model.*``, ``pretrained.act_postprocessN.*``).

    Args:
        backbone: ``vitl16_384``, ``vitb16_384`` or ``vitb_rn50_384``.
        readout: ``ignore``, ``add`` or ``project``.
    """

    def __init__(self, backbone: str = "vitb_rn50_384", readout: str = "project") -> None:
        super().__init__()
        self.config = get_backbone_config(backbone)
        cfg = self.config
        # pretrained=False: weights come from a DPT checkpoint, never from a hub.
        # timm's modules are reached by attribute (patch_embed, blocks, ...): typed Any.
        model: Any = (
            create_hybrid_vit()
            if cfg.timm_name == HYBRID_TIMM_NAME
            else timm.create_model(cfg.timm_name, pretrained=False)
        )
        if cfg.hybrid:
            # The official hybrid weights were trained with timm 0.4.5's standardisation.
            use_original_weight_standardization(model.patch_embed.backbone)
        self.model = model
        self.num_prefix_tokens = 1
        first = 2 if cfg.hybrid else 0
        for i in range(4):
            if i < first:
                # The hybrid's first two maps are ResNet stage outputs, used as they are.
                stage: nn.Module = nn.Identity()
            else:
                stage = Reassemble(
                    readout,
                    cfg.embed_dim,
                    cfg.channels[i],
                    REASSEMBLE_FACTORS[i],
                    self.num_prefix_tokens,
                )
            self.add_module(f"act_postprocess{i + 1}", stage)

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    def _reassemble(self, i: int) -> nn.Module:
        return self.get_submodule(f"act_postprocess{i + 1}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Runs the backbone and reassembles its four feature maps.

        Args:
            x: (B, 3, H, W) normalised image; H and W multiples of 32.

        Returns:
            Four maps (B, channels[i], H/4, W/4), (.., H/8, W/8), (.., H/16, W/16), (.., H/32, W/32).
        """
        b, _, height, width = x.shape
        p = self.patch_size
        if height % NETWORK_MULTIPLE or width % NETWORK_MULTIPLE:
            raise ValueError(
                f"DPT input size must be a multiple of {NETWORK_MULTIPLE}, got {height}x{width}"
            )
        grid_hw = (height // p, width // p)
        m = self.model
        maps: list[torch.Tensor] = []
        if self.config.hybrid:
            resnet = m.patch_embed.backbone
            y = resnet.stem(x)
            for i, stage in enumerate(resnet.stages):
                y = stage(y)
                if i < 2:
                    maps.append(y)
            y = resnet.norm(y)
        else:
            y = x
        tokens = m.patch_embed.proj(y).flatten(2).transpose(1, 2)
        tokens = torch.cat((m.cls_token.expand(b, -1, -1), tokens), dim=1)
        tokens = tokens + resample_pos_embed(m.pos_embed, grid_hw, self.num_prefix_tokens)
        tokens = m.pos_drop(tokens)

        block_hooks = [h for i, h in enumerate(self.config.hooks) if i >= len(maps)]
        last = block_hooks[-1]
        for index, block in enumerate(m.blocks):
            tokens = block(tokens)
            if index in block_hooks:
                level = len(maps)
                maps.append(self._reassemble(level)(tokens, grid_hw))
            if index == last:
                break
        return maps
