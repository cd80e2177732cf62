"""timm's ``vit_base_r50_s16_384`` (DPT-Hybrid's backbone), built without its probe run.

timm's ``HybridEmbed`` learns the ResNet's output size by running the ResNet once on a
384x384 black image while the model is built: about 3 CPU-seconds on a 2-core machine,
for a size that is fixed by the architecture (stem stride 4, stages 1, 2, 2: 384 / 16 =
24, 1024 channels). :func:`create_hybrid_vit` builds the same model from the same timm
classes in the same order, with that size given, so the probe is skipped: the same seed
gives the same parameters, buffers and outputs as ``timm.create_model`` (a test compares
them). Where the installed timm has no way to be told the feature width, it falls back
to ``timm.create_model``.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import timm
from timm.layers import HybridEmbed, StdConv2dSame
from timm.models import build_model_with_cfg
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import VisionTransformer

#: The timm architecture this module builds.
HYBRID_TIMM_NAME = "vit_base_r50_s16_384"
#: Its input side, ResNet stages and token width, as timm's entry point sets them.
_IMG_SIZE = 384
_LAYERS = [3, 4, 9]
_EMBED_DIM = 768
_DEPTH = 12
_HEADS = 12
#: Input pixels per ResNet output pixel: stem 4, then stage strides 1, 2, 2.
_RESNET_STRIDE = 16


class _SizedHybridEmbed(HybridEmbed):
    """``HybridEmbed`` given its backbone's output size, so it does not run the backbone
    to measure it; the feature width is the ResNet's ``num_features``."""

    # timm's __init__ passes keywords; their names are checked in _can_skip_probe.
    def _init_backbone(self, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("feature_dim") is None:
            width: Any = self.backbone.num_features
            kwargs["feature_dim"] = int(width)
        return super()._init_backbone(**kwargs)


def _can_skip_probe() -> bool:
    """Whether this timm's ``HybridEmbed`` takes the feature width from a subclass."""
    init_backbone = getattr(HybridEmbed, "_init_backbone", None)
    return (
        init_backbone is not None and "feature_dim" in inspect.signature(init_backbone).parameters
    )


def create_hybrid_vit() -> Any:
    """``timm.create_model("vit_base_r50_s16_384", pretrained=False)``, without the
    ResNet run timm makes to find the ResNet's output size.

    Returns:
        The timm ``VisionTransformer`` with its ``HybridEmbed`` (random initial weights,
        drawn from torch's global generator in timm's order).
    """
    if not _can_skip_probe():
        return timm.create_model(HYBRID_TIMM_NAME, pretrained=False)
    # As timm's vit_base_r50_s16_384: the ResNet first, then the transformer around it.
    backbone = ResNetV2(
        layers=_LAYERS,
        num_classes=0,
        global_pool="",
        in_chans=3,
        preact=False,
        stem_type="same",
        conv_layer=partial(StdConv2dSame, eps=1e-8),
    )
    embed_layer = partial(
        _SizedHybridEmbed, backbone=backbone, feature_size=_IMG_SIZE // _RESNET_STRIDE
    )
    return build_model_with_cfg(
        VisionTransformer,
        HYBRID_TIMM_NAME,
        False,
        embed_layer=embed_layer,
        patch_size=1,
        embed_dim=_EMBED_DIM,
        depth=_DEPTH,
        num_heads=_HEADS,
    )
