"""Weights in transformers' format: a folder written by ``save_pretrained``.

This is how the models are published on the Hugging Face hub as transformers models:
``Intel/dpt-hybrid-midas`` (``dpt_hybrid``), ``Intel/dpt-large`` (``dpt_large``),
``Intel/dpt-large-ade`` (``dpt_large_ade20k``) and
``depth-anything/Depth-Anything-V2-*-hf`` (the Depth Anything V2 types). Such a folder
holds ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``). The weights are read with the ``safetensors``
package only: a pickle file (``pytorch_model.bin``) is refused, never unpickled.

``config.json`` is checked first against the requested model type: a folder of another
model is refused with what it holds (``holds a DPT-Large depth model (like dpt_large),
not dpt_hybrid``). Then every tensor is renamed into the official checkpoints' layout,
strictly: each transformers entry maps to exactly one of ours or is known to be unused
(:data:`UNUSED_ENTRIES`), and each of ours is filled, either from the folder or, for the
entries transformers does not have and inference never uses, explicitly
(:data:`FILLED_ENTRIES`). Notable renamings:

- attention: transformers' separate query/key/value Linear layers are concatenated, in
  that order, into timm's fused ``attn.qkv``;
- fusion: transformers' ``neck.fusion_stage.layers.i`` runs coarse to fine, so it is our
  ``scratch.refinenet{4 - i}``;
- DPT-Hybrid: transformers' BiT backbone (``bit.embedder``, ``bit.encoder.stages.S.layers.L``)
  is timm's ResNetV2 (``stem``, ``stages.S.blocks.L``) with the same inner names;
- DINOv2: ``layer_scaleN.lambda1`` is timm's ``lsN.gamma``;
- heads: ``head.head.*`` / ``auxiliary_head.head.*`` are ``scratch.output_conv.*`` /
  ``auxlayer.*``; Depth Anything's ``head.conv1/2/3`` are ``output_conv1``,
  ``output_conv2.0`` and ``output_conv2.2``.

DPT-Hybrid folders are also accepted for ``dpt_hybrid_kitti`` and ``dpt_hybrid_nyu``
(and a hybrid segmentation folder for ``dpt_hybrid_ade20k``): transformers publishes no
such models, but their layout is the hybrid one, so a folder converted from those
checkpoints loads; its config cannot tell relative from metric weights.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.network.depth_anything import get_dino_config
from dpt_ros.models.registry import DEPTH_ANYTHING_V2, ModelSpec
from dpt_ros.models.weights.layout import expected_layout, summarise_keys
from dpt_ros.models.weights.safetensors_header import header_problem

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
#: Pickle weight files that are recognised, and refused.
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")

#: transformers entries that have no counterpart in the DPT network and are dropped:
#: the ViT pooler (a Linear on the class token for image classification).
UNUSED_ENTRIES = ("dpt.pooler.dense.weight", "dpt.pooler.dense.bias")

#: Our entries that transformers' models do not have, filled with zeros because inference
#: never uses them: timm's ImageNet classifier of the DPT ViT (``pretrained.model.head``),
#: and the segmentation models' training-only auxiliary head (``auxlayer``) when the
#: folder was saved without one (``use_auxiliary_head: false``).
FILLED_ENTRIES = ("pretrained.model.head.", "auxlayer.")

_HELP = (
    "expected a folder written by transformers' save_pretrained (config.json + "
    "model.safetensors), such as a download of Intel/dpt-hybrid-midas, Intel/dpt-large, "
    "Intel/dpt-large-ade or depth-anything/Depth-Anything-V2-*-hf"
)


# --------------------------------------------------------------------------- reading


def read_transformers_folder(folder: Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """Reads a ``save_pretrained`` folder into a state_dict in the official layout of ``spec``.

    Args:
        folder: the folder (config.json + model.safetensors, or sharded safetensors).
        spec: the requested model type.

    Returns:
        A state_dict with exactly the keys of ``spec.build().state_dict()``.

    Raises:
        CheckpointError: no config.json or safetensors weights (pickle files are refused),
            a config of another model (the message says what the folder holds), or
            entries that do not map into the layout.
    """
    folder = Path(folder).expanduser()
    config = read_config(folder)
    check_config(config, spec, folder)
    tensors = read_safetensors(folder)
    _check_dtypes(tensors, folder)
    try:
        return convert_state_dict(tensors, spec, source=str(folder))
    except (RuntimeError, TypeError, ValueError) as exc:  # e.g. q/k/v that do not concatenate
        raise CheckpointError(f"{folder}: the safetensors weights are malformed ({exc})") from None


def _check_dtypes(tensors: Mapping[str, torch.Tensor], folder: Path) -> None:
    """Weights are floating point (num_batches_tracked, an integer counter, aside):
    an int8 or bool tensor is a quantised or broken file, not these models' weights."""
    odd = [
        f"{k} ({str(v.dtype).removeprefix('torch.')})"
        for k, v in tensors.items()
        if not v.is_floating_point() and not k.endswith("num_batches_tracked")
    ]
    if odd:
        raise CheckpointError(
            f"{folder}: {len(odd)} tensors are not floating point, e.g. {odd[0]}: "
            "quantised or damaged weights; save the model again in float32 or float16"
        )


