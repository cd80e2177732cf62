"""A model type's network, from its registry entry (its family builds it)."""

from __future__ import annotations

from torch import nn

from dpt_ros.models.family import ModelSpec


def build_network(spec: ModelSpec) -> nn.Module:
    """Creates ``spec``'s network (random initial weights) in eval mode."""
    return spec.family.build(spec)
