"""VGGT (Wang et al., CVPR 2025): depth, point maps and cameras from a window of S views.

The network sees S images of one scene at once and gives, for each, depth with a
confidence, a point map in the first view's camera frame, and the camera (a pose
encoding, see :func:`pose_encoding_to_extri_intri`). Module names reproduce the
reference's state_dict (facebookresearch/vggt at 44b3afb, ``VGGT(enable_track=False)``),
so the official ``model.safetensors`` / ``model.pt`` load unchanged (less the track
head, which is not built here). Behaviour that moves the numbers follows the reference:

- images (B, S, 3, H, W) in [0, 1] are normalised with ImageNet's mean and std inside
  the network;
- every view's patch tokens come from a DINOv2 ViT-L/14 with 4 registers (its final
  norm applied, class and register tokens dropped); its 37x37 position grid is resized
  *to the target grid* (bicubic, antialiased), not by a scale factor as in Depth
  Anything V2;
- each view's tokens are [camera, 4 registers, patches]; view 0 takes the first of two
  learned camera and register tokens, views 1..S-1 the second: frame 0 is the reference
  (world) frame, the others are interchangeable;
- 24 pairs of blocks alternate attention within each view ("frame") and across all
  views' tokens ("global"); both use query/key LayerNorm and 2D RoPE (base 100) at
  each patch's (row + 1, col + 1), the camera and register tokens at (0, 0);
- the heads read the concatenation of a pair's frame and global outputs at pairs 4,
  11, 17 and 23 (the camera head only 23's camera token). The reference keeps all 24
  concatenations; this network keeps only those four, which bounds the memory of long
  windows;
- the camera head refines a 9-value pose encoding four times (adaLN-modulated trunk of
  4 blocks); the field of view passes a ReLU;
- the DPT heads are Depth Anything 3's (a token LayerNorm, a sinusoidal UV position
  embedding x 0.1 before resampling and after the last upsampling, no skip branch in
  the coarsest fusion block); depth goes through exp, points through
  ``sign(x) * (exp(|x|) - 1)``, both confidences through ``1 + exp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from timm.layers import LayerScale, Mlp
from timm.models.vision_transformer import Block
from torch import nn

from dpt_ros.models.network.blocks import (
    REASSEMBLE_FACTORS,
    ResidualConvUnit,
    fuse,
    make_resample,
)
from dpt_ros.models.network.depth_anything3 import (
    RopeAttention,
    _make_fusion_scratch,
    _output_branch,
    uv_position_embedding,
)
from dpt_ros.models.network.rope2d import rope_tables

#: Patch side in pixels; network inputs are multiples of it.
PATCH_SIZE = 14
#: ImageNet's statistics, applied inside the network (inputs are RGB in [0, 1]).
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
#: Entries of the pose encoding: translation (3), quaternion x y z w (4), field of view
#: (vertical, horizontal; radians).
POSE_ENCODING_SIZE = 9


@dataclass(frozen=True)
class VggtConfig:
    """The sizes of one VGGT network.

    Attributes:
        embed_dim: token width C (the heads read 2C).
        depth: alternating frame/global block pairs.
        num_heads: heads of those blocks.
        dino_depth, dino_heads: blocks and heads of the DINOv2 patch embedding.
        registers: register tokens (DINOv2's and the aggregator's).
        pos_grid: side of DINOv2's learned position grid (518 / 14 = 37).
        out_layers: the block pairs whose outputs the heads read (the last one feeds the
            camera head).
        features: DPT head width.
        channels: channels of the DPT heads' four reassembled maps.
        camera_depth: transformer blocks of the camera head's trunk.
        camera_iterations: refinements of the pose encoding.
    """

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    dino_depth: int = 24
    dino_heads: int = 16
    registers: int = 4
    pos_grid: int = 37
    out_layers: tuple[int, int, int, int] = (4, 11, 17, 23)
    features: int = 256
    channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    camera_depth: int = 4
    camera_iterations: int = 4

    @property
    def prefix_tokens(self) -> int:
        """Tokens before each view's patches: the camera token and the registers."""
        return 1 + self.registers


#: VGGT-1B (about 1.19 B parameters without the track head).
VGGT_1B = VggtConfig()


class VggtOutput(NamedTuple):
    """What :class:`Vggt` gives for B windows of S views on an (H, W) network input.

    Attributes:
        pose_enc: (B, S, 9) the last refinement's pose encoding.
        depth: (B, S, H, W) depth, > 0, the window's unit (larger = farther).
        depth_conf: (B, S, H, W) its confidence, > 1.
        world_points: (B, S, H, W, 3) each pixel's point in view 0's camera frame.
        world_points_conf: (B, S, H, W) their confidence, > 1.
    """

    pose_enc: torch.Tensor
    depth: torch.Tensor
    depth_conf: torch.Tensor
    world_points: torch.Tensor
    world_points_conf: torch.Tensor