#: Largest config.json or safetensors index read (transformers writes a few kilobytes;
#: an index lists every tensor name: about 100 KB for the largest models here).
MAX_JSON_BYTES = 4 << 20


def _small_json_text(path: Path) -> str:
    """The text of a JSON file of the folder, read only when it is a regular file of at
    most :data:`MAX_JSON_BYTES` (a FIFO would wait for a writer forever, /dev/zero never
    ends, and a file of hundreds of megabytes is no model's config)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} is not a regular file; {_HELP}")
    if info.st_size > MAX_JSON_BYTES:
        raise CheckpointError(
            f"{path} is {info.st_size / 2**20:.0f} MB, more than any model's "
            f"{path.name} ({MAX_JSON_BYTES >> 20} MB at most); {_HELP}"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not readable JSON ({exc}); {_HELP}") from None


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict; CheckpointError if missing, not a regular file
    of at most :data:`MAX_JSON_BYTES`, or not a JSON object."""
    path = folder / CONFIG_FILE
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{folder} has no {CONFIG_FILE}; {_HELP}")
    text = _small_json_text(path)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not readable JSON ({exc}); {_HELP}") from None
    except RecursionError:
        raise CheckpointError(f"{path} is nested too deeply to be a model config") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds {type(config).__name__}, not a JSON object; {_HELP}")
    return config


def _shard_files(folder: Path) -> list[Path]:
    """The safetensors files of the folder: the single file, or the index's shards."""
    single = folder / SAFETENSORS_FILE
    if single.is_file():
        return [single]
    if single.exists() or single.is_symlink():
        raise CheckpointError(f"{single} is not a regular file; {_HELP}")
    index = folder / SAFETENSORS_INDEX
    if index.exists() or index.is_symlink():
        text = _small_json_text(index)
        try:
            weight_map = json.loads(text)["weight_map"]
            names = sorted(set(weight_map.values()))
        except (RecursionError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{index} is not a safetensors index ({exc})") from None
        bad = [n for n in names if not isinstance(n, str) or Path(n).name != n]
        if bad:
            raise CheckpointError(f"{index} names shards outside the folder: {bad[:3]}")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise CheckpointError(f"{folder} lacks shards listed in {SAFETENSORS_INDEX}: {missing}")
        return [folder / n for n in names]
    pickles = [n for n in PICKLE_FILES if (folder / n).exists()]
    if pickles:
        raise CheckpointError(
            f"{folder} holds only pickle weights ({', '.join(pickles)}), which dpt_ros does "
            "not read (unpickling can run code); save the model again with save_pretrained "
            f"(safetensors is its default), or convert the file to {SAFETENSORS_FILE}"
        )
    raise CheckpointError(f"{folder} has no {SAFETENSORS_FILE}; {_HELP}")


def read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of the folder's safetensors file(s), read with ``safetensors`` (no pickle)."""
    # start-up: safetensors loads only for a transformers folder
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in _shard_files(folder):
        problem = header_problem(path)
        if problem:
            raise CheckpointError(f"{path}: {problem}")
        try:
            shard = load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
        tensors.update(shard)
    if not tensors:
        raise CheckpointError(f"{folder}: the safetensors weights hold no tensors")
    return tensors


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class FolderModel:
    """What a transformers config describes, in dpt_ros' terms.

    Attributes:
        description: e.g. ``a DPT-Large depth model``.
        model_types: the dpt_ros types whose layout it has, the closest first.
    """

    description: str
    model_types: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.description} (like {self.model_types[0]})"


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


