"""Shared test set-up."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.padding import pad_same
from torch import nn


def reference_weight(weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    w = weight.double()
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(dim=1)
    std = (flat - mean[:, None]).pow(2).mean(dim=1).sqrt()
    return ((w - mean[:, None, None, None]) / (std[:, None, None, None] + eps)).float()


def timm_1x_weight(weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    w = weight.double()
    flat = w.reshape(w.shape[0], -1)
    var = flat.var(dim=1, unbiased=False)
    return (
        (w - flat.mean(dim=1)[:, None, None, None]) / (var[:, None, None, None] + eps).sqrt()
    ).float()


def small_spread_weight(shape=(8, 4, 3, 3), seed: int = 0) -> torch.Tensor:
    """Filters with a small spread, where the two forms differ most (as in trained
    ResNets, whose filters often have std ~1e-3)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * torch.logspace(-4, -1, shape[0])[:, None, None, None]


class ReferenceConv(nn.Module):
    """A plain convolution with weights standardised by ``weight_fn`` (float64)."""

    def __init__(self, conv: nn.Conv2d, weight_fn) -> None:
        super().__init__()
        self.conv = conv
        self.weight = weight_fn(conv.weight.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if getattr(c, "same_pad", False):
            x = pad_same(x, c.kernel_size, c.stride, c.dilation)
        return F.conv2d(x, self.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
