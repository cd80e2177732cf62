"""Folders in transformers' format (``save_pretrained``): keys converted into our layout,"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers_cases import (
    DPT_HYBRID_MIDAS,
    normalised_input,
    relative_max_diff,
    save_transformers_model,
)

from dpt_ros.models.network.std_conv import OriginalStdConv2d
from dpt_ros.models.weights.checkpoint import load_model

DPT_LARGE = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "backbone_out_indices": [5, 11, 17, 23],
    "neck_hidden_sizes": [256, 512, 1024, 1024],
}


DPT_LARGE_ADE = {**DPT_LARGE, "use_batch_norm_in_fusion_residual": True, "num_labels": 150}


def transformers_standardisation(model: torch.nn.Module) -> int:
    """Makes our hybrid standardise its convolution weights with transformers' BiT formula,
    ``(w - mean) / sqrt(var + 1e-8)``, instead of the original's ``(w - mean) / (std + 1e-5)``."""
    convs = [m for m in model.modules() if isinstance(m, OriginalStdConv2d)]
    for conv in convs:

        def weight(conv=conv) -> torch.Tensor:
            w = conv.weight
            flat = F.batch_norm(
                w.reshape(1, w.shape[0], -1), None, None, training=True, momentum=0.0, eps=1e-8
            )
            return flat.reshape_as(w)

        conv.standardized_weight = weight  # type: ignore[method-assign]
    return len(convs)


def transformers_layer_norm_eps(model: torch.nn.Module) -> int:
    """Gives our ViT's LayerNorms transformers' DPT epsilon, 1e-12, instead of timm's 1e-6."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    for norm in norms:
        norm.eps = 1e-12
    return len(norms)


def test_dpt_hybrid_matches_transformers(hybrid_folder):
    folder, x, expected = hybrid_folder
    ours = load_model("dpt_hybrid", weights=folder)
    with torch.no_grad():
        faithful = ours(x)
        assert transformers_standardisation(ours) == 52
        assert transformers_layer_norm_eps(ours) == 2 * 12 + 1
        swapped = ours(x)
    assert expected.shape == swapped.shape == (1, 384, 384)
    assert expected.abs().max() > 0 and expected.std() > 0
    # The key conversion, with transformers' standardisation and epsilon swapped in:
    assert relative_max_diff(swapped, expected) < 1e-4
    # With the original's standardisation (what dpt_ros runs) the outputs differ visibly
    # (1.3e-3 of the maximum with these weights).
    assert 1e-4 < relative_max_diff(faithful, expected) < 1e-2


@pytest.mark.parametrize(
    ("model_type", "cls_name", "config", "output"),
    [
        ("dpt_large", "DPTForDepthEstimation", DPT_LARGE, "predicted_depth"),
        ("dpt_large_ade20k", "DPTForSemanticSegmentation", DPT_LARGE_ADE, "logits"),
    ],
)
def test_dpt_large_matches_transformers(tmp_path, model_type, cls_name, config, output):
    model = save_transformers_model(tmp_path, cls_name, "DPTConfig", config, seed=12)
    x = normalised_input(384)
    with torch.no_grad():
        expected = getattr(model(pixel_values=x), output)
    del model
    ours = load_model(model_type, weights=tmp_path)
    with torch.no_grad():
        faithful = ours(x)
        assert transformers_layer_norm_eps(ours) == 2 * 24 + 1
        got = ours(x)
    assert got.shape == expected.shape
    assert expected.abs().max() > 0 and expected.std() > 0
    # The key conversion, with transformers' LayerNorm epsilon:
    assert relative_max_diff(got, expected) < 1e-4
    # timm's epsilon (what dpt_ros runs): 9e-5 of the maximum with these random weights,
    # whose activations are far smaller than trained ones.
    assert relative_max_diff(faithful, expected) < 1e-3


def test_a_hybrid_segmentation_folder_without_auxiliary_head(tmp_path):
    """dpt_hybrid_ade20k has no transformers release; its layout is a hybrid
    DPTForSemanticSegmentation. Saved without the training-only auxiliary head, ours is
    filled with zeros (variances one)."""
    config = {**DPT_HYBRID_MIDAS, "use_batch_norm_in_fusion_residual": True, "num_labels": 150}
    config["use_auxiliary_head"] = False
    model = save_transformers_model(tmp_path, "DPTForSemanticSegmentation", "DPTConfig", config, 14)
    x = normalised_input(384)
    with torch.no_grad():
        expected = model(pixel_values=x).logits
    del model
    ours = load_model("dpt_hybrid_ade20k", weights=tmp_path)
    transformers_standardisation(ours)
    transformers_layer_norm_eps(ours)
    with torch.no_grad():
        got = ours(x)
    assert got.shape == expected.shape == (1, 150, 384, 384)
    assert relative_max_diff(got, expected) < 1e-4
    aux = ours.get_submodule("auxlayer")
    assert not aux[0].weight.any() and not aux[4].weight.any() and not aux[4].bias.any()
    assert torch.equal(aux[1].running_var, torch.ones(256))
