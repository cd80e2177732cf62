"""Depth Anything V2 (Yang et al., 2024): a DINOv2 encoder and a DPT decoder; three
relative types and six metric ones (Hypersim indoor to 20 m, Virtual KITTI outdoor to
80 m), Small, Base and Large.

The network is :mod:`dpt_ros.models.network.depth_anything`. Images are sized so that
neither side ends below the network size (518), to multiples of 14 (DINOv2's patch),
normalised with ImageNet's statistics, and outputs resized back bilinearly
(``align_corners=True``), as the original's ``infer_image`` does. Weights: the hub's
``.pth`` files, or transformers' ``DepthAnythingForDepthEstimation`` folders
(``Depth-Anything-V2-*-hf``) renamed by :data:`DEPTH_ANYTHING_RULES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dpt_ros.models.family import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    METRIC_DEPTH,
    RELATIVE_INVERSE_DEPTH,
    ModelFamily,
    ModelSpec,
)
from dpt_ros.models.weights.key_rules import (
    VIT_PARTS,
    FolderModel,
    P,
    Rule,
    differences,
    neck_rules,
    rule,
    unsupported,
    vit_block_rules,
)

if TYPE_CHECKING:  # annotations only: the registry imports this file without torch
    from torch import nn

#: Depth Anything V2's default network size (its ``input_size``).
DAV2_INPUT_SIZE = 518
#: Attention heads and blocks of the DINOv2 encoders (timm's and transformers' configs).
_DINO_HEADS_LAYERS = {"vits": (6, 12), "vitb": (12, 12), "vitl": (16, 24)}

# --------------------------------------------------------------------------- keys

#: transformers' Depth Anything keys -> the original's (``layer_scaleN.lambda1`` is
#: timm's ``lsN.gamma``; ``head.conv1/2/3`` are ``output_conv1``, ``output_conv2.0`` and
#: ``output_conv2.2``).
DEPTH_ANYTHING_RULES: tuple[Rule, ...] = (
    rule(r"backbone\.embeddings\.(cls_token|mask_token)", r"pretrained.\1"),
    rule(r"backbone\.embeddings\.position_embeddings", "pretrained.pos_embed"),
    rule(
        r"backbone\.embeddings\.patch_embeddings\.projection" + P,
        r"pretrained.patch_embed.proj.\1",
    ),
    *vit_block_rules(
        "backbone.encoder",
        "pretrained",
        {
            **VIT_PARTS,
            "norm1": "norm1",
            "norm2": "norm2",
            "mlp.fc1": "mlp.fc1",
            "mlp.fc2": "mlp.fc2",
        },
    ),
    rule(
        r"backbone\.encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1",
        r"pretrained.blocks.\1.ls\2.gamma",
    ),
    rule(r"backbone\.layernorm" + P, r"pretrained.norm.\1"),
    rule(r"neck\.reassemble_stage\.layers\.([0-3])\.projection" + P, r"depth_head.projects.\1.\2"),
    rule(r"neck\.reassemble_stage\.layers\.([0-3])\.resize" + P, r"depth_head.resize_layers.\1.\2"),
    *neck_rules("depth_head.scratch."),
    rule(r"head\.conv1" + P, r"depth_head.scratch.output_conv1.\1"),
    rule(r"head\.conv2" + P, r"depth_head.scratch.output_conv2.0.\1"),
    rule(r"head\.conv3" + P, r"depth_head.scratch.output_conv2.2.\1"),
)

# --------------------------------------------------------------------------- config.json

#: Dinov2Config defaults, for the fields a config.json may leave out (the published
#: Depth-Anything-V2-Small-hf config gives only sizes, heads, out indices and patch size).
_DINO_DEFAULTS: dict[str, Any] = {
    "num_hidden_layers": 12,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 224,
    "qkv_bias": True,
    "use_swiglu_ffn": False,
    "apply_layernorm": True,
    "hidden_act": "gelu",
}
#: Depth Anything V2 encoders: (name, token width, heads, blocks).
_DINO_SIZES = {
    384: ("vits", "Small", 6, 12),
    768: ("vitb", "Base", 12, 12),
    1024: ("vitl", "Large", 16, 24),
}
#: Metric Depth Anything V2 types by their maximum depth in metres.
_DAV2_METRIC_SETS = {20.0: "hypersim", 80.0: "vkitti"}


def _out_indices(backbone: Mapping[str, Any]) -> list[int]:
    """Dinov2Config's out_indices (1-based stages), from out_features where only they are given."""
    if backbone.get("out_indices"):
        return [int(i) for i in backbone["out_indices"]]
    return [int(str(f).removeprefix("stage")) for f in backbone.get("out_features") or []]


