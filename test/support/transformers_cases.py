"""Shared test set-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")


DAV2_SMALL_HF = {
    "backbone_config": {
        "architectures": ["Dinov2Model"],
        "hidden_size": 384,
        "image_size": 518,
        "model_type": "dinov2",
        "num_attention_heads": 6,
        "out_features": ["stage3", "stage6", "stage9", "stage12"],
        "out_indices": [3, 6, 9, 12],
        "patch_size": 14,
        "reshape_hidden_states": False,
    },
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "head_in_index": -1,
    "neck_hidden_sizes": [48, 96, 192, 384],
    "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5],
    "reassemble_hidden_size": 384,
}


def relative_max_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Largest absolute difference over the largest magnitude of transformers' output."""
    return float((ours - theirs).abs().max() / theirs.abs().max())


def saved_depth_model(
    folder: Path, cls_name: str, config_cls: str, config: dict, seed: int, size: int
):
    """(folder, input, transformers' predicted depth) of a saved random depth model."""
    model = save_transformers_model(folder, cls_name, config_cls, config, seed)
    x = normalised_input(size)
    with torch.no_grad():
        return folder, x, model(pixel_values=x).predicted_depth


@pytest.fixture(scope="module")
def hybrid_folder(module_tmp):
    folder = module_tmp("dpt_hybrid_hf")
    return saved_depth_model(
        folder, "DPTForDepthEstimation", "DPTConfig", DPT_HYBRID_MIDAS, seed=11, size=384
    )


@pytest.fixture(scope="module")
def dav2_folder(module_tmp):
    folder = module_tmp("dav2_small_hf")
    cls_name, config_cls = "DepthAnythingForDepthEstimation", "DepthAnythingConfig"
    return saved_depth_model(folder, cls_name, config_cls, DAV2_SMALL_HF, seed=13, size=518)


# The published config.json values that define each network. Depth-Anything-V2-Small-hf:
# as published (revision 5426e4f). The Intel DPT repositories: the values their
# conversion scripts (transformers' convert_dpt_hybrid_to_pytorch.py and
# convert_dpt_to_pytorch.py) set on DPTConfig; the config.json files themselves were
# not available to copy.
BIT_HYBRID = {
    "global_padding": "same",
    "layer_type": "bottleneck",
    "depths": [3, 4, 9],
    "out_features": ["stage1", "stage2", "stage3"],
    "embedding_dynamic_padding": True,
}


DPT_HYBRID_MIDAS = {
    "is_hybrid": True,
    "backbone_config": BIT_HYBRID,
    "backbone_featmap_shape": [1, 1024, 24, 24],
    "hidden_size": 768,
    "reassemble_factors": [1, 1, 1, 0.5],
    "neck_hidden_sizes": [256, 512, 768, 768],
    "readout_type": "project",
    "use_batch_norm_in_fusion_residual": False,
}


def save_transformers_model(folder: Path, cls_name: str, config_cls: str, config: dict, seed: int):
    """Builds a transformers model from ``config``, randomises it, saves it; returns it."""
    cfg = getattr(transformers, config_cls)(**config)
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(cfg).eval()
    randomise(model, seed)
    model.save_pretrained(folder)
    return model


def normalised_input(size: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand((1, 3, size, size), generator=gen) - 0.5) / 0.25


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Seeded random values in every entry: noise on weights, norms and biases, positive
    batch-norm variances."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.add_(0.05 * torch.randn(t.shape, generator=gen))