# --------------------------------------------------------------------------- patch embed


def resize_pos_embed(pos_embed: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """DINOv2's position embeddings for an (h, w) patch grid, as VGGT computes them: the
    square grid resized to (h, w) with antialiased bicubic interpolation (unchanged only
    for a square grid of its own size).

    Args:
        pos_embed: (1, 1 + side*side, C), the class token's first.
        grid_hw: (h, w) patch grid.

    Returns:
        (1, 1 + h*w, C) in pos_embed's dtype.
    """
    n = pos_embed.shape[1] - 1
    h, w = int(grid_hw[0]), int(grid_hw[1])
    if n == h * w and h == w:
        return pos_embed
    side = int(round(n**0.5))
    grid = pos_embed[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1).to(pos_embed.dtype)
    return torch.cat((pos_embed[:, :1], grid), dim=1)


class DinoPatchEmbed(nn.Module):
    """DINOv2 ViT with registers as VGGT's patch embedding (``aggregator.patch_embed``).

    Keys: ``cls_token``, ``pos_embed``, ``register_tokens``, ``mask_token`` (training
    only; kept so that files load strictly), ``patch_embed.proj``, ``blocks.N``
    (LayerScale, LayerNorm eps 1e-6), ``norm``.

    Args:
        config: the network's sizes.
    """

    def __init__(self, config: VggtConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.pos_grid**2, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.registers, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = PatchProjection(dim)
        norm: Any = _layer_norm_1e6  # timm types norm_layer as a class
        self.blocks = nn.ModuleList(
            Block(dim, config.dino_heads, qkv_bias=True, init_values=1.0, norm_layer=norm)
            for _ in range(config.dino_depth)
        )
        self.norm = norm(dim)
        self.registers = config.registers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images -> (N, h*w, C) normalised patch tokens."""
        n = x.shape[0]
        grid_hw = (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE)
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(n, -1, -1), tokens), dim=1)
        tokens = tokens + resize_pos_embed(self.pos_embed, grid_hw)
        registers = self.register_tokens.expand(n, -1, -1)
        tokens = torch.cat((tokens[:, :1], registers, tokens[:, 1:]), dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 1 + self.registers :]


class PatchProjection(nn.Module):
    """14x14 patches -> tokens (``patch_embed.proj``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, (H/14)(W/14), C), patches row-major."""
        return self.proj(x).flatten(2).transpose(1, 2)


def _layer_norm_1e6(dim: int, **kwargs: Any) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6, **kwargs)


# --------------------------------------------------------------------------- aggregator


class RopeBlock(nn.Module):
    """A pre-norm transformer block with query/key norm and 2D RoPE (the aggregator's
    frame and global blocks; LayerNorm eps 1e-5, LayerScale).

    Args:
        dim: token width.
        num_heads: attention heads.
        init_values: LayerScale's initial value.
    """

    def __init__(self, dim: int, num_heads: int, init_values: float = 0.01) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = RopeAttention(dim, num_heads, qk_norm=True)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(B, N, C) -> (B, N, C); ``rope``: (cos, sin) tables for the N tokens."""
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))


def _first_and_others(token: torch.Tensor, batch: int, views: int) -> torch.Tensor:
    """(1, 2, T, C) learned tokens -> (batch * views, T, C): view 0 gets entry 0, the
    other views entry 1."""
    first = token[:, :1].expand(batch, 1, *token.shape[2:])
    others = token[:, 1:].expand(batch, views - 1, *token.shape[2:])
    return torch.cat((first, others), dim=1).reshape(batch * views, *token.shape[2:])


