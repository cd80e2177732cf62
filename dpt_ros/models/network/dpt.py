"""DPT: Dense Prediction Transformer (Ranftl et al., 2021).

``DPT`` holds the encoder (``pretrained``) and the convolutional decoder
(``scratch``); ``DPTDepthModel`` and ``DPTSegmentationModel`` share it and differ
only in the head, as in the original. Module names reproduce the official
checkpoint key layout exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from dpt_ros.models.network.blocks import Upsample2x, fuse, make_scratch
from dpt_ros.models.network.encoder import DPTEncoder, get_backbone_config


class DPT(nn.Module):
    """Encoder, four fusion levels and a task head.

    Args:
        head: module mapping the finest fused map (B, features, H/2, W/2) to the output.
        backbone: ``vitl16_384``, ``vitb16_384`` or ``vitb_rn50_384``.
        readout: ``ignore``, ``add`` or ``project``.
        features: decoder width.
        use_bn: batch norm in the fusion blocks' residual units (segmentation models).
    """

    def __init__(
        self,
        head: nn.Module,
        backbone: str = "vitb_rn50_384",
        readout: str = "project",
        features: int = 256,
        use_bn: bool = False,
    ) -> None:
        super().__init__()
        channels = get_backbone_config(backbone).channels
        self.pretrained = DPTEncoder(backbone, readout)
        self.scratch = make_scratch(channels, features, use_bn)
        self.scratch.output_conv = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> fused decoder features (B, features, H/2, W/2)."""
        return fuse(self.scratch, self.pretrained(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head: nn.Module = self.scratch.get_submodule("output_conv")
        return head(self.forward_features(x))


class DPTDepthModel(DPT):
    """Monocular depth.

    The network predicts inverse depth x >= 0 (``non_negative``). With ``invert``
    the output is metric depth ``1 / max(scale * x + shift, 1e-8)`` in metres.

    Args:
        backbone, readout, features: see ``DPT``.
        non_negative: ReLU on the output.
        invert: return metric depth instead of the network's inverse depth.
        scale, shift: the inversion's affine map.
    """

    def __init__(
        self,
        backbone: str = "vitb_rn50_384",
        readout: str = "project",
        features: int = 256,
        non_negative: bool = True,
        invert: bool = False,
        scale: float = 1.0,
        shift: float = 0.0,
    ) -> None:
        head = nn.Sequential(
            nn.Conv2d(features, features // 2, 3, padding=1),
            Upsample2x(),
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(32, 1, kernel_size=1),
            nn.ReLU(True) if non_negative else nn.Identity(),
        )
        super().__init__(head, backbone=backbone, readout=readout, features=features)
        self.invert = invert
        self.scale = scale
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, H, W) inverse depth, or metres with ``invert``."""
        out = super().forward(x).squeeze(1)
        if self.invert:
            return 1.0 / (self.scale * out + self.shift).clamp_min(1e-8)
        return out


class DPTSegmentationModel(DPT):
    """Semantic segmentation.

    The checkpoints also hold ``auxlayer``, the auxiliary head used in training;
    it is built so that they load strictly, and never run.

    Args:
        num_classes: number of classes (150 for ADE20K).
        backbone, readout, features: see ``DPT``.
    """

    def __init__(
        self,
        num_classes: int = 150,
        backbone: str = "vitb_rn50_384",
        readout: str = "project",
        features: int = 256,
    ) -> None:
        head = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(True),
            nn.Dropout(0.1, False),
            nn.Conv2d(features, num_classes, kernel_size=1),
            Upsample2x(),
        )
        super().__init__(head, backbone=backbone, readout=readout, features=features, use_bn=True)
        self.num_classes = num_classes
        self.auxlayer = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(True),
            nn.Dropout(0.1, False),
            nn.Conv2d(features, num_classes, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image -> (B, num_classes, H, W) logits."""
        return super().forward(x)
