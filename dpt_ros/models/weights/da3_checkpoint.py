"""Depth Anything 3 weight files: the hub's key prefix, strict layout checks, and naming
the type a wrong file looks like.

The official files (``depth-anything/DA3-*`` on the Hugging Face hub, ``model.safetensors``)
hold the network's state_dict with every key prefixed by ``model.`` (the hub wrapper keeps
the network as ``model``); :func:`strip_hub_prefix` removes it. Layouts are compared by
name and shape against the network built on the meta device, so no weights are made.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import torch

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.network.depth_anything3 import DA3_CONFIGS, DepthAnything3
from dpt_ros.models.registry import MODEL_SPECS
from dpt_ros.models.weights.layout import dtype_problem, expected_layout, layout_differences

#: The prefix of every key in the hub's ``model.safetensors``.
HUB_PREFIX = "model."


def strip_hub_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict without the hub's ``model.`` prefix (where every key has it)."""
    if state_dict and all(k.startswith(HUB_PREFIX) for k in state_dict):
        return {k[len(HUB_PREFIX) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


#: The first name parts of a bare (prefix-less) Depth Anything 3 state_dict.
_BARE_PARTS = ("backbone", "head", "cam_enc", "cam_dec")
#: DINOv2-G's token width: the any-view giant type (DA3-GIANT), not supported here.
_GIANT_WIDTH = 1536


def with_hub_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict with the hub's ``model.`` prefix where it is a bare Depth Anything 3
    one (every key under ``backbone``, ``head``, ``cam_enc`` or ``cam_dec``, as
    ``DepthAnything3.state_dict()`` gives); any other state_dict as it is."""
    state = dict(state_dict)
    if (
        state
        and any(k.startswith("backbone.pretrained.") for k in state)
        and all(k.split(".", 1)[0] in _BARE_PARTS for k in state)
    ):
        return {HUB_PREFIX + k: v for k, v in state.items()}
    return state


def unsupported_kind(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """What an official Depth Anything 3 file that dpt_ros does not run is, or None:
    the nested any-view + metric pair (DA3NESTED-GIANT-LARGE: its networks under
    ``da3.`` and ``da3_metric.``) or the giant any-view type (DA3-GIANT: 1536 wide)."""
    keys = [k[len(HUB_PREFIX) :] if k.startswith(HUB_PREFIX) else k for k in shapes]
    if (
        keys
        and any(k.startswith("da3.") for k in keys)
        and any(k.startswith("da3_metric.") for k in keys)
    ):
        return "Depth Anything 3 nested (DA3NESTED-GIANT-LARGE)"
    for key, shape in shapes.items():
        if key.endswith("backbone.pretrained.cls_token") and tuple(shape)[-1:] == (_GIANT_WIDTH,):
            return "Depth Anything 3 giant (DA3-GIANT)"
    return None


@cache
def da3_layout(model_type: str) -> frozenset[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every state_dict entry of a Depth Anything 3 type (meta device)."""
    with torch.device("meta"):
        model = DepthAnything3(model_type)
    return frozenset((k, tuple(v.shape)) for k, v in model.state_dict().items())


def _other_families(layout: frozenset[tuple[str, tuple[int, ...]]]) -> list[str]:
    """DPT and Depth Anything V2 types with this layout (the package's registry)."""
    return [name for name in MODEL_SPECS if frozenset(expected_layout(name)) == layout]


def identify(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Model types whose layout equals ``shapes`` ({key: shape}, hub prefix allowed):
    Depth Anything 3 types first, then DPT and Depth Anything V2 ones. Types sharing a
    layout are all named (``depth_anything_3_mono_large`` and
    ``depth_anything_3_metric_large`` differ only in their weights)."""
    if shapes and all(k.startswith(HUB_PREFIX) for k in shapes):
        shapes = {k[len(HUB_PREFIX) :]: v for k, v in shapes.items()}
    layout = frozenset((k, tuple(int(d) for d in v)) for k, v in shapes.items())
    found = [name for name in DA3_CONFIGS if da3_layout(name) == layout]
    return found or _other_families(layout)


def check_da3_state_dict(
    state_dict: Mapping[str, torch.Tensor], model_type: str, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """The state_dict, hub prefix stripped, if it has exactly ``model_type``'s layout.

    Raises:
        CheckpointError: another layout; the message names the type it looks like, or
            counts the missing, unexpected and mis-shaped keys.
    """
    state = strip_hub_prefix(state_dict)
    expected = dict(da3_layout(model_type))
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got == expected:
        return state
    like = identify(got)
    if like:
        raise CheckpointError(
            f"{source} is a {' / '.join(like)} checkpoint, not {model_type}; "
            f"use --model-type {like[0]} (or the matching parameter), or the right file"
        )
    raise CheckpointError(
        f"{source} does not match the {model_type} layout ({layout_differences(expected, got)})"
    )


def load_da3(
    model_type: str, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> DepthAnything3:
    """A Depth Anything 3 network in eval mode with ``state_dict`` loaded strictly."""
    state = check_da3_state_dict(state_dict, model_type, source)
    model = DepthAnything3(model_type)
    problem = dtype_problem(state, model.state_dict())
    if problem:
        raise CheckpointError(f"{source}: {problem}")
    model.load_state_dict(state, strict=True)
    return model.eval()
