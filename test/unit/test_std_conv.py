"""The hybrid backbone's weight standardisation is timm 0.4.5's, on every path.

The reference here is the formula itself, ``(w - mean) / (std + 1e-5)`` with the
population standard deviation, computed in float64 and applied by a plain convolution.
timm 1.x (and transformers' BiT) compute ``(w - mean) / sqrt(var + 1e-8)``: every test
below would fail with that form, which ``test_timm_1x_form_differs`` shows.
"""

from __future__ import annotations

import pytest
import torch
from std_conv_reference import ReferenceConv, reference_weight, small_spread_weight, timm_1x_weight
from timm.layers import StdConv2d, StdConv2dSame
from torch import nn

from dpt_ros.models import get_spec
from dpt_ros.models.network.build import build_network
from dpt_ros.models.network.std_conv import (
    FoldedStdConv2d,
    OriginalStdConv2d,
    standardize_weight,
    use_original_weight_standardization,
)


def test_standardize_weight_is_the_timm_045_formula():
    w = small_spread_weight()
    torch.testing.assert_close(standardize_weight(w), reference_weight(w), rtol=1e-6, atol=1e-6)


def test_timm_1x_form_differs():
    """The two forms are not interchangeable: filters with std ~1e-4 differ by ~10 %."""
    w = small_spread_weight()
    diff = (standardize_weight(w) - timm_1x_weight(w)).abs().amax(dim=(1, 2, 3))
    assert diff[0] > 1e-2 and diff[-1] < 1e-3


@pytest.mark.parametrize(
    "timm_cls,stride", [(StdConv2dSame, 2), (StdConv2dSame, 1), (StdConv2d, 1)]
)
def test_replaced_convolution_keeps_padding_and_parameters(timm_cls, stride):
    holder = nn.Sequential(timm_cls(4, 8, 3, stride=stride, eps=1e-8))
    with torch.no_grad():
        holder[0].weight.copy_(small_spread_weight())
    timm_out_shape = holder(torch.randn(1, 4, 15, 17)).shape
    weight = holder[0].weight
    assert use_original_weight_standardization(holder) == 1
    conv = holder[0]
    assert isinstance(conv, OriginalStdConv2d) and conv.weight is weight
    assert list(holder.state_dict()) == ["0.weight"]
    x = torch.randn(1, 4, 15, 17, generator=torch.Generator().manual_seed(1))
    out = holder(x)
    assert out.shape == timm_out_shape
    want = ReferenceConv(conv, reference_weight)(x)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(FoldedStdConv2d(conv)(x), out, rtol=0, atol=0)


def test_hybrid_backbones_use_the_original_form():
    for model_type in ("dpt_hybrid", "dpt_hybrid_ade20k"):
        with torch.device("meta"):
            model = build_network(get_spec(model_type))
        kinds = [type(m) for m in model.modules()]
        assert kinds.count(OriginalStdConv2d) == 52
        assert StdConv2d not in kinds and StdConv2dSame not in kinds
    with torch.device("meta"):
        large = build_network(get_spec("dpt_large"))
    assert not any(isinstance(m, OriginalStdConv2d) for m in large.modules())
