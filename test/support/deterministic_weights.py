"""Deterministic checkpoint-shaped weights, derived from the key names alone.

The goldens in ``test/fixtures`` were computed by the original implementations with
weights made by these rules (documented in the shared fixtures' README), so a file
written from them reproduces the goldens without the official checkpoints:

- Each floating-point tensor draws standard normal float64 samples from a
  ``torch.Generator`` seeded with the first 8 bytes of ``sha256(key)`` read as a
  little-endian integer (top bit cleared), then one rule by the tensor's kind maps them
  to a scale that keeps a deep random network's activations finite; the result is cast
  to the stored dtype.
- Integer tensors and ``num_batches_tracked`` are zeros.

``test_fixtures.py`` checks that these tensors are bit-identical to the shared
fixtures' own generator where ``../shared`` is present.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

#: One entry of a key layout: [key, shape, dtype name].
LayoutEntry = tuple[str, Sequence[int], str]

#: Leaf names of the ViT's learned tokens and position embeddings.
_TOKENS = frozenset({"cls_token", "pos_embed", "dist_token", "reg_token", "mask_token"})
#: Depth Anything V2's last convolution feeds a ReLU; its bias keeps most pixels positive.
_DAV2_LAST_BIAS = "depth_head.scratch.output_conv2.2.bias"
#: Depth Anything 3's camera decoder: its field of view passes a ReLU, so the bias is
#: kept near 1 (a zero field of view would make fx infinite).
_DA3_FOV_BIAS = "cam_dec.fc_fov.0.bias"
#: VGGT's camera head adds its pose delta four times; the last two entries, the field of
#: view, pass a ReLU: their bias is raised by 0.25 (about 1 rad in all) and their weight
#: rows shrunk by 100, so the field of view stays well inside (0, pi).
_VGGT_POSE = "camera_head.pose_branch.fc2"


def _vggt_pose_bias(z: torch.Tensor) -> torch.Tensor:
    x = 0.02 * z
    x[-2:] += 0.25
    return x


def _vggt_pose_weight(fan_in: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def rule(z: torch.Tensor) -> torch.Tensor:
        x = z / math.sqrt(fan_in)
        x[-2:] *= 0.01
        return x

    return rule


def key_seed(key: str) -> int:
    """The generator seed of ``key``: sha256's first 8 bytes, little-endian, 63 bits."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], byteorder="little") & ((1 << 63) - 1)


def _scale_rule(key: str, shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map from standard normal samples z to the tensor's values, by tensor kind."""
    leaf = key.rpartition(".")[2]
    if leaf == "running_var":
        return lambda z: 1.0 + 0.1 * z.abs()
    if leaf == "running_mean":
        return lambda z: 0.1 * z
    if leaf in _TOKENS:
        return lambda z: 0.02 * z
    if leaf == "gamma":  # LayerScale
        return lambda z: 0.1 + 0.05 * z
    if key.endswith(_DA3_FOV_BIAS):
        return lambda z: 1.0 + 0.02 * z
    if key.endswith(_VGGT_POSE + ".bias"):
        return _vggt_pose_bias
    if key.endswith(_VGGT_POSE + ".weight"):
        return _vggt_pose_weight(math.prod(shape[1:]))
    if key.endswith(_DAV2_LAST_BIAS):
        return lambda z: 2.5 + 0.02 * z
    if len(shape) <= 1:  # norm scales around 1, biases small
        return (lambda z: 1.0 + 0.1 * z) if leaf == "weight" else (lambda z: 0.02 * z)
    fan_in = math.prod(shape[1:])
    return lambda z: z / math.sqrt(fan_in)


def deterministic_tensor(key: str, shape: Sequence[int], dtype: str = "float32") -> torch.Tensor:
    """The tensor stored under ``key``.

    Args:
        key: state_dict key, e.g. ``pretrained.model.blocks.0.attn.qkv.weight``.
        shape: its shape.
        dtype: torch dtype name (``float32``, ``int64`` ...).
    """
    size = tuple(int(d) for d in shape)
    torch_dtype = getattr(torch, dtype)
    if not torch_dtype.is_floating_point or key.endswith("num_batches_tracked"):
        return torch.zeros(size, dtype=torch_dtype)
    generator = torch.Generator().manual_seed(key_seed(key))
    z = torch.randn(size, generator=generator, dtype=torch.float64)
    return _scale_rule(key, size)(z).to(torch_dtype)


def deterministic_state_dict(layout: Sequence[LayoutEntry]) -> dict[str, torch.Tensor]:
    """A full state_dict for ``layout`` ([[key, shape, dtype], ...])."""
    return {key: deterministic_tensor(key, shape, dtype) for key, shape, dtype in layout}


def read_layout(path: str | Path) -> list[LayoutEntry]:
    """The ``keys`` list of a ``keys_<model>.json`` layout file."""
    with open(path, encoding="utf-8") as f:
        return [(k, tuple(s), d) for k, s, d in json.load(f)["keys"]]
