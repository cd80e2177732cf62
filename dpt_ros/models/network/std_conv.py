"""Weight-standardised convolutions as the official DPT-Hybrid checkpoints were trained.

The hybrid backbone's ResNet-50 standardises every convolution's weights per output
filter before convolving. The DPT release ran on timm 0.4.5, where this is

    w' = (w - mean) / (std + 1e-5)        std over (C_in, kH, kW), unbiased=False

timm 1.x computes ``(w - mean) / sqrt(var + 1e-8)`` instead (a batch norm over the
weights). The two differ most for filters with a small spread, and move ``dpt_hybrid``'s
output by about 1e-3 of its maximum. The official weights were trained and evaluated
with the first form, so that is the one used here.

Rather than patching timm's classes (which would change every timm model in the
process), ``use_original_weight_standardization`` swaps the convolutions of one module
tree for :class:`OriginalStdConv2d`, sharing their weight parameters: the state_dict
keys stay the official ones. The formula is ordinary tensor code in ``forward``, so
eager and ``torch.compile`` compute it from the stored weights on every forward pass.
For a fixed graph (ONNX, and TensorRT built from it) :func:`fold_weight_standardization`
stores the standardised weights instead, computed once by the same function, so the
engine holds exactly the weights the eager model convolves with, as constants.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import StdConv2d, StdConv2dSame
from timm.layers.padding import pad_same
from torch import nn

#: The epsilon timm 0.4.5's StdConv2d / StdConv2dSame add to the standard deviation.
ORIGINAL_EPS = 1e-5


def standardize_weight(weight: torch.Tensor, eps: float = ORIGINAL_EPS) -> torch.Tensor:
    """``(w - mean) / (std + eps)`` per output filter, std with unbiased=False.

    Args:
        weight: (C_out, C_in, kH, kW) convolution weights.
        eps: added to the standard deviation (not the variance).

    Returns:
        The standardised weights, same shape and dtype.
    """
    std, mean = torch.std_mean(weight, dim=(1, 2, 3), keepdim=True, correction=0)
    return (weight - mean) / (std + eps)


def _geometry(conv: nn.Conv2d) -> dict[str, Any]:
    """The constructor arguments that give another convolution ``conv``'s shape."""
    return {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "groups": conv.groups,
        "bias": conv.bias is not None,
    }


def _pad_same(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """TF "SAME" padding of ``x`` for ``conv``, from the input's size (timm's rule)."""
    return pad_same(x, list(conv.kernel_size), list(conv.stride), list(conv.dilation))


class OriginalStdConv2d(nn.Conv2d):
    """A convolution with timm 0.4.5's weight standardisation.

    Args:
        conv: the timm ``StdConv2d`` / ``StdConv2dSame`` it replaces; its weight (and
            bias) parameters are shared, its padding kept, including TF "SAME" padding
            computed from the input size where timm pads dynamically.
        eps: see :func:`standardize_weight`.
    """

    def __init__(self, conv: nn.Conv2d, eps: float = ORIGINAL_EPS) -> None:
        super().__init__(**_geometry(conv), device="meta")
        self.weight = conv.weight
        self.bias = conv.bias
        self.same_pad = bool(getattr(conv, "same_pad", False))
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        """The weights this convolution applies."""
        return standardize_weight(self.weight, self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad:
            x = _pad_same(x, self)
        return F.conv2d(
            x,
            self.standardized_weight(),
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )


class FoldedStdConv2d(nn.Conv2d):
    """An :class:`OriginalStdConv2d` with its weights standardised once, for export.

    Its ``weight`` holds the standardised weights (not the checkpoint's), so it is for
    inference graphs only; padding is the original's, "SAME" included.
    """

    def __init__(self, conv: OriginalStdConv2d) -> None:
        super().__init__(**_geometry(conv), device="meta")
        with torch.no_grad():
            self.weight = nn.Parameter(
                conv.standardized_weight().detach().clone(), requires_grad=False
            )
        self.bias = conv.bias
        self.same_pad = conv.same_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad:
            x = _pad_same(x, self)
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


def _replace(module: nn.Module, kinds: tuple, make) -> int:
    targets = [(name, child) for name, child in module.named_modules() if isinstance(child, kinds)]
    for name, child in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, make(child))
    return len(targets)


def use_original_weight_standardization(module: nn.Module, eps: float = ORIGINAL_EPS) -> int:
    """Replaces every timm weight-standardised convolution under ``module`` in place by
    an :class:`OriginalStdConv2d` sharing its parameters.

    Args:
        module: e.g. the hybrid ViT's ResNet backbone.
        eps: see :func:`standardize_weight`.

    Returns:
        How many convolutions were replaced.
    """
    return _replace(module, (StdConv2d, StdConv2dSame), lambda c: OriginalStdConv2d(c, eps))


def fold_weight_standardization(module: nn.Module) -> int:
    """Replaces every :class:`OriginalStdConv2d` under ``module`` in place by a
    :class:`FoldedStdConv2d`: same outputs, standardised weights as constants.

    For export only: the module's state_dict then holds standardised weights.

    Returns:
        How many convolutions were folded.
    """
    return _replace(module, (OriginalStdConv2d,), FoldedStdConv2d)
