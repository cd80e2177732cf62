"""The official key layouts of the networks' state_dicts, shared by the checkpoint
loader, the transformers-format converter and the weights' verification."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache

import torch

from dpt_ros.models.network.build import build_network
from dpt_ros.models.registry import MODEL_SPECS, get_spec


@cache
def expected_layout(model_type: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(key, shape) of every state_dict entry of ``model_type``; built on the meta device."""
    with torch.device("meta"):
        model = build_network(get_spec(model_type))
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def identify_model_types(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Model types whose key layout (names and shapes) equals the state_dict's.

    Several types share one layout (``dpt_hybrid``, ``dpt_hybrid_kitti`` and
    ``dpt_hybrid_nyu``); they differ only in their weights.
    """
    layout = {(k, tuple(v.shape)) for k, v in state_dict.items()}
    return [name for name in MODEL_SPECS if set(expected_layout(name)) == layout]


def summarise_keys(keys: Iterable[str], limit: int = 6) -> str:
    """The key groups (first three name parts) of ``keys``, largest first, for messages."""
    groups = Counter(".".join(k.split(".")[:3]) for k in keys)
    parts = [f"{g}.* ({n})" if n > 1 else g for g, n in groups.most_common(limit)]
    if len(groups) > limit:
        parts.append(f"... {len(groups) - limit} more groups")
    return ", ".join(parts)


def layout_differences(
    expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]]
) -> str:
    """How a state_dict's key shapes ``got`` differ from a layout's ``expected``, for a
    message: the missing, unexpected and mis-shaped keys counted and summarised by group
    ('' when they are equal)."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    mis_shaped = [k for k in expected if k in got and tuple(got[k]) != tuple(expected[k])]
    details = []
    if missing:
        details.append(f"{len(missing)} missing keys: {summarise_keys(missing)}")
    if unexpected:
        details.append(f"{len(unexpected)} unexpected keys: {summarise_keys(unexpected)}")
    if mis_shaped:
        k = mis_shaped[0]
        details.append(
            f"{len(mis_shaped)} keys with other shapes, e.g. {k}: file "
            f"{list(got[k])} vs model {list(expected[k])}"
        )
    return "; ".join(details)


def dtype_problem(
    state_dict: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]
) -> str | None:
    """Why ``state_dict``'s tensors cannot be loaded into a network whose own state_dict
    is ``reference`` (same keys), or None.

    A weight or floating buffer of the network must be floating point in the file (any
    width: float16, bfloat16, float32 and float64 are converted on loading); an integer
    buffer of the network (BatchNorm's ``num_batches_tracked``, int64 in the official
    files) must be an integer. An int8, uint8 or bool weight is a quantised or damaged
    file, and a complex one loads but fails at inference.
    """
    odd = []
    for key, expected in reference.items():
        got = state_dict[key].dtype
        if expected.is_floating_point():
            fits, wanted = got.is_floating_point, "floating point (float32, float16 or bfloat16)"
        else:
            fits = not (got.is_floating_point or got.is_complex or got == torch.bool)
            wanted = f"an integer ({str(expected.dtype).removeprefix('torch.')})"
        if not fits:
            odd.append((key, str(got).removeprefix("torch."), wanted))
    if not odd:
        return None
    first, found, wanted = odd[0]
    others = f" ({len(odd) - 1} more tensors like it)" if len(odd) > 1 else ""
    return (
        f"tensor {first} is {found}, expected {wanted}{others}: quantised or damaged weights; "
        "use the official file or save the model again in float32 or float16"
    )