def identify_config(config: Mapping[str, Any]) -> FolderModel:
    """A DepthAnythingConfig with a DINOv2 backbone: encoder size, relative or metric."""
    # torch on first use: the registry imports this file at start-up
    from dpt_ros.models.network.depth_anything import get_dino_config

    backbone = config.get("backbone_config") or {}
    if backbone.get("model_type") != "dinov2":
        raise unsupported(
            "a Depth Anything model",
            [f"backbone {backbone.get('model_type')!r}, expected a DINOv2 backbone (dinov2)"],
        )
    width = backbone.get("hidden_size", 768)
    if width not in _DINO_SIZES:
        raise unsupported(
            "a Depth Anything model", [f"backbone hidden_size {width}, expected 384, 768 or 1024"]
        )
    encoder, size, heads, blocks = _DINO_SIZES[width]
    kind = config.get("depth_estimation_type", "relative")
    raw_max_depth = config.get("max_depth", 1)
    max_depth = float(raw_max_depth) if isinstance(raw_max_depth, int | float) else float("nan")
    what = f"a Depth Anything V2 {size} {kind} depth model"
    if kind == "metric":
        what += f" with max_depth {json.dumps(raw_max_depth)} m"
    dino = get_dino_config(encoder)
    expected_backbone = {
        "num_attention_heads": heads,
        "num_hidden_layers": blocks,
        **{k: v for k, v in _DINO_DEFAULTS.items() if k != "num_hidden_layers"},
        "image_size": 518,
    }
    problems = [
        f"backbone_config.{p}" for p in differences(backbone, expected_backbone, _DINO_DEFAULTS)
    ]
    wanted_out = [i + 1 for i in dino.layers]
    if _out_indices(backbone) != wanted_out:
        problems.append(
            f"backbone_config.out_indices is {_out_indices(backbone)}, expected {wanted_out}"
        )
    head = {
        "reassemble_hidden_size": width,
        "neck_hidden_sizes": list(dino.channels),
        "fusion_hidden_size": dino.features,
        "head_hidden_size": 32,
        "reassemble_factors": [4, 2, 1, 0.5],
        "patch_size": 14,
        "head_in_index": -1,
    }
    problems += differences(config, head, {"head_in_index": -1, "patch_size": 14})
    if kind not in ("relative", "metric"):
        problems.append(f"depth_estimation_type {kind!r}, expected 'relative' or 'metric'")
    elif kind == "metric" and max_depth not in _DAV2_METRIC_SETS:
        problems.append(
            f"max_depth {json.dumps(raw_max_depth)} m: the metric types are for 20 m (Hypersim) and 80 m (VKITTI)"
        )
    if problems:
        raise unsupported(what, problems)
    if kind == "metric":
        name = f"depth_anything_v2_metric_{_DAV2_METRIC_SETS[max_depth]}_{encoder}"
    else:
        name = f"depth_anything_v2_{encoder}"
    return FolderModel(what, (name,))


# --------------------------------------------------------------------------- family