class Aggregator(nn.Module):
    """VGGT's alternating-attention trunk (``aggregator``).

    Args:
        config: the network's sizes.
    """

    def __init__(self, config: VggtConfig) -> None:
        super().__init__()
        if max(config.out_layers) >= config.depth:
            raise ValueError(f"out_layers {config.out_layers} beyond {config.depth} blocks")
        self.config = config
        dim = config.embed_dim
        self.patch_embed = DinoPatchEmbed(config)
        self.frame_blocks = nn.ModuleList(
            RopeBlock(dim, config.num_heads) for _ in range(config.depth)
        )
        self.global_blocks = nn.ModuleList(
            RopeBlock(dim, config.num_heads) for _ in range(config.depth)
        )
        # [view 0's token, the other views' token]
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.registers, dim))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, S, 3, H, W) RGB in [0, 1], H and W multiples of 14 -> the outputs of
        :attr:`VggtConfig.out_layers`, each (B, S, P, 2C): P = 5 + (H/14)(W/14) tokens per
        view ([camera, registers, patches]), the frame block's output then the global
        block's."""
        b, s, c, height, width = images.shape
        if c != 3:
            raise ValueError(f"VGGT takes RGB images, got {c} channels")
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(
                f"VGGT input size must be a multiple of {PATCH_SIZE}, got {height}x{width}"
            )
        config = self.config
        # constants, not buffers: a network built on the meta device and given a file's
        # tensors (assign=True) has nothing left to initialise
        mean = images.new_tensor(_MEAN).view(1, 1, 3, 1, 1)
        std = images.new_tensor(_STD).view(1, 1, 3, 1, 1)
        x = ((images - mean) / std).reshape(b * s, c, height, width)
        patches = self.patch_embed(x)
        tokens = torch.cat(
            (
                _first_and_others(self.camera_token, b, s),
                _first_and_others(self.register_token, b, s),
                patches,
            ),
            dim=1,
        )
        p, dim = tokens.shape[1], tokens.shape[2]
        grid_hw = (height // PATCH_SIZE, width // PATCH_SIZE)
        head_dim = dim // config.num_heads
        frame_rope = rope_tables(grid_hw, head_dim, config.prefix_tokens, device=images.device)
        global_rope = (frame_rope[0].repeat(s, 1), frame_rope[1].repeat(s, 1))

        kept: list[torch.Tensor] = []
        last = max(config.out_layers)
        for index in range(last + 1):
            tokens = self.frame_blocks[index](tokens.reshape(b * s, p, dim), frame_rope)
            frame_out = tokens.reshape(b, s, p, dim)
            tokens = self.global_blocks[index](tokens.reshape(b, s * p, dim), global_rope)
            if index in config.out_layers:
                kept.append(torch.cat((frame_out, tokens.reshape(b, s, p, dim)), dim=-1))
        return kept


# --------------------------------------------------------------------------- heads


class CameraHead(nn.Module):
    """The camera head (``camera_head``): each view's camera token of the last kept
    layer -> a pose encoding, refined ``iterations`` times.

    Each round embeds the current encoding (zeros-initialised learned tokens in the
    first), turns it into an adaLN shift, scale and gate of the normalised camera tokens,
    runs the trunk across the views of a window and adds the branch's output to the
    encoding; the field of view entries pass a ReLU.

    Args:
        dim_in: camera token width (2C).
        depth: trunk blocks.
        num_heads: their heads.
        iterations: refinements.
    """

    def __init__(self, dim_in: int, depth: int = 4, num_heads: int = 16, iterations: int = 4):
        super().__init__()
        self.iterations = iterations
        self.trunk = nn.Sequential(
            *(
                Block(dim_in, num_heads, qkv_bias=True, init_values=0.01, norm_layer=nn.LayerNorm)
                for _ in range(depth)
            )
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_SIZE))
        self.embed_pose = nn.Linear(POSE_ENCODING_SIZE, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, eps=1e-6, elementwise_affine=False)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_ENCODING_SIZE)

    def forward(self, camera_tokens: torch.Tensor) -> torch.Tensor:
        """(B, S, 2C) camera tokens -> (B, S, 9) pose encoding."""
        b, s, _ = camera_tokens.shape
        tokens = self.token_norm(camera_tokens)
        encoding: torch.Tensor | None = None
        for _ in range(self.iterations):
            if encoding is None:
                embedded = self.embed_pose(self.empty_pose_tokens.expand(b, s, -1))
            else:
                embedded = self.embed_pose(encoding)
            shift, scale, gate = self.poseLN_modulation(embedded).chunk(3, dim=-1)
            modulated = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(modulated)))
            encoding = delta if encoding is None else encoding + delta
        assert encoding is not None  # iterations >= 1 (constructor)
        return torch.cat((encoding[..., :7], F.relu(encoding[..., 7:])), dim=-1)


