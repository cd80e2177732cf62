"""Depth Anything 3 (Lin et al., 2025): a DINOv2 encoder and a DPT head, on one image or
(any-view types) on a window of several views with their cameras.

Five official types (see :data:`DA3_CONFIGS`):

- any-view ``depth_anything_3_{small,base,large}``: the encoder's later blocks use 2D
  RoPE and query/key normalisation, alternate within-view ("local") and cross-view
  ("global") attention, and put a learned camera token in the class token's place;
  every feature map concatenates the last local block's tokens with the normalised
  output of the global block ("cat token"). The head (``DualDPT``) predicts depth
  (through exp) and a confidence (1 + exp); its second branch (rays) is loaded but not
  run. The camera decoder turns the last map's camera token into each view's camera
  (:meth:`DepthAnything3.forward_window`); the camera encoder turns known cameras into
  camera tokens (the conditioned forward).
- ``depth_anything_3_{mono,metric}_large``: a plain DINOv2-L encoder and a DPT head with
  depth (through exp) and a sky map (ReLU). The metric type's depth becomes metres
  through the camera's focal length (``dpt_ros.models.da3_transforms.metric_depth``).

One image is one view (the reference's N = 1); with one view the global blocks attend
over the same tokens as local ones, with every patch at one shared RoPE position. A
window of S views (:meth:`DepthAnything3.forward_window`) runs the local blocks on each
view and the global blocks on the S views' tokens together; windows of 3 views or more
pick a reference view before block ``alt_start - 1`` (``saddle_balanced`` by default,
:func:`select_reference_view`), move it first, and restore the order in the outputs; the
reference view gets the first learned camera token, the others the second.

The encoder is timm's DINOv2 ViT (``pretrained=False``), walked block by block; blocks
with RoPE or query/key normalisation get :class:`RopeAttention` in place of timm's
attention. Module names reproduce the reference's state_dict (the hub's
``model.safetensors`` adds a ``model.`` prefix, see ``models/weights/da3_checkpoint.py``).
Behaviour that moves the numbers follows the reference (ByteDance-Seed/Depth-Anything-3 at
2c21ea8, ``depth-anything-3`` 0.1.1):

- block LayerNorms use eps 1e-6, but the encoder's final norm, the query/key norms and
  the head's token norm use PyTorch's default 1e-5;
- in cat-token features only the second half (the global block's output) goes through
  the final norm; the first half is the raw local tokens;
- RoPE positions: prefix token at (0, 0), patch (r, c) at (r + 1, c + 1) in local
  blocks; in global blocks every patch at (1, 1) (not the identity: the camera token
  stays at 0);
- the camera token replaces the class token right before block ``alt_start``;
- the any-view head adds a sinusoidal UV position embedding (x 0.1) to every projected
  map before resampling, and again to the upsampled map before the last convolutions;
- the coarsest fusion block has no skip branch (no ``resConfUnit1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import timm
import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Block
from torch import nn

from dpt_ros.models.network.blocks import (
    REASSEMBLE_FACTORS,
    FeatureFusionBlock,
    ResidualConvUnit,
    fuse,
    make_resample,
    make_scratch,
)
from dpt_ros.models.network.depth_anything import interpolate_pos_embed
from dpt_ros.models.network.rope2d import apply_rope, rope_tables

#: DINOv2's patch side in pixels; network inputs are multiples of it.
PATCH_SIZE = 14
#: The any-view head's UV position embedding is scaled by this.
_UV_EMBED_RATIO = 0.1
#: Sinusoid base of the UV position embedding.
_UV_EMBED_BASE = 100.0
#: Channels of the last hidden layer of every output branch.
_HEAD_HIDDEN = 32
#: Outputs of the any-view head's ray branch (6 ray values + 1 confidence).
_RAY_OUTPUTS = 7

#: How a window picks its reference view (the reference's ``ref_view_strategy``).
REFERENCE_VIEW_STRATEGIES = ("first", "middle", "saddle_balanced", "saddle_sim_range")
#: Windows of at least this many views pick a reference view (the reference's
#: ``THRESH_FOR_REF_SELECTION``); smaller ones take view 0.
MIN_VIEWS_FOR_REFERENCE = 3

#: The two head kinds.
DUAL_DPT = "dual_dpt"
SKY_DPT = "sky_dpt"


@dataclass(frozen=True)
class Da3Config:
    """One Depth Anything 3 type.

    Attributes:
        name: dpt_ros type name.
        reference_name: the reference's config name (``da3-small`` ...).
        timm_name: timm's DINOv2 architecture (``pretrained=False``).
        embed_dim: token width C.
        num_heads: attention heads.
        out_layers: the four blocks whose outputs feed the head.
        alt_start: first block of alternating local/global attention (odd blocks from
            here are global) and where the camera token comes in; -1: none.
        qknorm_start: first block with query/key LayerNorm; -1: none.
        rope_start: first block with 2D RoPE; -1: none.
        cat_token: features are [local tokens, norm(global tokens)] (2C wide).
        head: ``dual_dpt`` (depth + confidence) or ``sky_dpt`` (depth + sky).
        features: decoder width.
        channels: channels of the four reassembled maps.
        vit_args: keyword arguments for timm's constructor that override the
            architecture's (test configs with toy dimensions); () for the official types.
    """

    name: str
    reference_name: str
    timm_name: str
    embed_dim: int
    num_heads: int
    out_layers: tuple[int, int, int, int]
    alt_start: int
    qknorm_start: int
    rope_start: int
    cat_token: bool
    head: str
    features: int
    channels: tuple[int, int, int, int]
    vit_args: tuple[tuple[str, int], ...] = ()

    @property
    def head_dim_in(self) -> int:
        """Token width reaching the head."""
        return 2 * self.embed_dim if self.cat_token else self.embed_dim

    @property
    def output_names(self) -> tuple[str, str]:
        """What the network's two outputs are."""
        return ("depth", "confidence") if self.head == DUAL_DPT else ("depth", "sky")