class DepthAnythingV2Family(ModelFamily):
    """Depth Anything V2: multiples of 14, the shorter side at least the network size,
    outputs resized bilinearly (``align_corners=True``)."""

    name = "depth_anything_v2"
    title = "Depth Anything V2"
    weight_markers = ("pretrained.", "depth_head.")
    size_multiple = 14
    resize_method = "lower_bound"
    output_interpolation = "bilinear"
    transformers_model_type = "depth_anything"
    transformers_rules = DEPTH_ANYTHING_RULES

    def build(self, spec: ModelSpec) -> nn.Module:
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models.network.depth_anything import DepthAnythingV2

        return DepthAnythingV2(spec.backbone, spec.max_depth).eval()

    def identify_transformers_config(self, config: Mapping[str, Any]) -> FolderModel:
        return identify_config(config)

    def transformers_model(self, spec: ModelSpec, size_hw: Sequence[int]) -> nn.Module:
        """DepthAnythingForDepthEstimation with the published configuration of ``spec``
        (Depth-Anything-V2-*-hf), random weights."""
        # optional dependency: transformers
        from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models.network.depth_anything import get_dino_config

        dino = get_dino_config(spec.backbone)
        heads, layers = _DINO_HEADS_LAYERS[spec.backbone]
        backbone = {
            "model_type": "dinov2",
            "hidden_size": dino.embed_dim,
            "num_attention_heads": heads,
            "num_hidden_layers": layers,
            # transformers counts the embeddings as stage 0: block i is stage i + 1.
            "out_indices": [i + 1 for i in dino.layers],
            "patch_size": 14,
            "image_size": 518,
            "layerscale_value": 1.0,
            "reshape_hidden_states": False,
        }
        config = DepthAnythingConfig(
            backbone_config=backbone,
            reassemble_hidden_size=dino.embed_dim,
            neck_hidden_sizes=list(dino.channels),
            fusion_hidden_size=dino.features,
            depth_estimation_type="metric" if spec.is_metric else "relative",
            max_depth=spec.max_depth or 1,
        )
        return DepthAnythingForDepthEstimation(config)

    def transformers_input_hw(self, spec: ModelSpec, input_hw: Sequence[int]) -> tuple[int, int]:
        """transformers' Depth Anything takes any multiple of 14: the camera's input."""
        return int(input_hw[0]), int(input_hw[1])


FAMILY = DepthAnythingV2Family()

# --------------------------------------------------------------------------- types

_SIZES = {"vits": "Small", "vitb": "Base", "vitl": "Large"}
#: The weights' licences: Small is Apache-2.0, Base and Large are non-commercial.
_LICENCES = {"vits": "Apache-2.0", "vitb": "CC-BY-NC-4.0", "vitl": "CC-BY-NC-4.0"}
#: Metric variants: (hub repository part, maximum depth in metres).
_METRIC = {"hypersim": ("Hypersim", 20.0), "vkitti": ("VKITTI", 80.0)}


def _spec(encoder: str, dataset: str = "") -> ModelSpec:
    """A Depth Anything V2 model type: relative, or metric trained on ``dataset``."""
    size = _SIZES[encoder]
    if dataset:
        repo_part, max_depth = _METRIC[dataset]
        name = f"depth_anything_v2_metric_{dataset}_{encoder}"
        repo = f"depth-anything/Depth-Anything-V2-Metric-{repo_part}-{size}"
    else:
        name, max_depth = f"depth_anything_v2_{encoder}", 0.0
        repo = f"depth-anything/Depth-Anything-V2-{size}"
    return ModelSpec(
        name,
        "depth",
        encoder,
        METRIC_DEPTH if dataset else RELATIVE_INVERSE_DEPTH,
        DAV2_INPUT_SIZE,
        DAV2_INPUT_SIZE,
        f"{name}.pth",
        readout="ignore",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        max_depth=max_depth,
        licence=_LICENCES[encoder],
        hub_repo=repo,
        family=FAMILY,
    )


SPECS: tuple[ModelSpec, ...] = tuple(
    _spec(encoder, dataset)
    for dataset in ("", "hypersim", "vkitti")
    for encoder in ("vits", "vitb", "vitl")
)