def _field(config: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> Any:
    """``config[name]`` (``name[2:]`` slices a list), the default where it is absent;
    tuples compare as lists."""
    key, _, sliced = name.partition("[")
    value = config.get(key, defaults.get(key))
    if sliced and isinstance(value, list | tuple):
        value = list(value)[int(sliced.split(":")[0]) :]
    return list(value) if isinstance(value, tuple) else value


def _differences(
    config: Mapping[str, Any], expected: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[str]:
    """``field is X, expected Y`` for every expected field the config does not have."""
    out = []
    for name, want in expected.items():
        got = _field(config, name, defaults)
        if got != want:
            out.append(f"{name} is {json.dumps(got)}, expected {json.dumps(want)}")
    return out


def _unsupported(what: str, problems: list[str]) -> CheckpointError:
    return CheckpointError(
        f"config.json describes {what} that dpt_ros cannot load: " + "; ".join(problems)
    )


def _identify_dpt(config: Mapping[str, Any]) -> FolderModel:
    """A DPTConfig: DPT-Hybrid or DPT-Large, depth or segmentation."""
    archs = config.get("architectures") or []
    task = next((_ARCHITECTURES[a] for a in archs if a in _ARCHITECTURES), None)
    if task is None:
        raise _unsupported(
            f"a DPT model with architectures {archs}",
            [f"expected one of {', '.join(_ARCHITECTURES)}"],
        )
    name = "DPT-Hybrid" if _field(config, "is_hybrid", _DPT_DEFAULTS) else "DPT-Large"
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
    problems = _differences(config, {**_DPT_BACKBONES[name], **common}, _DPT_DEFAULTS)
    if config.get("use_bias_in_fusion_residual") not in (None, task == "depth"):
        problems.append("use_bias_in_fusion_residual does not match the batch norm setting")
    if name == "DPT-Hybrid":
        bit = config.get("backbone_config") or {}
        diffs = _differences(bit, _BIT_EXPECTED, _BIT_DEFAULTS)
        problems += [f"backbone_config.{p}" for p in diffs]
        if str(bit.get("global_padding")).lower() != "same":
            problems.append("backbone_config.global_padding must be 'same'")
    if task == "segmentation" and len(config.get("id2label") or {}) != 150:
        problems.append(f"{len(config.get('id2label') or {})} labels, expected ADE20K's 150")
    if problems:
        raise _unsupported(what, problems)
    return FolderModel(what, _DPT_TYPES[(name, task)])


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


def _identify_depth_anything(config: Mapping[str, Any]) -> FolderModel:
    """A DepthAnythingConfig with a DINOv2 backbone: encoder size, relative or metric."""
    backbone = config.get("backbone_config") or {}
    if backbone.get("model_type") != "dinov2":
        raise _unsupported(
            "a Depth Anything model",
            [f"backbone {backbone.get('model_type')!r}, expected a DINOv2 backbone (dinov2)"],
        )
    width = backbone.get("hidden_size", 768)
    if width not in _DINO_SIZES:
        raise _unsupported(
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
        f"backbone_config.{p}" for p in _differences(backbone, expected_backbone, _DINO_DEFAULTS)
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
    problems += _differences(config, head, {"head_in_index": -1, "patch_size": 14})
    if kind not in ("relative", "metric"):
        problems.append(f"depth_estimation_type {kind!r}, expected 'relative' or 'metric'")
    elif kind == "metric" and max_depth not in _DAV2_METRIC_SETS:
        problems.append(
            f"max_depth {json.dumps(raw_max_depth)} m: the metric types are for 20 m (Hypersim) and 80 m (VKITTI)"
        )
    if problems:
        raise _unsupported(what, problems)
    if kind == "metric":
        name = f"depth_anything_v2_metric_{_DAV2_METRIC_SETS[max_depth]}_{encoder}"
    else:
        name = f"depth_anything_v2_{encoder}"
    return FolderModel(what, (name,))


def identify_folder_model(config: Mapping[str, Any]) -> FolderModel:
    """What a transformers ``config.json`` describes, and which dpt_ros types it fits.

    Raises:
        CheckpointError: a model dpt_ros has no type for (the message names the fields).
    """
    model_type = config.get("model_type")
    if model_type == "dpt":
        return _identify_dpt(config)
    if model_type == "depth_anything":
        return _identify_depth_anything(config)
    raise CheckpointError(
        f"config.json describes a {model_type!r} model; dpt_ros reads transformers folders of "
        "DPT (model_type 'dpt') and Depth Anything V2 ('depth_anything') models"
    )


def check_config(config: Mapping[str, Any], spec: ModelSpec, folder: Path) -> FolderModel:
    """Raises CheckpointError unless ``config`` describes a model with the layout of ``spec``;
    the message says what the folder holds."""
    try:
        held = identify_folder_model(config)
    except CheckpointError as exc:
        raise CheckpointError(f"{folder}: {exc} (requested: {spec.name})") from None
    except (AttributeError, TypeError, ValueError, KeyError, RecursionError) as exc:
        # A field of another JSON type than transformers writes (a list for a dict...).
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: a field has a type transformers does not write "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if spec.name not in held.model_types:
        raise CheckpointError(
            f"{folder} holds {held}, not {spec.name}; use the model type "
            f"{held.model_types[0]} for it, or a folder of a {spec.name} model"
        )
    return held


# --------------------------------------------------------------------------- keys

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_P = r"\.(weight|bias)"
_BN = r"\.(weight|bias|running_mean|running_var|num_batches_tracked)"


def _rule(pattern: str, target: str | Callable[[re.Match[str]], str]) -> Rule:
    """A renaming: a full match of ``pattern`` becomes ``target``, a template with
    ``\\1``-style groups or a function of the match."""
    if isinstance(target, str):
        template = target
        return re.compile(pattern), lambda m: m.expand(template)
    return re.compile(pattern), target


def _refinenet(m: re.Match[str]) -> str:
    """transformers' fusion layer i runs coarse to fine: it is our refinenet{4 - i}."""
    return f"refinenet{4 - int(m[1])}"


def _neck_rules(scratch: str) -> list[Rule]:
    """The decoder both families share: ``neck.convs`` and ``neck.fusion_stage``."""
    fusion = r"neck\.fusion_stage\.layers\.([0-3])\."
    return [
        _rule(
            r"neck\.convs\.([0-3])\.weight", lambda m: f"{scratch}layer{int(m[1]) + 1}_rn.weight"
        ),
        _rule(fusion + "projection" + _P, lambda m: f"{scratch}{_refinenet(m)}.out_conv.{m[2]}"),
        _rule(
            fusion + r"residual_layer([12])\.convolution([12])" + _P,
            lambda m: f"{scratch}{_refinenet(m)}.resConfUnit{m[2]}.conv{m[3]}.{m[4]}",
        ),
        _rule(
            fusion + r"residual_layer([12])\.batch_norm([12])" + _BN,
            lambda m: f"{scratch}{_refinenet(m)}.resConfUnit{m[2]}.bn{m[3]}.{m[4]}",
        ),
    ]


def _vit_block_rules(hf: str, ours: str, parts: Mapping[str, str]) -> list[Rule]:
    """Per-block renamings of a ViT encoder ``{hf}.layer.N.<part>`` -> ``{ours}.blocks.N.<part>``."""
    alternatives = "|".join(re.escape(p) for p in parts)
    return [
        _rule(
            rf"{re.escape(hf)}\.layer\.(\d+)\.({alternatives})" + _P,
            lambda m: f"{ours}.blocks.{m[1]}.{parts[m[2]]}.{m[3]}",
        )
    ]


_VIT_PARTS = {"attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj"}
_RESNET = "pretrained.model.patch_embed.backbone."
_BIT = r"dpt\.embeddings\.backbone\.bit\."
_BIT_INNER = r"(conv[123]\.weight|norm[123]\.(?:weight|bias)|downsample\.conv\.weight|downsample\.norm\.(?:weight|bias))"

DPT_RULES: tuple[Rule, ...] = (
    _rule(r"dpt\.embeddings\.cls_token", "pretrained.model.cls_token"),
    _rule(r"dpt\.embeddings\.position_embeddings", "pretrained.model.pos_embed"),
    _rule(
        r"dpt\.embeddings\.(?:patch_embeddings\.)?projection" + _P,
        r"pretrained.model.patch_embed.proj.\1",
    ),
    _rule(_BIT + r"embedder\.convolution\.weight", _RESNET + "stem.conv.weight"),
    _rule(_BIT + r"embedder\.norm" + _P, _RESNET + r"stem.norm.\1"),
    _rule(
        _BIT + r"encoder\.stages\.(\d)\.layers\.(\d+)\." + _BIT_INNER,
        _RESNET + r"stages.\1.blocks.\2.\3",
    ),
    *_vit_block_rules(
        "dpt.encoder",
        "pretrained.model",
        {
            **_VIT_PARTS,
            "layernorm_before": "norm1",
            "layernorm_after": "norm2",
            "intermediate.dense": "mlp.fc1",
            "output.dense": "mlp.fc2",
        },
    ),
    _rule(r"dpt\.layernorm" + _P, r"pretrained.model.norm.\1"),
    _rule(
        r"neck\.reassemble_stage\.readout_projects\.([0-3])\.0" + _P,
        lambda m: f"pretrained.act_postprocess{int(m[1]) + 1}.0.project.0.{m[2]}",
    ),
    _rule(
        r"neck\.reassemble_stage\.layers\.([0-3])\.(projection|resize)" + _P,
        lambda m: (
            f"pretrained.act_postprocess{int(m[1]) + 1}.{3 if m[2] == 'projection' else 4}.{m[3]}"
        ),
    ),
    *_neck_rules("scratch."),
    _rule(r"head\.head\.(\d)" + _BN, r"scratch.output_conv.\1.\2"),
    _rule(r"auxiliary_head\.head\.(\d)" + _BN, r"auxlayer.\1.\2"),
)

DEPTH_ANYTHING_RULES: tuple[Rule, ...] = (
    _rule(r"backbone\.embeddings\.(cls_token|mask_token)", r"pretrained.\1"),
    _rule(r"backbone\.embeddings\.position_embeddings", "pretrained.pos_embed"),
    _rule(
        r"backbone\.embeddings\.patch_embeddings\.projection" + _P,
        r"pretrained.patch_embed.proj.\1",
    ),
    *_vit_block_rules(
        "backbone.encoder",
        "pretrained",
        {
            **_VIT_PARTS,
            "norm1": "norm1",
            "norm2": "norm2",
            "mlp.fc1": "mlp.fc1",
            "mlp.fc2": "mlp.fc2",
        },
    ),
    _rule(
        r"backbone\.encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1",
        r"pretrained.blocks.\1.ls\2.gamma",
    ),
    _rule(r"backbone\.layernorm" + _P, r"pretrained.norm.\1"),
    _rule(
        r"neck\.reassemble_stage\.layers\.([0-3])\.projection" + _P, r"depth_head.projects.\1.\2"
    ),
    _rule(
        r"neck\.reassemble_stage\.layers\.([0-3])\.resize" + _P, r"depth_head.resize_layers.\1.\2"
    ),
    *_neck_rules("depth_head.scratch."),
    _rule(r"head\.conv1" + _P, r"depth_head.scratch.output_conv1.\1"),
    _rule(r"head\.conv2" + _P, r"depth_head.scratch.output_conv2.0.\1"),
    _rule(r"head\.conv3" + _P, r"depth_head.scratch.output_conv2.2.\1"),
)

#: transformers' separate attention projections, either naming (the files' ``query`` ...,
#: transformers 5's in-memory ``q_proj`` ...): (encoder, block, projection, param).
_QKV = re.compile(
    r"(dpt\.encoder|backbone\.encoder)\.layer\.(\d+)\.attention\."
    r"(?:attention\.(query|key|value)|([qkv])_proj)\.(weight|bias)"
)
_QKV_ENCODERS = {"dpt.encoder": "pretrained.model", "backbone.encoder": "pretrained"}
_QKV_ORDER = {"query": 0, "key": 1, "value": 2, "q": 0, "k": 1, "v": 2}


def _rename(key: str, rules: tuple[Rule, ...]) -> str | None:
    for pattern, target in rules:
        m = pattern.fullmatch(key)
        if m:
            return target(m)
    return None


def _fuse_qkv(parts: Mapping[str, dict[int, torch.Tensor]], source: str) -> dict[str, torch.Tensor]:
    """timm's fused ``attn.qkv`` from query, key and value, concatenated in that order."""
    fused = {}
    for key, slots in parts.items():
        if sorted(slots) != [0, 1, 2]:
            names = [n for n, i in (("query", 0), ("key", 1), ("value", 2)) if i not in slots]
            raise CheckpointError(f"{source} lacks the attention {', '.join(names)} for {key}")
        fused[key] = torch.cat([slots[0], slots[1], slots[2]], dim=0)
    return fused


def _fill(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A value for an entry inference never uses: zeros (batch-norm variances one)."""
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    if key.endswith("running_var"):
        return torch.ones(shape)
    return torch.zeros(shape)


def convert_state_dict(
    tensors: Mapping[str, torch.Tensor], spec: ModelSpec, source: str = "folder"
) -> dict[str, torch.Tensor]:
    """Renames a transformers state_dict into the official layout of ``spec``, strictly.

    Every entry must map to one of ours (or be in :data:`UNUSED_ENTRIES`); ours that
    transformers lacks are filled only where :data:`FILLED_ENTRIES` allows.

    Raises:
        CheckpointError: entries without a place in the layout, or missing entries.
    """
    rules = DEPTH_ANYTHING_RULES if spec.family == DEPTH_ANYTHING_V2 else DPT_RULES
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[int, torch.Tensor]] = {}
    unmapped = []
    for key, value in tensors.items():
        m = _QKV.fullmatch(key)
        if m:
            target = f"{_QKV_ENCODERS[m[1]]}.blocks.{m[2]}.attn.qkv.{m[5]}"
            qkv.setdefault(target, {})[_QKV_ORDER[m[3] or m[4]]] = value
            continue
        name = _rename(key, rules)
        if name is None:
            if key not in UNUSED_ENTRIES:
                unmapped.append(key)
        elif name in out:
            raise CheckpointError(f"{source}: two entries map to {name} (one is {key})")
        else:
            out[name] = value
    if unmapped:
        raise CheckpointError(
            f"{source}: {len(unmapped)} entries have no place in the {spec.name} layout: "
            f"{summarise_keys(unmapped)}"
        )
    out.update(_fuse_qkv(qkv, source))
    expected = dict(expected_layout(spec.name))
    missing = [k for k in expected if k not in out]
    unfillable = [k for k in missing if not k.startswith(FILLED_ENTRIES)]
    if unfillable:
        raise CheckpointError(
            f"{source} lacks {len(unfillable)} entries of the {spec.name} layout: "
            f"{summarise_keys(unfillable)}"
        )
    out.update({k: _fill(k, expected[k]) for k in missing})
    return out
