"""Building blocks of the DPT decoder: readout handling, reassembly and fusion.

Names follow the original DPT implementation (``ResidualConvUnit``,
``FeatureFusionBlock``, readout ``ignore|add|project``) and its checkpoint key
layout, which users' weight files depend on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

READOUT_MODES = ("ignore", "add", "project")


class IgnoreReadout(nn.Module):
    """Drops the prefix (class) token(s).

    Args:
        start_index: number of prefix tokens before the patch tokens.
    """

    def __init__(self, start_index: int = 1) -> None:
        super().__init__()
        self.start_index = start_index

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, P + N, C) -> (B, N, C)."""
        return tokens[:, self.start_index :]


class AddReadout(nn.Module):
    """Adds the class token to every patch token.

    Args:
        start_index: number of prefix tokens; with 2 (a distillation token) their mean is added.
    """

    def __init__(self, start_index: int = 1) -> None:
        super().__init__()
        self.start_index = start_index

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, P + N, C) -> (B, N, C)."""
        if self.start_index == 2:
            readout = (tokens[:, 0] + tokens[:, 1]) / 2
        else:
            readout = tokens[:, 0]
        return tokens[:, self.start_index :] + readout.unsqueeze(1)


class ProjectReadout(nn.Module):
    """Concatenates the class token to every patch token and projects back to C (Linear + GELU).

    Args:
        embed_dim: token width C.
        start_index: number of prefix tokens.
    """

    def __init__(self, embed_dim: int, start_index: int = 1) -> None:
        super().__init__()
        self.start_index = start_index
        # ``project.0`` is the checkpoint key of the linear layer.
        self.project = nn.Sequential(nn.Linear(2 * embed_dim, embed_dim), nn.GELU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, P + N, C) -> (B, N, C)."""
        patches = tokens[:, self.start_index :]
        readout = tokens[:, 0].unsqueeze(1).expand_as(patches)
        return self.project(torch.cat((patches, readout), dim=-1))


def make_readout(mode: str, embed_dim: int, start_index: int = 1) -> nn.Module:
    """Builds the readout module for ``mode`` (one of ``READOUT_MODES``)."""
    if mode == "ignore":
        return IgnoreReadout(start_index)
    if mode == "add":
        return AddReadout(start_index)
    if mode == "project":
        return ProjectReadout(embed_dim, start_index)
    raise ValueError(f"unknown readout mode {mode!r}; valid modes are {', '.join(READOUT_MODES)}")


#: Resampling of the four reassembled maps relative to the patch grid: with 16-pixel
#: patches they end at 1/4, 1/8, 1/16 and 1/32 of the input.
REASSEMBLE_FACTORS = (4, 2, 1, 0.5)


def make_resample(channels: int, factor: float) -> nn.Module | None:
    """The resampling after a reassemble projection: transposed convolution for 4 and 2,
    none for 1, strided 3x3 convolution for 0.5."""
    if factor in (4, 2):
        k = int(factor)
        return nn.ConvTranspose2d(channels, channels, kernel_size=k, stride=k)
    if factor == 1:
        return None
    if factor == 0.5:
        return nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)
    raise ValueError(f"unsupported reassemble factor {factor}; valid: 4, 2, 1, 0.5")


class Reassemble(nn.Module):
    """Turns the tokens of one transformer block into an image-like feature map.

    readout -> (B, C, h, w) -> 1x1 projection -> resample by ``factor``
    (4 and 2: transposed convolution, 1: none, 0.5: strided 3x3 convolution).

    The child modules are registered as ``0`` (readout), ``3`` (projection) and
    ``4`` (resampling): the positions they had in the original ``nn.Sequential``,
    hence the official checkpoint keys ``act_postprocessN.3.weight`` and so on.

    Args:
        readout: ``ignore``, ``add`` or ``project``.
        embed_dim: token width of the backbone.
        out_channels: channels of the reassembled map.
        factor: spatial resampling factor relative to the patch grid (4, 2, 1 or 0.5).
        start_index: number of prefix tokens.
    """

    def __init__(
        self, readout: str, embed_dim: int, out_channels: int, factor: float, start_index: int = 1
    ) -> None:
        super().__init__()
        self.add_module("0", make_readout(readout, embed_dim, start_index))
        self.add_module("3", nn.Conv2d(embed_dim, out_channels, kernel_size=1))
        resample = make_resample(out_channels, factor)
        if resample is not None:
            self.add_module("4", resample)

    @property
    def readout(self) -> nn.Module:
        return self.get_submodule("0")

    @property
    def projection(self) -> nn.Module:
        return self.get_submodule("3")

    @property
    def resample(self) -> nn.Module | None:
        return self._modules.get("4")

    def forward(self, tokens: torch.Tensor, grid_hw: Sequence[int]) -> torch.Tensor:
        """(B, P + N, C) tokens on an (h, w) patch grid -> (B, out_channels, h*f, w*f)."""
        x = self.readout(tokens)
        b, n, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, int(grid_hw[0]), int(grid_hw[1]))
        x = self.projection(x)
        if self.resample is not None:
            x = self.resample(x)
        return x


