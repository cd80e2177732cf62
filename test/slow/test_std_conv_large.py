"""The hybrid backbone's weight standardisation is timm 0.4.5's, on every path."""

from __future__ import annotations

import gc

import cv2
import torch
from std_conv_reference import ReferenceConv, reference_weight, small_spread_weight, timm_1x_weight
from timm.layers import StdConv2dSame
from torch import nn

from dpt_ros.models import Predictor
from dpt_ros.models.network.std_conv import (
    OriginalStdConv2d,
    fold_weight_standardization,
    use_original_weight_standardization,
)
from dpt_ros.models.transforms import preprocess


def _relative_max_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


def _with_reference_convs(model: nn.Module, weight_fn) -> int:
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, OriginalStdConv2d)]
    for name, conv in targets:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, ReferenceConv(conv, weight_fn))
    return len(targets)


def test_compiled_convolution_computes_the_same_formula():
    stack = nn.Sequential(
        StdConv2dSame(3, 8, 7, stride=2, eps=1e-8),
        nn.ReLU(),
        StdConv2dSame(8, 8, 3, stride=1, eps=1e-8),
    )
    with torch.no_grad():
        stack[0].weight.copy_(small_spread_weight((8, 3, 7, 7), 2))
        stack[2].weight.copy_(small_spread_weight((8, 8, 3, 3), 3))
    use_original_weight_standardization(stack)
    x = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(4))
    torch._dynamo.reset()
    with torch.no_grad():
        eager = stack(x)
        compiled = torch.compile(stack, dynamic=False)(x)
    assert _relative_max_diff(compiled, eager) <= 1e-6
    reference = stack
    _with_reference_convs(reference, reference_weight)
    with torch.no_grad():
        assert _relative_max_diff(compiled, reference(x)) <= 1e-6


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

    formula_error = _relative_max_diff(ours, run_with(reference_weight))
    timm_1x_error = _relative_max_diff(ours, run_with(timm_1x_weight))
    print(f"704x1280: formula {formula_error:.2e}, timm 1.x form {timm_1x_error:.2e}")
    assert formula_error <= 1e-4, formula_error
    assert timm_1x_error >= 5e-4, timm_1x_error