def _any_view(name: str, ref: str, timm_name: str, dim: int, heads: int, **kw: Any) -> Da3Config:
    return Da3Config(name, ref, timm_name, dim, heads, cat_token=True, head=DUAL_DPT, **kw)


def _mono(name: str, ref: str) -> Da3Config:
    return Da3Config(
        name,
        ref,
        "vit_large_patch14_dinov2",
        1024,
        16,
        out_layers=(4, 11, 17, 23),
        alt_start=-1,
        qknorm_start=-1,
        rope_start=-1,
        cat_token=False,
        head=SKY_DPT,
        features=256,
        channels=(256, 512, 1024, 1024),
    )


DA3_CONFIGS: dict[str, Da3Config] = {
    c.name: c
    for c in (
        _any_view(
            "depth_anything_3_small",
            "da3-small",
            "vit_small_patch14_dinov2",
            384,
            6,
            out_layers=(5, 7, 9, 11),
            alt_start=4,
            qknorm_start=4,
            rope_start=4,
            features=64,
            channels=(48, 96, 192, 384),
        ),
        _any_view(
            "depth_anything_3_base",
            "da3-base",
            "vit_base_patch14_dinov2",
            768,
            12,
            out_layers=(5, 7, 9, 11),
            alt_start=4,
            qknorm_start=4,
            rope_start=4,
            features=128,
            channels=(96, 192, 384, 768),
        ),
        _any_view(
            "depth_anything_3_large",
            "da3-large",
            "vit_large_patch14_dinov2",
            1024,
            16,
            out_layers=(11, 15, 19, 23),
            alt_start=8,
            qknorm_start=8,
            rope_start=8,
            features=256,
            channels=(256, 512, 1024, 1024),
        ),
        _mono("depth_anything_3_mono_large", "da3mono-large"),
        _mono("depth_anything_3_metric_large", "da3metric-large"),
    )
}


def get_da3_config(name: str) -> Da3Config:
    """The config of type ``name``; ValueError lists the valid names."""
    try:
        return DA3_CONFIGS[name]
    except KeyError:
        raise ValueError(
            f"unknown Depth Anything 3 type {name!r}; valid: {', '.join(DA3_CONFIGS)}"
        ) from None


# --------------------------------------------------------------------------- encoder