class ResidualConvUnit(nn.Module):
    """ReLU -> conv3x3 (-> BN) -> ReLU -> conv3x3 (-> BN), plus the input.

    Args:
        features: channels in and out.
        use_bn: batch norm after each convolution (segmentation models); the
            convolutions then have no bias, as in the original.
    """

    def __init__(self, features: int, use_bn: bool = False) -> None:
        super().__init__()
        self.use_bn = use_bn
        self.conv1 = nn.Conv2d(features, features, 3, padding=1, bias=not use_bn)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=not use_bn)
        if use_bn:
            self.bn1 = nn.BatchNorm2d(features)
            self.bn2 = nn.BatchNorm2d(features)
        self.activation = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.activation(x))
        if self.use_bn:
            out = self.bn1(out)
        out = self.conv2(self.activation(out))
        if self.use_bn:
            out = self.bn2(out)
        return out + x


class FeatureFusionBlock(nn.Module):
    """Fuses a coarser path with a skip feature map, upsamples and projects.

    ``out = out_conv(up(resConfUnit2(x + resConfUnit1(skip))))`` with bilinear
    upsampling (align_corners=True, as in the original).

    Args:
        features: channels of both inputs and of the output.
        use_bn: batch norm in the residual units.
    """

    def __init__(self, features: int, use_bn: bool = False) -> None:
        super().__init__()
        # The names keep the original's spelling ("resConfUnit"): they are checkpoint keys.
        self.resConfUnit1 = ResidualConvUnit(features, use_bn)
        self.resConfUnit2 = ResidualConvUnit(features, use_bn)
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Fuses ``x`` (B, C, h, w) with ``skip`` (same shape) and upsamples.

        Args:
            x: the coarser path.
            skip: the reassembled feature map of this level, or None for the coarsest level.
            size: output (H, W); default twice the input size.
        """
        out = x
        if skip is not None:
            out = out + self.resConfUnit1(skip)
        out = self.resConfUnit2(out)
        if size is None:
            size = (out.shape[-2] * 2, out.shape[-1] * 2)
        out = F.interpolate(
            out, size=tuple(int(s) for s in size), mode="bilinear", align_corners=True
        )
        return self.out_conv(out)


class Upsample2x(nn.Module):
    """Bilinear upsampling by 2 (align_corners=True), a parameter-free head stage."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(
            x, size=(x.shape[-2] * 2, x.shape[-1] * 2), mode="bilinear", align_corners=True
        )


def make_scratch(channels: Sequence[int], features: int, use_bn: bool = False) -> nn.Module:
    """The decoder's ``scratch`` module: ``layerN_rn`` (3x3 convolutions from the four
    reassembled maps to ``features`` channels, no bias) and ``refinenetN`` fusion blocks.
    The heads add their own output convolutions to it."""
    scratch = nn.Module()
    for i, c in enumerate(channels):
        scratch.add_module(f"layer{i + 1}_rn", nn.Conv2d(c, features, 3, padding=1, bias=False))
    for i in range(4):
        scratch.add_module(f"refinenet{i + 1}", FeatureFusionBlock(features, use_bn))
    return scratch


def fuse(scratch: nn.Module, maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Runs a :func:`make_scratch` decoder on four reassembled maps (finest first):
    coarse-to-fine fusion, each level upsampled to the next one's size; returns the
    finest fused map at twice the first map's resolution."""
    s: Any = scratch  # its members are added by name
    l1, l2 = s.layer1_rn(maps[0]), s.layer2_rn(maps[1])
    l3, l4 = s.layer3_rn(maps[2]), s.layer4_rn(maps[3])
    path = s.refinenet4(l4, size=l3.shape[-2:])
    path = s.refinenet3(path, l3, size=l2.shape[-2:])
    path = s.refinenet2(path, l2, size=l1.shape[-2:])
    return s.refinenet1(path, l1)