def inverse_log(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * (exp(|x|) - 1)``: the point head's activation."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


class RectifiedSkipConvUnit(ResidualConvUnit):
    """VGGT's residual unit: ``conv2(relu(conv1(relu(x)))) + relu(x)``.

    The reference's first ReLU works in place, so the skip adds the rectified input,
    not the input itself (unlike DPT's and Depth Anything's units, whose outputs differ).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(x)
        return self.conv2(self.activation(self.conv1(x))) + x


def _vggt_scratch(channels: Sequence[int], features: int) -> Any:
    """Depth Anything 3's fusion scratch with :class:`RectifiedSkipConvUnit` units."""
    scratch: Any = _make_fusion_scratch(channels, features)
    for i in range(1, 5):
        block = getattr(scratch, f"refinenet{i}")
        for name in ("resConfUnit1", "resConfUnit2"):
            if hasattr(block, name):
                setattr(block, name, RectifiedSkipConvUnit(features))
    return scratch


#: Dense head kinds: output channels and activation of the values.
DEPTH_HEAD = "depth"
POINT_HEAD = "point"
_HEAD_OUTPUTS = {DEPTH_HEAD: 1, POINT_HEAD: 3}


class VggtDptHead(nn.Module):
    """A dense head (``depth_head`` or ``point_head``): four kept layers' patch tokens
    -> per-pixel values and their confidence at the input's size.

    Args:
        kind: ``depth`` (1 value, exp) or ``point`` (3 values, inverse log); the
            confidence is ``1 + exp`` for both.
        dim_in: token width (2C).
        features: head width.
        channels: the four reassembled maps' channels.
        prefix_tokens: tokens before the patches in each view.
    """

    def __init__(
        self,
        kind: str,
        dim_in: int,
        features: int = 256,
        channels: Sequence[int] = (256, 512, 1024, 1024),
        prefix_tokens: int = 5,
    ) -> None:
        super().__init__()
        if kind not in _HEAD_OUTPUTS:
            raise ValueError(f"unknown VGGT head {kind!r}; valid: {', '.join(_HEAD_OUTPUTS)}")
        self.kind = kind
        self.prefix_tokens = prefix_tokens
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, kernel_size=1) for c in channels)
        self.resize_layers = nn.ModuleList(
            make_resample(c, f) or nn.Identity()
            for c, f in zip(channels, REASSEMBLE_FACTORS, strict=True)
        )
        s = _vggt_scratch(channels, features)
        s.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        s.output_conv2 = _output_branch(features, _HEAD_OUTPUTS[kind] + 1)
        self.scratch = s

    def forward(
        self, layers: Sequence[torch.Tensor], grid_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Four (B, S, P, 2C) kept layers on an (h, w) patch grid -> values
        (B, S, 14h, 14w) for depth or (B, S, 14h, 14w, 3) for points, and the
        confidence (B, S, 14h, 14w)."""
        h, w = int(grid_hw[0]), int(grid_hw[1])
        b, s = layers[0].shape[:2]
        aspect_ratio = w / h
        resampled = []
        for i, tokens in enumerate(layers):
            x = self.norm(tokens[:, :, self.prefix_tokens :].reshape(b * s, h * w, -1))
            x = x.transpose(1, 2).reshape(b * s, -1, h, w)
            x = self.projects[i](x)
            x = x + uv_position_embedding(x.shape[1], (h, w), aspect_ratio, x.device)
            resampled.append(self.resize_layers[i](x))
        sc: Any = self.scratch
        out = sc.output_conv1(fuse(sc, resampled))
        size = (h * PATCH_SIZE, w * PATCH_SIZE)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        out = out + uv_position_embedding(out.shape[1], size, aspect_ratio, out.device)
        raw = sc.output_conv2(out).reshape(b, s, -1, *size)
        confidence = 1 + torch.exp(raw[:, :, -1])
        if self.kind == DEPTH_HEAD:
            return torch.exp(raw[:, :, 0]), confidence
        return inverse_log(raw[:, :, :3].permute(0, 1, 3, 4, 2)), confidence


# --------------------------------------------------------------------------- network


class Vggt(nn.Module):
    """VGGT without its track head.

    Args:
        config: the sizes (:data:`VGGT_1B` for the official model).
    """

    #: Each view's input as an export's sidecar describes it.
    input_layout = "rgb / 255 (the network normalises)"

    def __init__(self, config: VggtConfig = VGGT_1B) -> None:
        super().__init__()
        self.config = config
        dim_in = 2 * config.embed_dim
        self.aggregator = Aggregator(config)
        self.camera_head = CameraHead(
            dim_in, config.camera_depth, config.num_heads, config.camera_iterations
        )
        head = (config.features, config.channels, config.prefix_tokens)
        self.point_head = VggtDptHead(POINT_HEAD, dim_in, *head)
        self.depth_head = VggtDptHead(DEPTH_HEAD, dim_in, *head)

    def forward(self, images: torch.Tensor) -> VggtOutput:
        """(B, S, 3, H, W) RGB in [0, 1] (or (S, 3, H, W): one window), H and W multiples
        of 14 -> :class:`VggtOutput`."""
        return self.window(images)

    def window(self, images: torch.Tensor) -> VggtOutput:
        """B windows of S views: see :meth:`forward`."""
        if images.ndim == 4:
            images = images[None]
        if images.ndim != 5:
            raise ValueError(f"VGGT takes (B, S, 3, H, W) images, got {tuple(images.shape)}")
        layers = self.aggregator(images)
        grid_hw = (images.shape[-2] // PATCH_SIZE, images.shape[-1] // PATCH_SIZE)
        pose_enc = self.camera_head(layers[-1][:, :, 0])
        depth, depth_conf = self.depth_head(layers, grid_hw)
        points, points_conf = self.point_head(layers, grid_hw)
        return VggtOutput(pose_enc, depth, depth_conf, points, points_conf)


class VggtSingleView(Vggt):
    """VGGT on single images: each image of a batch is a window of one view. Same keys
    as :class:`Vggt`; :meth:`window` runs windows of several views."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """(B, 3, H, W) RGB in [0, 1] -> (B, 2, H, W): depth (> 0, larger = farther) and
        its confidence (> 1)."""
        if images.ndim != 4:
            raise ValueError(f"VGGT single views are (B, 3, H, W), got {tuple(images.shape)}")
        out = self.window(images[:, None])
        return torch.stack((out.depth[:, 0], out.depth_conf[:, 0]), dim=1)


class VggtWindow(nn.Module):
    """:meth:`Vggt.window` with plain tensor outputs, for exports of a window of fixed
    size (the engine cache's window engines).

    Args:
        network: a :class:`Vggt` (or :class:`VggtSingleView`) with its weights.
    """

    #: The inputs, in order: the views, RGB in [0, 1] (the network normalises).
    input_names = ("input",)
    #: The outputs, in order: the fields of :class:`VggtOutput`.
    output_names = VggtOutput._fields
    #: Each view's input as the export's sidecar describes it.
    input_layout = "rgb / 255 (the network normalises)"

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        if not isinstance(network, Vggt):
            raise ValueError(f"VGGT windows need a VGGT network, got {type(network).__name__}")
        self.model = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, S, 3, H, W) RGB in [0, 1] -> the fields of :class:`VggtOutput`, in
        :attr:`output_names` order."""
        return tuple(self.model.window(x))


# --------------------------------------------------------------------------- cameras


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions x y z w (scalar last; any norm) -> (..., 3, 3) rotations."""
    x, y, z, w = quaternions.unbind(-1)
    two_s = 2.0 / (quaternions * quaternions).sum(-1)
    rows = (
        1 - two_s * (y * y + z * z),
        two_s * (x * y - z * w),
        two_s * (x * z + y * w),
        two_s * (x * y + z * w),
        1 - two_s * (x * x + z * z),
        two_s * (y * z - x * w),
        two_s * (x * z - y * w),
        two_s * (y * z + x * w),
        1 - two_s * (x * x + y * y),
    )
    return torch.stack(rows, -1).reshape(*quaternions.shape[:-1], 3, 3)


def pose_encoding_to_extri_intri(
    pose_enc: torch.Tensor, image_hw: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """VGGT's pose encoding -> each view's camera.

    Args:
        pose_enc: (..., 9): translation t (3), rotation as a quaternion x y z w (4), field
            of view (vertical, horizontal; radians).
        image_hw: (H, W) of the network input the encoding belongs to (pixels).

    Returns:
        ``camera_from_world`` (..., 3, 4) [R | t]: OpenCV axes (x right, y down, z
        forward), world = view 0's camera; ``intrinsics`` (..., 3, 3) in pixels of the
        (H, W) grid: fy = (H / 2) / tan(fov_v / 2), fx = (W / 2) / tan(fov_h / 2),
        principal point at the centre (W / 2, H / 2).
    """
    height, width = float(image_hw[0]), float(image_hw[1])
    rotation = quaternion_to_matrix(pose_enc[..., 3:7])
    camera_from_world = torch.cat((rotation, pose_enc[..., :3, None]), dim=-1)
    fy = (height / 2.0) / torch.tan(pose_enc[..., 7] / 2.0)
    fx = (width / 2.0) / torch.tan(pose_enc[..., 8] / 2.0)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    intrinsics = torch.stack(
        (fx, zero, zero + width / 2, zero, fy, zero + height / 2, zero, zero, one), dim=-1
    ).reshape(*fx.shape, 3, 3)
    return camera_from_world, intrinsics