class RopeAttention(nn.Module):
    """Multi-head self-attention with optional query/key LayerNorm and 2D RoPE.

    Keys as the reference's: ``qkv``, ``q_norm``, ``k_norm`` (eps 1e-5; no parameters
    without ``qk_norm``), ``proj``.

    Args:
        dim: token width.
        num_heads: heads; ``dim / num_heads`` must be a multiple of 4 for RoPE.
        qk_norm: LayerNorm over each head's queries and keys before RoPE.
    """

    def __init__(self, dim: int, num_heads: int, qk_norm: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"token width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm: nn.Module = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm: nn.Module = nn.LayerNorm(head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """(B, N, C) tokens -> (B, N, C); ``rope``: (cos, sin) tables of
        :func:`~dpt_ros.models.network.rope2d.rope_tables` for the N tokens, or None."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class EncoderFeatures(NamedTuple):
    """What :meth:`Da3Encoder.forward` returns for single images.

    Attributes:
        maps: four (B, h*w, C') patch-token maps, C' = 2C with cat tokens, else C.
        camera: (B, C') the prefix token of the last map (camera decoder input).
    """

    maps: list[torch.Tensor]
    camera: torch.Tensor


class WindowFeatures(NamedTuple):
    """What :meth:`Da3Encoder.forward_views` returns for B windows of S views, in the
    views' own order.

    Attributes:
        maps: four (B*S, h*w, C') patch-token maps (view s of window b at b*S + s).
        camera: (B, S, C') the prefix token of the last map (camera decoder input).
        reference_view: (B,) int64, the view each window's global attention took as
            its reference (0 where no view was chosen: fewer than
            :data:`MIN_VIEWS_FOR_REFERENCE` views, or known cameras).
    """

    maps: list[torch.Tensor]
    camera: torch.Tensor
    reference_view: torch.Tensor


class ViewPrefix(NamedTuple):
    """What the blocks before ``alt_start`` make of V views, each on its own: the part
    of a window's forward that depends on one view only, and so can be kept for a view
    that comes back in the next window (a keyframe) instead of being computed again.

    Attributes:
        entering: (V, C) each view's prefix token entering block ``alt_start - 1``
            (what :func:`select_reference_view` reads).
        tokens: (V, n, C) each view's tokens after block ``alt_start - 1``.
    """

    entering: torch.Tensor
    tokens: torch.Tensor

    def take(self, index: torch.Tensor | Sequence[int]) -> ViewPrefix:
        """The views at ``index`` (a view may be repeated)."""
        at = torch.as_tensor(index, dtype=torch.long, device=self.tokens.device)
        return ViewPrefix(self.entering[at], self.tokens[at])

    @staticmethod
    def join(parts: Sequence[ViewPrefix]) -> ViewPrefix:
        """The views of ``parts`` one after the other."""
        return ViewPrefix(
            torch.cat([p.entering for p in parts]), torch.cat([p.tokens for p in parts])
        )


def select_reference_view(cls_tokens: torch.Tensor, strategy: str) -> torch.Tensor:
    """The reference view of each window, as the reference's backbone picks it.

    Args:
        cls_tokens: (B, S, C) each view's prefix token, entering block ``alt_start - 1``.
        strategy: one of :data:`REFERENCE_VIEW_STRATEGIES`: ``first`` (view 0),
            ``middle`` (view S // 2), ``saddle_balanced`` (the view closest to the
            middle of the window in three measures at once: mean cosine similarity to
            the other views, token norm, variance of the unit token; each scaled to
            [0, 1] over the window, then the sum of |x - 0.5| smallest),
            ``saddle_sim_range`` (the widest spread of cosine similarity, taken over
            the similarity matrix with its diagonal set to about 0).

    Returns:
        (B,) int64 view indices.
    """
    b, s, _ = cls_tokens.shape
    if strategy not in REFERENCE_VIEW_STRATEGIES:
        raise ValueError(
            f"unknown reference view strategy {strategy!r}; valid: "
            f"{', '.join(REFERENCE_VIEW_STRATEGIES)}"
        )
    if s <= 1 or strategy == "first":
        return torch.zeros(b, dtype=torch.long, device=cls_tokens.device)
    if strategy == "middle":
        return torch.full((b,), s // 2, dtype=torch.long, device=cls_tokens.device)
    unit = cls_tokens / cls_tokens.norm(dim=-1, keepdim=True)
    similarity = unit @ unit.transpose(1, 2)
    similarity = similarity - torch.eye(s, device=similarity.device)[None]
    if strategy == "saddle_sim_range":
        spread = similarity.max(dim=-1).values - similarity.min(dim=-1).values
        return spread.argmax(dim=1)
    measures = (
        similarity.sum(dim=-1) / (s - 1),
        cls_tokens.norm(dim=-1),
        unit.var(dim=-1),
    )
    score = torch.zeros_like(measures[0])
    for measure in measures:
        low = measure.min(dim=1, keepdim=True).values
        high = measure.max(dim=1, keepdim=True).values
        score = score + ((measure - low) / (high - low + 1e-8) - 0.5).abs()
    return score.argmin(dim=1)


def reference_first_order(reference_view: torch.Tensor, views: int) -> torch.Tensor:
    """(B, S) int64: the view order with the reference first and the others in their
    order (reference 2 of 5: [2, 0, 1, 3, 4])."""
    positions = torch.arange(views, device=reference_view.device)[None]
    positions = positions.expand(reference_view.shape[0], views)
    ref = reference_view[:, None]
    order = torch.where((positions > 0) & (positions <= ref), positions - 1, positions)
    return torch.cat((ref, order[:, 1:]), dim=1)


def _take_views(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """(B, S, ...) -> the views in ``order`` ((B, S) int64) along axis 1."""
    index = order.reshape(order.shape + (1,) * (x.ndim - 2)).expand(x.shape)
    return torch.gather(x, 1, index)


def _inverse_order(order: torch.Tensor) -> torch.Tensor:
    """(B, S) permutation -> its inverse."""
    positions = torch.arange(order.shape[1], device=order.device)[None].expand_as(order)
    return torch.zeros_like(order).scatter(1, order, positions)


class Da3Encoder(nn.Module):
    """The DINOv2 encoder of one Depth Anything 3 type (the reference's
    ``backbone.pretrained``).

    Args:
        config: the type.
    """

    def __init__(self, config: Da3Config) -> None:
        super().__init__()
        self.config = config
        # timm's modules are reached by attribute: typed Any. pretrained=False: the
        # weights come from a Depth Anything 3 checkpoint, never from a hub.
        overrides: dict[str, Any] = dict(config.vit_args)
        vit: Any = timm.create_model(config.timm_name, pretrained=False, num_classes=0, **overrides)
        if vit.embed_dim != config.embed_dim or len(vit.blocks) <= max(config.out_layers):
            raise ValueError(f"{config.timm_name} does not fit {config.name}")
        self.cls_token = vit.cls_token
        if config.alt_start >= 0:
            # [reference view's token, other views' token]; one view uses the first.
            self.camera_token = nn.Parameter(torch.zeros(1, 2, config.embed_dim))
        self.pos_embed = vit.pos_embed
        self.patch_embed = vit.patch_embed
        self.blocks = vit.blocks
        for i, block in enumerate(self.blocks):
            qk_norm = 0 <= config.qknorm_start <= i
            if qk_norm or 0 <= config.rope_start <= i:
                block.attn = RopeAttention(config.embed_dim, config.num_heads, qk_norm)
        # PyTorch's default eps (1e-5), unlike the blocks' 1e-6: as in the reference.
        self.norm = nn.LayerNorm(config.embed_dim)

    def _uses_rope(self, index: int) -> bool:
        return 0 <= self.config.rope_start <= index

    def _is_global(self, index: int) -> bool:
        start = self.config.alt_start
        return 0 <= start <= index and index % 2 == 1

    def forward(self, x: torch.Tensor) -> EncoderFeatures:
        """(B, 3, H, W) normalised images, H and W multiples of 14 -> the head's inputs;
        each image is a window of one view."""
        found = self.forward_views(x[:, None])
        return EncoderFeatures(found.maps, found.camera[:, 0])

    def view_prefix(self, x: torch.Tensor) -> ViewPrefix:
        """(V, 3, H, W) normalised views -> what the blocks before ``alt_start`` make of
        each (:class:`ViewPrefix`); types without windows: the embedded tokens."""
        height, width = x.shape[-2:]
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(
                f"Depth Anything 3 input size must be a multiple of {PATCH_SIZE}, "
                f"got {height}x{width}"
            )
        grid_hw = (height // PATCH_SIZE, width // PATCH_SIZE)
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat((self.cls_token.expand(len(x), -1, -1), tokens), dim=1)
        tokens = tokens + interpolate_pos_embed(self.pos_embed, grid_hw)
        entering = tokens[:, 0]
        start = self._prefix_blocks()
        if start:
            head_dim = self.config.embed_dim // self.config.num_heads
            rope = rope_tables(grid_hw, head_dim, device=x.device)
            for index, block in enumerate(self.blocks[:start]):
                if index == start - 1:
                    entering = tokens[:, 0]
                tokens = self._run_block(block, tokens, rope if self._uses_rope(index) else None)
        return ViewPrefix(entering, tokens)

    def _prefix_blocks(self) -> int:
        """How many blocks each view runs on its own before the window's first global
        block (``alt_start``; 0 for types without windows, whose every block is the
        view's own but which have no window to share)."""
        return max(self.config.alt_start, 0)

    def forward_views(
        self,
        x: torch.Tensor,
        camera_tokens: torch.Tensor | None = None,
        reference_view: str = "saddle_balanced",
        prefix: ViewPrefix | None = None,
    ) -> WindowFeatures:
        """B windows of S views -> the head's inputs, in the views' order.

        Args:
            x: (B, S, 3, H, W) normalised images, H and W multiples of 14.
            camera_tokens: (B, S, C) tokens of known cameras (:class:`CameraEncoder`),
                put in the prefix token's place at block ``alt_start``; None: the
                learned camera token (the reference view's for the first view after the
                reordering, the other views' for the rest).
            reference_view: how a window of at least :data:`MIN_VIEWS_FOR_REFERENCE`
                views without known cameras picks its reference view
                (:func:`select_reference_view`, on the prefix tokens entering block
                ``alt_start - 1``); the views are reordered with it first from block
                ``alt_start`` on (block ``alt_start - 1`` is each view's own), and the
                outputs restored to the input order.
            prefix: the (B*S) views' :meth:`view_prefix`, kept from earlier windows
                (keyframes) and computed for the new views; None: computed here from
                ``x``. Only its shape is read from ``x`` then.
        """
        b, views, _, height, width = x.shape
        if reference_view not in REFERENCE_VIEW_STRATEGIES:
            raise ValueError(
                f"unknown reference view strategy {reference_view!r}; valid: "
                f"{', '.join(REFERENCE_VIEW_STRATEGIES)}"
            )
        config = self.config
        if views > 1 and config.alt_start < 0:
            raise ValueError(f"{config.name} sees one view at a time, got windows of {views}")
        if prefix is None:
            prefix = self.view_prefix(x.reshape(b * views, *x.shape[2:]))
        elif len(prefix.tokens) != b * views:
            raise ValueError(f"a prefix of {len(prefix.tokens)} views for {b * views} views")
        grid_hw = (height // PATCH_SIZE, width // PATCH_SIZE)
        tokens = prefix.tokens
        n, width_c = tokens.shape[1], tokens.shape[2]

        head_dim = config.embed_dim // config.num_heads
        local_rope = global_rope = None
        if config.rope_start >= 0:
            local_rope = rope_tables(grid_hw, head_dim, device=tokens.device)
            shared = rope_tables(grid_hw, head_dim, shared=True, device=tokens.device)
            # global blocks attend over the S views' tokens one after another
            global_rope = (shared[0].repeat(views, 1), shared[1].repeat(views, 1))

        chosen = torch.zeros(b, dtype=torch.long, device=tokens.device)
        restore: torch.Tensor | None = None
        if config.alt_start >= 0 and views >= MIN_VIEWS_FOR_REFERENCE and camera_tokens is None:
            chosen = select_reference_view(prefix.entering.reshape(b, views, -1), reference_view)
            order = reference_first_order(chosen, views)
            restore = _inverse_order(order)
            tokens = _take_views(tokens.reshape(b, views, n, width_c), order)
            tokens = tokens.reshape(b * views, n, width_c)
        maps: list[torch.Tensor] = []
        camera = tokens[:, 0]
        local = tokens
        start = self._prefix_blocks()
        for index, block in enumerate(self.blocks):
            if index < start:
                continue
            if index == config.alt_start:
                tokens = torch.cat((self._camera_tokens(b, views, camera_tokens), tokens[:, 1:]), 1)
            is_global = self._is_global(index)
            if not self._uses_rope(index):
                rope = None
            else:
                rope = global_rope if is_global else local_rope
            if is_global:
                joined = self._run_block(block, tokens.reshape(b, views * n, width_c), rope)
                tokens = joined.reshape(b * views, n, width_c)
            else:
                tokens = self._run_block(block, tokens, rope)
                local = tokens
            if index in config.out_layers:
                if config.cat_token:
                    out = torch.cat((local, self.norm(tokens)), dim=-1)
                    camera = torch.cat((local[:, 0], tokens[:, 0]), dim=-1)
                else:
                    out = self.norm(tokens)
                    camera = tokens[:, 0]
                out = out[:, 1:]
                if restore is not None:
                    out = _take_views(out.reshape(b, views, *out.shape[1:]), restore)
                    out = out.reshape(b * views, *out.shape[2:])
                    camera = _take_views(camera.reshape(b, views, -1), restore)
                    camera = camera.reshape(b * views, -1)
                maps.append(out)
            if index == config.out_layers[-1]:
                break
        return WindowFeatures(maps, camera.reshape(b, views, -1), chosen)

    def _camera_tokens(self, windows: int, views: int, known: torch.Tensor | None) -> torch.Tensor:
        """(B*S, 1, C): the prefix tokens from block ``alt_start`` on."""
        if known is not None:
            if tuple(known.shape) != (windows, views, self.config.embed_dim):
                raise ValueError(
                    f"camera tokens must be ({windows}, {views}, {self.config.embed_dim}), "
                    f"got {tuple(known.shape)}"
                )
            return known.reshape(windows * views, 1, -1)
        ref = self.camera_token[:, :1].expand(windows, 1, -1)
        if views == 1:
            return ref
        others = self.camera_token[:, 1:].expand(windows, views - 1, -1)
        return torch.cat((ref, others), dim=1).reshape(windows * views, 1, -1)

    @staticmethod
    def _run_block(
        block: nn.Module, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        """One pre-norm transformer block; RoPE blocks are walked through their parts."""
        if not isinstance(block.attn, RopeAttention):
            return block(x)
        blk: Any = block
        x = x + blk.ls1(blk.attn(blk.norm1(x), rope))
        return x + blk.ls2(blk.mlp(blk.norm2(x)))


class _ModuleHolder(nn.Module):
    """A parent that only names its children (``backbone.pretrained`` in the keys)."""


# --------------------------------------------------------------------------- head


def uv_position_embedding(
    channels: int, grid_hw: tuple[int, int], aspect_ratio: float, device: torch.device
) -> torch.Tensor:
    """The any-view head's position embedding for a (h, w) map, scaled by 0.1.

    UV coordinates span the image plane normalised by its diagonal: u from -s_x to s_x
    (cell centres, s_x = ar / sqrt(ar^2 + 1) times (w - 1) / w), v likewise with
    1 / sqrt(ar^2 + 1). Each coordinate gets ``channels / 2`` sinusoids
    ([sin, cos] at frequencies 100^(-2k / (channels / 2))): u's first, then v's.

    Args:
        channels: embedding width (a multiple of 4).
        grid_hw: (h, w) of the map.
        aspect_ratio: width / height of the network input.
        device: where the embedding lives.

    Returns:
        (1, channels, h, w) float32.
    """
    h, w = int(grid_hw[0]), int(grid_hw[1])
    diagonal = (aspect_ratio**2 + 1.0) ** 0.5
    span_u, span_v = aspect_ratio / diagonal, 1.0 / diagonal
    u = torch.linspace(-span_u * (w - 1) / w, span_u * (w - 1) / w, w, dtype=torch.float32)
    v = torch.linspace(-span_v * (h - 1) / h, span_v * (h - 1) / h, h, dtype=torch.float32)
    u_grid = u[None, :].expand(h, w).reshape(-1)
    v_grid = v[:, None].expand(h, w).reshape(-1)
    quarter = channels // 4
    omega = torch.arange(quarter, dtype=torch.float32) / (channels // 2 / 2.0)
    omega = 1.0 / _UV_EMBED_BASE**omega
    parts = []
    for coordinate in (u_grid, v_grid):
        angles = coordinate[:, None] * omega[None, :]
        parts += [angles.sin(), angles.cos()]
    embedding = torch.cat(parts, dim=-1).reshape(h, w, channels) * _UV_EMBED_RATIO
    return embedding.permute(2, 0, 1)[None].to(device)


class CoarsestFusionBlock(nn.Module):
    """The fusion block of the coarsest level: no skip input, so no ``resConfUnit1``.

    ``out = out_conv(up(resConfUnit2(x)))``, bilinear with align_corners=True.

    Args:
        features: channels in and out.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """(B, C, h, w) -> (B, C, *size) (default twice the input); ``skip`` must be None."""
        if skip is not None:
            raise ValueError("the coarsest fusion block takes no skip input")
        out = self.resConfUnit2(x)
        if size is None:
            size = (out.shape[-2] * 2, out.shape[-1] * 2)
        out = F.interpolate(
            out, size=tuple(int(s) for s in size), mode="bilinear", align_corners=True
        )
        return self.out_conv(out)


def _make_fusion_scratch(channels: Sequence[int], features: int) -> nn.Module:
    scratch = make_scratch(channels, features)
    scratch.refinenet4 = CoarsestFusionBlock(features)
    return scratch


def _output_branch(features: int, outputs: int) -> nn.Sequential:
    """3x3 conv to 32 channels, ReLU, 1x1 conv (keys ``0`` and ``2``)."""
    return nn.Sequential(
        nn.Conv2d(features // 2, _HEAD_HIDDEN, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(_HEAD_HIDDEN, outputs, kernel_size=1),
    )


class _ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class _ChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


class Da3Head(nn.Module):
    """The DPT head of Depth Anything 3 (the reference's ``head``).

    ``dual_dpt`` (any-view types): LayerNorm on the tokens, UV position embeddings,
    outputs depth = exp(x0) and confidence = 1 + exp(x1). Its ray branch
    (``*_aux`` modules) is loaded but not run: depth and confidence do not depend on it.
    ``sky_dpt`` (mono / metric): no token norm, no position embeddings, outputs
    depth = exp(x) and sky = ReLU(s).

    Args:
        config: the type.
    """

    def __init__(self, config: Da3Config) -> None:
        super().__init__()
        self.kind = config.head
        if self.kind not in (DUAL_DPT, SKY_DPT):
            raise ValueError(f"unknown head {self.kind!r}; valid: {DUAL_DPT}, {SKY_DPT}")
        dim_in, features = config.head_dim_in, config.features
        self.norm: nn.Module = nn.LayerNorm(dim_in) if self.kind == DUAL_DPT else nn.Identity()
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, kernel_size=1) for c in config.channels)
        self.resize_layers = nn.ModuleList(
            make_resample(c, f) or nn.Identity()
            for c, f in zip(config.channels, REASSEMBLE_FACTORS, strict=True)
        )
        s: Any = _make_fusion_scratch(config.channels, features)
        s.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        if self.kind == DUAL_DPT:
            s.output_conv2 = _output_branch(features, 2)
            for i in (1, 2, 3):
                s.add_module(f"refinenet{i}_aux", FeatureFusionBlock(features))
            s.refinenet4_aux = CoarsestFusionBlock(features)
            s.output_conv1_aux = nn.ModuleList(self._ray_neck(features) for _ in range(4))
            s.output_conv2_aux = nn.ModuleList(self._ray_output(features) for _ in range(4))
        else:
            s.output_conv2 = _output_branch(features, 1)
            s.sky_output_conv2 = _output_branch(features, 1)
        self.scratch = s

    @staticmethod
    def _ray_neck(features: int) -> nn.Sequential:
        widths = (features, features // 2, features, features // 2, features, features // 2)
        return nn.Sequential(
            *(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:]))
        )

    @staticmethod
    def _ray_output(features: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(features // 2, _HEAD_HIDDEN, 3, padding=1),
            _ChannelsLast(),
            nn.LayerNorm(_HEAD_HIDDEN),
            _ChannelsFirst(),
            nn.ReLU(),
            nn.Conv2d(_HEAD_HIDDEN, _RAY_OUTPUTS, kernel_size=1),
        )

    def forward(
        self, maps: Sequence[torch.Tensor], grid_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Four (B, h*w, C') token maps on an (h, w) grid -> two (B, 14h, 14w) maps:
        (depth, confidence) for ``dual_dpt``, (depth, sky) for ``sky_dpt``."""
        h, w = int(grid_hw[0]), int(grid_hw[1])
        aspect_ratio = w / h
        with_uv = self.kind == DUAL_DPT
        resampled = []
        for i, tokens in enumerate(maps):
            x = self.norm(tokens)
            x = x.transpose(1, 2).reshape(x.shape[0], x.shape[-1], h, w)
            x = self.projects[i](x)
            if with_uv:
                x = x + uv_position_embedding(x.shape[1], (h, w), aspect_ratio, x.device)
            resampled.append(self.resize_layers[i](x))
        s: Any = self.scratch
        out = s.output_conv1(fuse(s, resampled))
        size = (h * PATCH_SIZE, w * PATCH_SIZE)
        out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        if with_uv:
            out = out + uv_position_embedding(out.shape[1], size, aspect_ratio, out.device)
            logits = s.output_conv2(out)
            return torch.exp(logits[:, 0]), torch.exp(logits[:, 1]) + 1
        depth = torch.exp(s.output_conv2(out)[:, 0])
        return depth, torch.relu(s.sky_output_conv2(out)[:, 0])


# --------------------------------------------------------------------------- cameras


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (x, y, z, w; any norm) -> (..., 3, 3) rotation matrices."""
    i, j, k, r = quaternion.unbind(-1)
    two_s = 2.0 / (quaternion * quaternion).sum(-1)
    rows = (
        1 - two_s * (j * j + k * k),
        two_s * (i * j - k * r),
        two_s * (i * k + j * r),
        two_s * (i * j + k * r),
        1 - two_s * (i * i + k * k),
        two_s * (j * k - i * r),
        two_s * (i * k - j * r),
        two_s * (j * k + i * r),
        1 - two_s * (i * i + j * j),
    )
    return torch.stack(rows, -1).reshape(quaternion.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (x, y, z, w), w >= 0.

    Of the four ways to read the quaternion off the matrix (each dividing by one
    component's magnitude), the one with the largest divisor is taken, as the
    reference does (its divisor floored at 0.1).
    """
    m = matrix.reshape(matrix.shape[:-2] + (9,)).unbind(-1)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    squares = torch.stack(
        (
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ),
        dim=-1,
    )
    magnitude = torch.where(squares > 0, squares.clamp(min=0).sqrt(), torch.zeros_like(squares))
    # candidate q as (w, x, y, z), each times 2 * its own largest component
    candidates = torch.stack(
        (
            torch.stack((magnitude[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01), -1),
            torch.stack((m21 - m12, magnitude[..., 1] ** 2, m10 + m01, m02 + m20), -1),
            torch.stack((m02 - m20, m10 + m01, magnitude[..., 2] ** 2, m12 + m21), -1),
            torch.stack((m10 - m01, m20 + m02, m21 + m12, magnitude[..., 3] ** 2), -1),
        ),
        dim=-2,
    )
    floor = torch.tensor(0.1, dtype=magnitude.dtype, device=magnitude.device)
    candidates = candidates / (2.0 * magnitude[..., None].max(floor))
    best = magnitude.argmax(dim=-1)
    index = best[..., None, None].expand(best.shape + (1, 4))
    wxyz = torch.gather(candidates, -2, index)[..., 0, :]
    xyzw = torch.cat((wxyz[..., 1:], wxyz[..., :1]), dim=-1)
    return torch.where(xyzw[..., 3:4] < 0, -xyzw, xyzw)


def invert_rigid(transform: torch.Tensor) -> torch.Tensor:
    """(..., 3, 4) [R | t] -> (..., 3, 4) [R^T | -R^T t] (camera-to-world <->
    camera-from-world)."""
    rotation_t = transform[..., :3, :3].mT
    return torch.cat((rotation_t, -rotation_t @ transform[..., :3, 3:]), dim=-1)


def pose_encoding_to_cameras(
    pose_encoding: torch.Tensor, image_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The camera decoder's output -> cameras, as the reference decodes it.

    Args:
        pose_encoding: (B, S, 9): translation (3) and quaternion (x, y, z, w) of the
            camera-to-world transform, then the vertical and horizontal field of view
            (radians).
        image_hw: (H, W) of the network input (pixels).

    Returns:
        camera_from_world: (B, S, 3, 4) float32 [R | t], OpenCV axes (x right, y down,
            z forward), x_camera = R x_world + t;
        intrinsics: (B, S, 3, 3) float32 pixels of the network input: fx = W / 2 /
            tan(fov_w / 2), fy likewise with H (tan floored at 1e-6), principal point at
            (W / 2, H / 2).
    """
    height, width = int(image_hw[0]), int(image_hw[1])
    translation = pose_encoding[..., :3]
    rotation = quaternion_to_matrix(pose_encoding[..., 3:7])
    camera_to_world = torch.cat((rotation, translation[..., None]), dim=-1)
    fy = (height / 2.0) / torch.clamp(torch.tan(pose_encoding[..., 7] / 2.0), 1e-6)
    fx = (width / 2.0) / torch.clamp(torch.tan(pose_encoding[..., 8] / 2.0), 1e-6)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    intrinsics = torch.stack(
        (
            torch.stack((fx, zero, zero + width / 2), -1),
            torch.stack((zero, fy, zero + height / 2), -1),
            torch.stack((zero, zero, one), -1),
        ),
        dim=-2,
    )
    return invert_rigid(camera_to_world), intrinsics


def cameras_to_pose_encoding(
    camera_from_world: torch.Tensor, intrinsics: torch.Tensor, image_hw: tuple[int, int]
) -> torch.Tensor:
    """Known cameras -> the camera encoder's input, as the reference encodes them.

    Args:
        camera_from_world: (B, S, 3, 4) or (B, S, 4, 4), OpenCV axes.
        intrinsics: (B, S, 3, 3) pixels of the network input.
        image_hw: (H, W) of the network input.

    Returns:
        (B, S, 9) float32: camera-to-world translation and quaternion (x, y, z, w),
        vertical and horizontal field of view (radians) from fy and fx.
    """
    height, width = int(image_hw[0]), int(image_hw[1])
    camera_to_world = invert_rigid(camera_from_world[..., :3, :])
    quaternion = matrix_to_quaternion(camera_to_world[..., :3, :3])
    fov_h = 2 * torch.atan((height / 2) / intrinsics[..., 1, 1])
    fov_w = 2 * torch.atan((width / 2) / intrinsics[..., 0, 0])
    return torch.cat(
        (camera_to_world[..., :3, 3], quaternion, fov_h[..., None], fov_w[..., None]), dim=-1
    ).float()


class CameraDecoder(nn.Module):
    """The any-view types' camera decoder (``cam_dec``): the last feature map's camera
    token -> a pose encoding (translation 3, quaternion 4, field of view 2 (ReLU)).

    Args:
        dim_in: camera token width (2C).
    """

    def __init__(self, dim_in: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(dim_in, dim_in), nn.ReLU(), nn.Linear(dim_in, dim_in), nn.ReLU()
        )
        self.fc_t = nn.Linear(dim_in, 3)
        self.fc_qvec = nn.Linear(dim_in, 4)
        self.fc_fov = nn.Sequential(nn.Linear(dim_in, 2), nn.ReLU())

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        """(..., dim_in) -> (..., 9): [t (3), qvec (4), fov (2)], see
        :func:`pose_encoding_to_cameras`."""
        hidden = self.backbone(camera)
        return torch.cat((self.fc_t(hidden), self.fc_qvec(hidden), self.fc_fov(hidden)), dim=-1)


class CameraEncoder(nn.Module):
    """The any-view types' camera encoder (``cam_enc``): known cameras -> camera tokens
    that take the learned camera token's place (the conditioned forward).

    A pose encoding (:func:`cameras_to_pose_encoding`) goes through an MLP to the token
    width, a LayerNorm, transformer blocks attending across the window's views, and a
    last LayerNorm.

    Args:
        dim: token width C.
        depth: transformer blocks (4).
        num_heads: their heads (16).
        pose_dim: pose encoding width (9).
    """

    def __init__(self, dim: int, depth: int = 4, num_heads: int = 16, pose_dim: int = 9) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            *(
                Block(dim, num_heads, qkv_bias=True, init_values=0.01, norm_layer=nn.LayerNorm)
                for _ in range(depth)
            )
        )
        self.token_norm = nn.LayerNorm(dim)
        self.trunk_norm = nn.LayerNorm(dim)
        self.pose_branch = Mlp(pose_dim, dim // 2, dim)

    def forward(
        self, camera_from_world: torch.Tensor, intrinsics: torch.Tensor, image_hw: tuple[int, int]
    ) -> torch.Tensor:
        """(B, S, 3 or 4, 4) camera-from-world and (B, S, 3, 3) intrinsics on the network
        input of (H, W) = ``image_hw`` -> (B, S, C) camera tokens."""
        encoding = cameras_to_pose_encoding(camera_from_world, intrinsics, image_hw)
        tokens = self.token_norm(self.pose_branch(encoding))
        return self.trunk_norm(self.trunk(tokens))


# --------------------------------------------------------------------------- network


class WindowOutput(NamedTuple):
    """What :meth:`DepthAnything3.forward_window` gives for B windows of S views.

    Attributes:
        depth: (B, S, H, W) float32 depth (exp of the head's output, > 0), larger =
            farther, in the window's own unit (that of ``camera_from_world``'s
            translations).
        confidence: (B, S, H, W) float32, 1 + exp, > 1.
        camera_from_world: (B, S, 3, 4) float32 [R | t], OpenCV axes, in the window's
            world (the network's).
        intrinsics: (B, S, 3, 3) float32 pixels of the network input.
        reference_view: (B,) int64, the view the backbone took as its reference.
    """

    depth: torch.Tensor
    confidence: torch.Tensor
    camera_from_world: torch.Tensor
    intrinsics: torch.Tensor
    reference_view: torch.Tensor


class DepthAnything3(nn.Module):
    """Depth Anything 3 on one image, or (any-view types) on windows of views.

    Args:
        model_type: a key of :data:`DA3_CONFIGS`, or a :class:`Da3Config`.
    """

    def __init__(self, model_type: str | Da3Config = "depth_anything_3_small") -> None:
        super().__init__()
        self.config = (
            model_type if isinstance(model_type, Da3Config) else get_da3_config(model_type)
        )
        self.backbone = _ModuleHolder()
        self.backbone.pretrained = Da3Encoder(self.config)
        self.head = Da3Head(self.config)
        self.cam_dec: CameraDecoder | None = None
        self.cam_enc: CameraEncoder | None = None
        if self.config.alt_start >= 0:
            self.cam_dec = CameraDecoder(self.config.head_dim_in)
            self.cam_enc = CameraEncoder(self.config.embed_dim)

    @property
    def output_names(self) -> tuple[str, str]:
        """(``depth``, ``confidence``) or (``depth``, ``sky``)."""
        return self.config.output_names

    def forward_features(self, x: torch.Tensor) -> EncoderFeatures:
        """The encoder alone: (B, 3, H, W) -> the head's inputs and the camera token."""
        encoder: Any = self.backbone.pretrained
        return encoder(x)

    @property
    def has_windows(self) -> bool:
        """Any-view types: several views per forward (:meth:`forward_window`)."""
        return self.cam_dec is not None

    def camera_pose(self, camera: torch.Tensor) -> torch.Tensor:
        """Any-view types: (..., 2C) camera token -> (..., 9) pose encoding (the
        reference's ``cam_dec`` output, before its conversion to extrinsics and
        intrinsics)."""
        if self.cam_dec is None:
            raise ValueError(f"{self.config.name} has no camera decoder")
        return self.cam_dec(camera)

    def forward_window(
        self,
        x: torch.Tensor,
        camera_from_world: torch.Tensor | None = None,
        intrinsics: torch.Tensor | None = None,
        reference_view: str = "saddle_balanced",
        prefix: ViewPrefix | None = None,
    ) -> WindowOutput:
        """Any-view types on B windows of S views (the reference's
        ``DepthAnything3Net.forward(x, extrinsics, intrinsics, ref_view_strategy=...)``
        without ray pose or Gaussians).

        Args:
            x: (B, S, 3, H, W) ImageNet-normalised RGB, H and W multiples of 14.
            camera_from_world: known cameras, (B, S, 3, 4) or (B, S, 4, 4), OpenCV axes
                (with ``intrinsics``): they condition the forward through the camera
                encoder, and no reference view is chosen; None: the network estimates
                them.
            intrinsics: (B, S, 3, 3) pixels of the network input, with
                ``camera_from_world``.
            reference_view: see :data:`REFERENCE_VIEW_STRATEGIES` (windows of 3 views
                or more).
            prefix: the B*S views' :meth:`Da3Encoder.view_prefix` where the caller kept
                them from earlier windows; None: computed from ``x``.

        Returns:
            :class:`WindowOutput`; the cameras are always the camera decoder's
            estimate, known cameras or not (as the reference's).
        """
        if self.cam_dec is None or self.cam_enc is None:
            raise ValueError(f"{self.config.name} sees one view at a time: it has no windows")
        if x.ndim != 5:
            raise ValueError(f"a window is (B, S, 3, H, W), got {tuple(x.shape)}")
        if (camera_from_world is None) != (intrinsics is None):
            raise ValueError("known cameras need both camera_from_world and intrinsics")
        image_hw = (int(x.shape[-2]), int(x.shape[-1]))
        tokens = None
        if camera_from_world is not None and intrinsics is not None:
            tokens = self.cam_enc(camera_from_world.float(), intrinsics.float(), image_hw)
        encoder: Any = self.backbone.pretrained
        found: WindowFeatures = encoder.forward_views(x, tokens, reference_view, prefix)
        b, views = x.shape[:2]
        grid_hw = (image_hw[0] // PATCH_SIZE, image_hw[1] // PATCH_SIZE)
        depth, confidence = self.head(found.maps, grid_hw)
        extrinsics, k = pose_encoding_to_cameras(self.cam_dec(found.camera), image_hw)
        return WindowOutput(
            depth.reshape(b, views, *image_hw),
            confidence.reshape(b, views, *image_hw),
            extrinsics,
            k,
            found.reference_view,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) ImageNet-normalised RGB, H and W multiples of 14 -> two (B, H, W)
        float32 maps named by :attr:`output_names`:

        - ``depth``: exp of the head's output, > 0. Any-view types: depth up to one scale
          per image; mono: relative depth; metric: metres times 300 / focal (pixels of
          the network input), see ``da3_transforms.metric_depth``. Sky pixels are not
          filled (``da3_transforms.fill_sky`` does what the reference's forward does).
        - ``confidence`` (any-view): 1 + exp, > 1.
        - ``sky`` (mono / metric): ReLU output, >= 0; sky where >= 0.3.
        """
        grid_hw = (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE)
        return self.head(self.forward_features(x).maps, grid_hw)


class DepthAnything3Stacked(nn.Module):
    """:class:`DepthAnything3` with one output, for the predictor's runtimes and exports.

    The network sits under ``model``, so the state_dict has the hub file's key layout
    (``model.`` then the network's names) and loads from ``model.safetensors`` as it is.

    Args:
        model_type: a key of :data:`DA3_CONFIGS`.
    """

    def __init__(self, model_type: str = "depth_anything_3_small") -> None:
        super().__init__()
        self.model = DepthAnything3(model_type)

    @property
    def output_names(self) -> tuple[str, str]:
        """What channels 0 and 1 of the output are."""
        return self.model.output_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) as :meth:`DepthAnything3.forward` -> (B, 2, H, W): channel 0 the
        depth, channel 1 the confidence or the sky map (:attr:`output_names`)."""
        depth, second = self.model(x)
        return torch.stack((depth, second), dim=1)


class DepthAnything3Window(nn.Module):
    """:meth:`DepthAnything3.forward_window` with a fixed reference-view strategy and
    plain tensor outputs, for exports of a window of fixed size.

    Args:
        network: an any-view :class:`DepthAnything3` (or the
            :class:`DepthAnything3Stacked` around it).
        reference_view: see :data:`REFERENCE_VIEW_STRATEGIES`.
        known_cameras: the forward takes known cameras too (``camera_from_world``
            (B, S, 4, 4) and ``intrinsics`` (B, S, 3, 3), as
            :meth:`DepthAnything3.forward_window`); no reference view is then chosen.
    """

    #: The outputs, in order.
    output_names = ("depth", "confidence", "camera_from_world", "intrinsics", "reference_view")

    def __init__(
        self,
        network: nn.Module,
        reference_view: str = "saddle_balanced",
        known_cameras: bool = False,
    ) -> None:
        super().__init__()
        self.known_cameras = known_cameras
        model = getattr(network, "model", network)
        if not isinstance(model, DepthAnything3) or not model.has_windows:
            raise ValueError("windows need an any-view Depth Anything 3 network")
        if reference_view not in REFERENCE_VIEW_STRATEGIES:
            raise ValueError(
                f"unknown reference view strategy {reference_view!r}; valid: "
                f"{', '.join(REFERENCE_VIEW_STRATEGIES)}"
            )
        self.model = model
        self.reference_view = reference_view

    @property
    def input_names(self) -> tuple[str, ...]:
        """The inputs, in order: the views, then the known cameras where taken (named
        apart from the outputs of the same content: ONNX names are unique)."""
        if self.known_cameras:
            return ("input", "known_camera_from_world", "known_intrinsics")
        return ("input",)

    def forward(
        self,
        x: torch.Tensor,
        camera_from_world: torch.Tensor | None = None,
        intrinsics: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """(B, S, 3, H, W) (and the known cameras) -> the fields of
        :class:`WindowOutput`, in :attr:`output_names` order."""
        if self.known_cameras != (camera_from_world is not None):
            raise ValueError(
                "this window forward takes known cameras"
                if self.known_cameras
                else "this window forward estimates the cameras: it takes none"
            )
        return tuple(
            self.model.forward_window(
                x, camera_from_world, intrinsics, reference_view=self.reference_view
            )
        )
