"""A model type's network, from its registry entry."""

from __future__ import annotations

from torch import nn

from dpt_ros.models.network.depth_anything import DepthAnythingV2
from dpt_ros.models.network.depth_anything3 import DepthAnything3Stacked
from dpt_ros.models.network.dpt import DPTDepthModel, DPTSegmentationModel
from dpt_ros.models.registry import DEPTH_ANYTHING_3, DEPTH_ANYTHING_V2, ModelSpec


def build_network(spec: ModelSpec) -> nn.Module:
    """Creates ``spec``'s network (random initial weights) in eval mode."""
    if spec.family == DEPTH_ANYTHING_3:
        # (B, 2, h, w): depth and the second output; keys as in the hub's file.
        return DepthAnything3Stacked(spec.name).eval()
    if spec.family == DEPTH_ANYTHING_V2:
        return DepthAnythingV2(spec.backbone, spec.max_depth).eval()
    if spec.task == "depth":
        model: nn.Module = DPTDepthModel(
            backbone=spec.backbone,
            readout=spec.readout,
            non_negative=True,
            invert=spec.invert,
            scale=spec.scale,
            shift=spec.shift,
        )
    else:
        model = DPTSegmentationModel(spec.num_classes, backbone=spec.backbone, readout=spec.readout)
    return model.eval()
