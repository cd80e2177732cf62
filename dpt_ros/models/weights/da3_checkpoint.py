"""Depth Anything 3 weight files checked on their own: each type's key layout, the type
a file looks like, and a bare network loaded from a state_dict (tests and tools; the
loader, :func:`dpt_ros.models.weights.checkpoint.load_model`, checks every family's
files alike).

The hub's key prefix and the kinds of file dpt_ros does not run are the family's:
:mod:`dpt_ros.models.families.depth_anything_3` (``HUB_PREFIX``, ``strip_hub_prefix``,
``with_hub_prefix`` and ``unsupported_kind`` import from here with a warning until the
release after next). Layouts are compared by name and shape against the network built
on the meta device, so no weights are made.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import torch

from dpt_ros._exports import forward
from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.families import depth_anything_3 as _family
from dpt_ros.models.network.depth_anything3 import DA3_CONFIGS, DepthAnything3
from dpt_ros.models.registry import MODEL_SPECS
from dpt_ros.models.weights.layout import dtype_problem, expected_layout, layout_differences


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
    shapes = _family.strip_hub_prefix(shapes)
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
    state = _family.strip_hub_prefix(state_dict)
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


__getattr__ = forward(
    __name__,
    {
        name: "dpt_ros.models.families.depth_anything_3"
        for name in ("HUB_PREFIX", "strip_hub_prefix", "with_hub_prefix", "unsupported_kind")
    },
)
