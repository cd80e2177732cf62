"""The means of describing a transformers model in dpt_ros' terms: key renaming rules
and config.json checks, which each model family fills with its own (the families'
``transformers_rules`` and ``identify_transformers_config``). No torch, no registry:
the families import this at start-up; :mod:`dpt_ros.models.weights.transformers_format`
applies the rules."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dpt_ros.models.errors import CheckpointError

#: A renaming: a key fully matching the pattern becomes the function of the match.
Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

#: The parameter suffixes of a layer, and of a batch norm (its running statistics too).
P = r"\.(weight|bias)"
BN = r"\.(weight|bias|running_mean|running_var|num_batches_tracked)"


def rule(pattern: str, target: str | Callable[[re.Match[str]], str]) -> Rule:
    """A renaming: a full match of ``pattern`` becomes ``target``, a template with
    ``\\1``-style groups or a function of the match."""
    if isinstance(target, str):
        template = target
        return re.compile(pattern), lambda m: m.expand(template)
    return re.compile(pattern), target


def _refinenet(m: re.Match[str]) -> str:
    """transformers' fusion layer i runs coarse to fine: it is our refinenet{4 - i}."""
    return f"refinenet{4 - int(m[1])}"


def neck_rules(scratch: str) -> list[Rule]:
    """The DPT decoder that the families share: ``neck.convs`` and ``neck.fusion_stage``."""
    fusion = r"neck\.fusion_stage\.layers\.([0-3])\."
    return [
        rule(r"neck\.convs\.([0-3])\.weight", lambda m: f"{scratch}layer{int(m[1]) + 1}_rn.weight"),
        rule(fusion + "projection" + P, lambda m: f"{scratch}{_refinenet(m)}.out_conv.{m[2]}"),
        rule(
            fusion + r"residual_layer([12])\.convolution([12])" + P,
            lambda m: f"{scratch}{_refinenet(m)}.resConfUnit{m[2]}.conv{m[3]}.{m[4]}",
        ),
        rule(
            fusion + r"residual_layer([12])\.batch_norm([12])" + BN,
            lambda m: f"{scratch}{_refinenet(m)}.resConfUnit{m[2]}.bn{m[3]}.{m[4]}",
        ),
    ]


def vit_block_rules(hf: str, ours: str, parts: Mapping[str, str]) -> list[Rule]:
    """Per-block renamings of a ViT encoder ``{hf}.layer.N.<part>`` -> ``{ours}.blocks.N.<part>``."""
    alternatives = "|".join(re.escape(p) for p in parts)
    return [
        rule(
            rf"{re.escape(hf)}\.layer\.(\d+)\.({alternatives})" + P,
            lambda m: f"{ours}.blocks.{m[1]}.{parts[m[2]]}.{m[3]}",
        )
    ]


#: The attention output projection under either of transformers' namings.
VIT_PARTS = {"attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj"}


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


def config_field(config: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> Any:
    """``config[name]`` (``name[2:]`` slices a list), the default where it is absent;
    tuples compare as lists."""
    key, _, sliced = name.partition("[")
    value = config.get(key, defaults.get(key))
    if sliced and isinstance(value, list | tuple):
        value = list(value)[int(sliced.split(":")[0]) :]
    return list(value) if isinstance(value, tuple) else value


def differences(
    config: Mapping[str, Any], expected: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[str]:
    """``field is X, expected Y`` for every expected field the config does not have."""
    out = []
    for name, want in expected.items():
        got = config_field(config, name, defaults)
        if got != want:
            out.append(f"{name} is {json.dumps(got)}, expected {json.dumps(want)}")
    return out


def unsupported(what: str, problems: list[str]) -> CheckpointError:
    """The error for a config describing ``what``, with each of its ``problems``."""
    return CheckpointError(
        f"config.json describes {what} that dpt_ros cannot load: " + "; ".join(problems)
    )
