"""The hybrid backbone's weight standardisation is timm 0.4.5's, on every path.

The reference here is the formula itself, ``(w - mean) / (std + 1e-5)`` with the
population standard deviation, computed in float64 and applied by a plain convolution.
timm 1.x (and transformers' BiT) compute ``(w - mean) / sqrt(var + 1e-8)``: every test
below would fail with that form, which ``test_timm_1x_form_differs`` shows.
"""

from __future__ import annotations

import gc

import cv2
import pytest
import torch
import torch.nn.functional as F
from timm.layers import StdConv2d, StdConv2dSame
from timm.layers.padding import pad_same
from torch import nn

from dpt_ros.models import Predictor, get_spec
from dpt_ros.models.network.build import build_network
from dpt_ros.models.network.std_conv import (
    FoldedStdConv2d,
    OriginalStdConv2d,
    fold_weight_standardization,
    standardize_weight,
    use_original_weight_standardization,
)
from dpt_ros.models.transforms import preprocess


def _reference_weight(weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    w = weight.double()
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(dim=1)
    std = (flat - mean[:, None]).pow(2).mean(dim=1).sqrt()
    return ((w - mean[:, None, None, None]) / (std[:, None, None, None] + eps)).float()


def _timm_1x_weight(weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    w = weight.double()
    flat = w.reshape(w.shape[0], -1)
    var = flat.var(dim=1, unbiased=False)
    return (
        (w - flat.mean(dim=1)[:, None, None, None]) / (var[:, None, None, None] + eps).sqrt()
    ).float()


def _small_spread_weight(shape=(8, 4, 3, 3), seed: int = 0) -> torch.Tensor:
    """Filters with a small spread, where the two forms differ most (as in trained
    ResNets, whose filters often have std ~1e-3)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * torch.logspace(-4, -1, shape[0])[:, None, None, None]


def _relative_max_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


class _ReferenceConv(nn.Module):
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


def _with_reference_convs(model: nn.Module, weight_fn) -> int:
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, OriginalStdConv2d)]
    for name, conv in targets:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, _ReferenceConv(conv, weight_fn))
    return len(targets)


def test_standardize_weight_is_the_timm_045_formula():
    w = _small_spread_weight()
    torch.testing.assert_close(standardize_weight(w), _reference_weight(w), rtol=1e-6, atol=1e-6)


def test_timm_1x_form_differs():
    """The two forms are not interchangeable: filters with std ~1e-4 differ by ~10 %."""
    w = _small_spread_weight()
    diff = (standardize_weight(w) - _timm_1x_weight(w)).abs().amax(dim=(1, 2, 3))
    assert diff[0] > 1e-2 and diff[-1] < 1e-3


@pytest.mark.parametrize(
    "timm_cls,stride", [(StdConv2dSame, 2), (StdConv2dSame, 1), (StdConv2d, 1)]
)
def test_replaced_convolution_keeps_padding_and_parameters(timm_cls, stride):
    holder = nn.Sequential(timm_cls(4, 8, 3, stride=stride, eps=1e-8))
    with torch.no_grad():
        holder[0].weight.copy_(_small_spread_weight())
    timm_out_shape = holder(torch.randn(1, 4, 15, 17)).shape
    weight = holder[0].weight
    assert use_original_weight_standardization(holder) == 1
    conv = holder[0]
    assert isinstance(conv, OriginalStdConv2d) and conv.weight is weight
    assert list(holder.state_dict()) == ["0.weight"]
    x = torch.randn(1, 4, 15, 17, generator=torch.Generator().manual_seed(1))
    out = holder(x)
    assert out.shape == timm_out_shape
    want = _ReferenceConv(conv, _reference_weight)(x)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(FoldedStdConv2d(conv)(x), out, rtol=0, atol=0)


def test_compiled_convolution_computes_the_same_formula():
    stack = nn.Sequential(
        StdConv2dSame(3, 8, 7, stride=2, eps=1e-8),
        nn.ReLU(),
        StdConv2dSame(8, 8, 3, stride=1, eps=1e-8),
    )
    with torch.no_grad():
        stack[0].weight.copy_(_small_spread_weight((8, 3, 7, 7), 2))
        stack[2].weight.copy_(_small_spread_weight((8, 8, 3, 3), 3))
    use_original_weight_standardization(stack)
    x = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(4))
    torch._dynamo.reset()
    with torch.no_grad():
        eager = stack(x)
        compiled = torch.compile(stack, dynamic=False)(x)
    assert _relative_max_diff(compiled, eager) <= 1e-6
    reference = stack
    _with_reference_convs(reference, _reference_weight)
    with torch.no_grad():
        assert _relative_max_diff(compiled, reference(x)) <= 1e-6


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


def test_hybrid_on_a_large_input_matches_the_formula(det_checkpoint, scene_a_rgb):
    """dpt_hybrid with the fixture weights on scene_a as a 720x1280 camera image, at a
    704x1280 network input: our network against the same network with convolutions
    whose weights follow the formula in float64. timm 1.x's form is off by more than
    5x the bound."""
    predictor = Predictor(
        "dpt_hybrid",
        weights=det_checkpoint("dpt_hybrid"),
        device="cpu",
        backend="torch",
        precision="fp32",
        channels_last=False,
    )
    model = predictor.model
    image = cv2.resize(scene_a_rgb, (1280, 720), interpolation=cv2.INTER_CUBIC)
    x = preprocess(
        torch.from_numpy(image)[None], (704, 1280), predictor.spec.mean, predictor.spec.std
    )
    with torch.inference_mode():
        ours = model(x)
        assert fold_weight_standardization(model) == 52
        folded = model(x)
        torch.testing.assert_close(folded, ours, rtol=0, atol=0)
    del predictor, model
    gc.collect()

    def run_with(weight_fn) -> torch.Tensor:
        reference = Predictor(
            "dpt_hybrid",
            weights=det_checkpoint("dpt_hybrid"),
            device="cpu",
            backend="torch",
            precision="fp32",
            channels_last=False,
        ).model
        assert _with_reference_convs(reference, weight_fn) == 52
        with torch.inference_mode():
            return reference(x)

    formula_error = _relative_max_diff(ours, run_with(_reference_weight))
    timm_1x_error = _relative_max_diff(ours, run_with(_timm_1x_weight))
    print(f"704x1280: formula {formula_error:.2e}, timm 1.x form {timm_1x_error:.2e}")
    assert formula_error <= 1e-4, formula_error
    assert timm_1x_error >= 5e-4, timm_1x_error
