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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dpt_ros._exports import forward
from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.registry import FAMILIES, ModelSpec
from dpt_ros.models.weights.key_rules import FolderModel, Rule
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


def identify_folder_model(config: Mapping[str, Any]) -> FolderModel:
    """What a transformers ``config.json`` describes, and which dpt_ros types it fits.

    Raises:
        CheckpointError: a model dpt_ros has no type for (the message names the fields).
    """
    model_type = config.get("model_type")
    readable = [f for f in FAMILIES if f.transformers_model_type]
    for family in readable:
        if model_type == family.transformers_model_type:
            return family.identify_transformers_config(config)
    kinds = [f"{f.title} ('{f.transformers_model_type}')" for f in readable]
    kinds[0] = kinds[0].replace(" ('", " (model_type '", 1)
    raise CheckpointError(
        f"config.json describes a {model_type!r} model; dpt_ros reads transformers folders of "
        f"{', '.join(kinds[:-1])} and {kinds[-1]} models"
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
    rules = spec.family.transformers_rules
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


#: Moved to their families' modules (importable from here, with a warning, until the
#: release after next).
__getattr__ = forward(
    __name__,
    {
        "DPT_RULES": "dpt_ros.models.families.dpt",
        "DEPTH_ANYTHING_RULES": "dpt_ros.models.families.depth_anything_v2",
    },
)
