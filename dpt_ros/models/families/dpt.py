"""DPT (Ranftl et al., 2021): the six official types, depth and ADE20K segmentation, on
the ViT-L/16 and ViT-B + ResNet-50 hybrid backbones.

The network is :mod:`dpt_ros.models.network.dpt` (timm ViT walked block by block, the
reassemble and fusion blocks, the heads). Images are sized as little as possible to
multiples of 32 around the network size, normalised to [-1, 1], and outputs resized
back bicubically, as the original does. Weights: the release files (their sha256 prefix
in the name), or transformers' ``DPTForDepthEstimation`` / ``DPTForSemanticSegmentation``
folders renamed by :data:`DPT_RULES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dpt_ros.models.family import (
    LABELS,
    METRIC_DEPTH,
    RELATIVE_INVERSE_DEPTH,
    ModelFamily,
    ModelSpec,
)
from dpt_ros.models.weights.key_rules import (
    BN,
    VIT_PARTS,
    FolderModel,
    P,
    Rule,
    config_field,
    differences,
    neck_rules,
    rule,
    unsupported,
    vit_block_rules,
)

if TYPE_CHECKING:  # annotations only: the registry imports this file without torch
    from torch import nn

# --------------------------------------------------------------------------- keys

_RESNET = "pretrained.model.patch_embed.backbone."
_BIT = r"dpt\.embeddings\.backbone\.bit\."
_BIT_INNER = r"(conv[123]\.weight|norm[123]\.(?:weight|bias)|downsample\.conv\.weight|downsample\.norm\.(?:weight|bias))"

#: transformers' DPT keys -> the release files' (DPT-Hybrid's BiT is timm's ResNetV2
#: with the same inner names; fusion layer i is our refinenet{4 - i}).
DPT_RULES: tuple[Rule, ...] = (
    rule(r"dpt\.embeddings\.cls_token", "pretrained.model.cls_token"),
    rule(r"dpt\.embeddings\.position_embeddings", "pretrained.model.pos_embed"),
    rule(
        r"dpt\.embeddings\.(?:patch_embeddings\.)?projection" + P,
        r"pretrained.model.patch_embed.proj.\1",
    ),
    rule(_BIT + r"embedder\.convolution\.weight", _RESNET + "stem.conv.weight"),
    rule(_BIT + r"embedder\.norm" + P, _RESNET + r"stem.norm.\1"),
    rule(
        _BIT + r"encoder\.stages\.(\d)\.layers\.(\d+)\." + _BIT_INNER,
        _RESNET + r"stages.\1.blocks.\2.\3",
    ),
    *vit_block_rules(
        "dpt.encoder",
        "pretrained.model",
        {
            **VIT_PARTS,
            "layernorm_before": "norm1",
            "layernorm_after": "norm2",
            "intermediate.dense": "mlp.fc1",
            "output.dense": "mlp.fc2",
        },
    ),
    rule(r"dpt\.layernorm" + P, r"pretrained.model.norm.\1"),
    rule(
        r"neck\.reassemble_stage\.readout_projects\.([0-3])\.0" + P,
        lambda m: f"pretrained.act_postprocess{int(m[1]) + 1}.0.project.0.{m[2]}",
    ),
    rule(
        r"neck\.reassemble_stage\.layers\.([0-3])\.(projection|resize)" + P,
        lambda m: (
            f"pretrained.act_postprocess{int(m[1]) + 1}.{3 if m[2] == 'projection' else 4}.{m[3]}"
        ),
    ),
    *neck_rules("scratch."),
    rule(r"head\.head\.(\d)" + BN, r"scratch.output_conv.\1.\2"),
    rule(r"auxiliary_head\.head\.(\d)" + BN, r"auxlayer.\1.\2"),
)

# --------------------------------------------------------------------------- config.json

#: DPTConfig defaults, for the fields a config.json may leave out.
_DPT_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "image_size": 384,
    "patch_size": 16,
    "qkv_bias": True,
    "is_hybrid": False,
    "backbone_config": None,
    "backbone_out_indices": [2, 5, 8, 11],
    "readout_type": "project",
    "reassemble_factors": [4, 2, 1, 0.5],
    "neck_hidden_sizes": [96, 192, 384, 768],
    "fusion_hidden_size": 256,
    "head_in_index": -1,
    "use_batch_norm_in_fusion_residual": False,
    "use_bias_in_fusion_residual": None,
    "add_projection": False,
}
#: The two DPT backbones transformers publishes, as the official checkpoints have them.
#: For the hybrid only the last two out indices / factors matter (the first two maps are
#: ResNet stages).
_DPT_BACKBONES: dict[str, dict[str, Any]] = {
    "DPT-Hybrid": {
        "is_hybrid": True,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "backbone_out_indices[2:]": [8, 11],
        "reassemble_factors[2:]": [1, 0.5],
        "neck_hidden_sizes": [256, 512, 768, 768],
    },
    "DPT-Large": {
        "is_hybrid": False,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "backbone_out_indices": [5, 11, 17, 23],
        "reassemble_factors": [4, 2, 1, 0.5],
        "neck_hidden_sizes": [256, 512, 1024, 1024],
        "backbone_config": None,
    },
}
#: BitConfig defaults (DPTConfig makes a hybrid's backbone a BiT where the type is not
#: given), and the ResNet-50 (v2, 3+4+9 blocks, "same" padding) of the hybrid.
_BIT_DEFAULTS: dict[str, Any] = {
    "model_type": "bit",
    "layer_type": "preactivation",
    "depths": [3, 4, 6, 3],
    "hidden_sizes": [256, 512, 1024, 2048],
    "embedding_size": 64,
    "num_groups": 32,
    "width_factor": 1,
}
_BIT_EXPECTED: dict[str, Any] = {
    "model_type": "bit",
    "layer_type": "bottleneck",
    "depths": [3, 4, 9],
    "hidden_sizes": [256, 512, 1024, 2048],
    "embedding_size": 64,
    "num_groups": 32,
    "width_factor": 1,
}
_DPT_TYPES = {
    ("DPT-Hybrid", "depth"): ("dpt_hybrid", "dpt_hybrid_kitti", "dpt_hybrid_nyu"),
    ("DPT-Hybrid", "segmentation"): ("dpt_hybrid_ade20k",),
    ("DPT-Large", "depth"): ("dpt_large",),
    ("DPT-Large", "segmentation"): ("dpt_large_ade20k",),
}
_ARCHITECTURES = {
    "DPTForDepthEstimation": "depth",
    "DPTForSemanticSegmentation": "segmentation",
}


def identify_config(config: Mapping[str, Any]) -> FolderModel:
    """A DPTConfig: DPT-Hybrid or DPT-Large, depth or segmentation."""
    archs = config.get("architectures") or []
    task = next((_ARCHITECTURES[a] for a in archs if a in _ARCHITECTURES), None)
    if task is None:
        raise unsupported(
            f"a DPT model with architectures {archs}",
            [f"expected one of {', '.join(_ARCHITECTURES)}"],
        )
    name = "DPT-Hybrid" if config_field(config, "is_hybrid", _DPT_DEFAULTS) else "DPT-Large"
    what = f"a {name} {task} model"
    common = {
        "readout_type": "project",
        "fusion_hidden_size": 256,
        "patch_size": 16,
        "image_size": 384,
        "head_in_index": -1,
        "add_projection": False,
        "qkv_bias": True,
        "hidden_act": "gelu",
        "use_batch_norm_in_fusion_residual": task == "segmentation",
    }
    problems = differences(config, {**_DPT_BACKBONES[name], **common}, _DPT_DEFAULTS)
    if config.get("use_bias_in_fusion_residual") not in (None, task == "depth"):
        problems.append("use_bias_in_fusion_residual does not match the batch norm setting")
    if name == "DPT-Hybrid":
        bit = config.get("backbone_config") or {}
        diffs = differences(bit, _BIT_EXPECTED, _BIT_DEFAULTS)
        problems += [f"backbone_config.{p}" for p in diffs]
        if str(bit.get("global_padding")).lower() != "same":
            problems.append("backbone_config.global_padding must be 'same'")
    if task == "segmentation" and len(config.get("id2label") or {}) != 150:
        problems.append(f"{len(config.get('id2label') or {})} labels, expected ADE20K's 150")
    if problems:
        raise unsupported(what, problems)
    return FolderModel(what, _DPT_TYPES[(name, task)])


# --------------------------------------------------------------------------- family


class DptFamily(ModelFamily):
    """DPT: multiples of 32 (the coarsest map is 1/32), the image scaled as little as
    possible, outputs resized bicubically."""

    name = "dpt"
    title = "DPT"
    weight_markers = ("pretrained.", "scratch.")
    size_multiple = 32
    resize_method = "minimal"
    output_interpolation = "bicubic"
    transformers_model_type = "dpt"
    transformers_rules = DPT_RULES

    def hash_prefix(self, spec: ModelSpec) -> str | None:
        """The release files carry their sha256's first digits (torch.hub's convention)."""
        return spec.file_name.rsplit("-", 1)[-1].split(".")[0]

    def build(self, spec: ModelSpec) -> nn.Module:
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models.network.dpt import DPTDepthModel, DPTSegmentationModel

        if spec.is_depth:
            return DPTDepthModel(
                backbone=spec.backbone,
                readout=spec.readout,
                non_negative=True,
                invert=spec.invert,
                scale=spec.scale,
                shift=spec.shift,
            ).eval()
        return DPTSegmentationModel(
            spec.num_classes, backbone=spec.backbone, readout=spec.readout
        ).eval()

    def identify_transformers_config(self, config: Mapping[str, Any]) -> FolderModel:
        return identify_config(config)

    def transformers_model(self, spec: ModelSpec, size_hw: Sequence[int]) -> nn.Module:
        from transformers import DPTConfig, DPTForDepthEstimation  # optional dependency

        if spec.backbone == "vitl16_384":
            config = DPTConfig(
                hidden_size=1024,
                num_hidden_layers=24,
                num_attention_heads=16,
                intermediate_size=4096,
                backbone_out_indices=[5, 11, 17, 23],
                neck_hidden_sizes=[256, 512, 1024, 1024],
                image_size=size_hw[0],
            )
        elif spec.backbone == "vitb_rn50_384":
            config = DPTConfig(
                is_hybrid=True,
                backbone_out_indices=[2, 5, 8, 11],
                neck_hidden_sizes=[256, 512, 768, 768],
                image_size=size_hw[0],
                embedding_type="vit-hybrid",
                readout_type="project",
            )
        else:
            raise ValueError(f"no transformers configuration for backbone {spec.backbone}")
        return DPTForDepthEstimation(config)

    def transformers_input_hw(self, spec: ModelSpec, input_hw: Sequence[int]) -> tuple[int, int]:
        """The square network size: transformers' hybrid embedding accepts no other."""
        return spec.net_height, spec.net_height


FAMILY = DptFamily()

# --------------------------------------------------------------------------- types

SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "dpt_hybrid",
        "depth",
        "vitb_rn50_384",
        RELATIVE_INVERSE_DEPTH,
        384,
        384,
        "dpt_hybrid-midas-501f0c75.pt",
        family=FAMILY,
    ),
    ModelSpec(
        "dpt_large",
        "depth",
        "vitl16_384",
        RELATIVE_INVERSE_DEPTH,
        384,
        384,
        "dpt_large-midas-2f21e586.pt",
        family=FAMILY,
    ),
    ModelSpec(
        "dpt_hybrid_kitti",
        "depth",
        "vitb_rn50_384",
        METRIC_DEPTH,
        1216,
        352,
        "dpt_hybrid_kitti-cb926ef4.pt",
        invert=True,
        scale=0.00006016,
        shift=0.00579,
        family=FAMILY,
    ),
    ModelSpec(
        "dpt_hybrid_nyu",
        "depth",
        "vitb_rn50_384",
        METRIC_DEPTH,
        640,
        480,
        "dpt_hybrid_nyu-2ce69ec7.pt",
        invert=True,
        scale=0.000305,
        shift=0.1378,
        family=FAMILY,
    ),
    ModelSpec(
        "dpt_hybrid_ade20k",
        "segmentation",
        "vitb_rn50_384",
        LABELS,
        480,
        480,
        "dpt_hybrid-ade20k-53898607.pt",
        num_classes=150,
        family=FAMILY,
    ),
    ModelSpec(
        "dpt_large_ade20k",
        "segmentation",
        "vitl16_384",
        LABELS,
        480,
        480,
        "dpt_large-ade20k-b12dca68.pt",
        num_classes=150,
        family=FAMILY,
    ),
)
