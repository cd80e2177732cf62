"""VGGT (Wang et al., CVPR 2025): windows of views with their cameras, one type
(``vggt_1b``, about 1.19 B parameters without the track head).

The network is :mod:`dpt_ros.models.network.vggt`. A window of N views runs in one
forward (:meth:`VggtFamily.forward_window`): depth (larger = farther, the window's own
unit) with its confidence, each view's camera (view 0 is the world) and point map. A
single image is a window of one view; its depth becomes relative inverse depth as Depth
Anything 3's relative types' does.

Images are prepared on the CPU by Pillow as the reference's ``load_and_preprocess_images``
does, with its 518 generalised to the network size N (a multiple of 14;
:func:`preprocess_views`): ``crop`` (the reference's default) resizes the width to N
and the height to ``round(h * N / w / 14) * 14`` (bicubic), then centre-crops a height
above N to N; ``pad`` resizes the longer side to N and pads the other with white to a
square. Views that come out of different sizes are padded with white to the largest.
RGB stays in [0, 1]: the network normalises it.

Weights: the official ``model.pt`` or ``model.safetensors`` of ``facebook/VGGT-1B``
(non-commercial, CC-BY-NC-4.0) or ``facebook/VGGT-1B-Commercial`` (the VGGT License:
commercial use allowed, military use excluded). Their ``track_head.*`` entries (point
tracking, not run here) are skipped by name; any other key outside the layout refuses
the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dpt_ros.models.family import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RELATIVE_INVERSE_DEPTH,
    ModelFamily,
    ModelSpec,
    Prediction,
    ViewCache,
    WindowCameras,
    resize_depth_and_maps,
)

if TYPE_CHECKING:  # annotations only: the registry imports this file without torch
    import torch
    from torch import nn

_LOG = logging.getLogger(__name__)

#: The reference's network size: the width of ``crop``, the side of ``pad``.
VGGT_SIZE = 518
#: Patch side: network inputs are multiples of it.
PATCH = 14
#: The preprocessing modes.
CROP = "crop"
PAD = "pad"
MODES = (CROP, PAD)
#: The official files' point-tracking head: skipped by name.
TRACK_HEAD_PREFIX = "track_head."
#: Keys that only a VGGT state_dict has.
_VGGT_MARKERS = (
    "aggregator.frame_blocks.0.norm1.weight",
    "aggregator.global_blocks.0.norm1.weight",
)
#: The hub repository of the checkpoint that allows commercial use.
COMMERCIAL_REPO = "facebook/VGGT-1B-Commercial"


def is_vggt_state_dict(keys: Sequence[str] | Mapping[str, Any]) -> bool:
    """Whether a state_dict's keys are VGGT's (its aggregator's alternating blocks)."""
    names = set(keys)
    return all(marker in names for marker in _VGGT_MARKERS)


def without_track_head(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A VGGT state_dict without its ``track_head.*`` entries; any other as it is."""
    if not is_vggt_state_dict(state_dict):
        return dict(state_dict)
    return {k: v for k, v in state_dict.items() if not k.startswith(TRACK_HEAD_PREFIX)}


# --------------------------------------------------------------------------- images


def preprocessed_size(image_hw: Sequence[int], size: int, mode: str = CROP) -> tuple[int, int]:
    """(h, w) a view of (H, W) = ``image_hw`` is resized to before cropping or padding.

    Args:
        image_hw: the view's size (pixels).
        size: the network size N (the reference's 518), a multiple of 14.
        mode: ``crop`` or ``pad``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown VGGT preprocessing mode {mode!r}; valid: {', '.join(MODES)}")
    if size <= 0 or size % PATCH:
        raise ValueError(f"VGGT's network size must be a positive multiple of {PATCH}, got {size}")
    height, width = int(image_hw[0]), int(image_hw[1])
    if mode == PAD and height > width:
        return size, round(width * (size / height) / PATCH) * PATCH
    return round(height * (size / width) / PATCH) * PATCH, size


def input_size(image_hw: Sequence[int], size: int, mode: str = CROP) -> tuple[int, int]:
    """(h, w) of the network input of one view (before padding to a window's largest)."""
    if mode == PAD:
        preprocessed_size(image_hw, size, mode)  # validates
        return size, size
    height, width = preprocessed_size(image_hw, size, mode)
    return min(height, size), width


def _pad_white(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, h, w) -> (3, height, width), centred (the odd pixel after), padded with 1."""
    dh, dw = height - x.shape[1], width - x.shape[2]
    if dh == 0 and dw == 0:
        return x
    top, left = dh // 2, dw // 2
    out = np.ones((3, height, width), dtype=x.dtype)
    out[:, top : top + x.shape[1], left : left + x.shape[2]] = x
    return out


def preprocess_views(views: Sequence[np.ndarray], size: int, mode: str = CROP) -> np.ndarray:
    """Views -> VGGT's network input, as the reference prepares them (see the module).

    Args:
        views: (H, W, 3) uint8 RGB arrays, sizes may differ.
        size: the network size N, a multiple of 14.
        mode: ``crop`` or ``pad``.

    Returns:
        (S, 3, h, w) float32 RGB in [0, 1]; views that differ in size after cropping or
        padding are padded with white (1.0) to the largest height and width.
    """
    # Pillow on first use: the registry imports this file at start-up
    from PIL import Image

    out = []
    for rgb in views:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"views must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        height, width = preprocessed_size(rgb.shape[:2], size, mode)
        resized = Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC)
        x = np.asarray(resized).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
        if mode == CROP and height > size:
            top = (height - size) // 2
            x = x[:, top : top + size]
        if mode == PAD:
            x = _pad_white(x, size, size)
        out.append(x)
    if not out:
        raise ValueError("VGGT needs at least one view, got none")
    height = max(x.shape[1] for x in out)
    width = max(x.shape[2] for x in out)
    return np.stack([_pad_white(np.ascontiguousarray(x), height, width) for x in out])


def network_boxes(
    images_hw: Sequence[Sequence[int]], size: int, mode: str, grid_hw: Sequence[int]
) -> np.ndarray:
    """The region of each view's image that the network grid covers, as
    :func:`preprocess_views` places it.

    Args:
        images_hw: each view's (H, W).
        size: the network size N.
        mode: ``crop`` or ``pad``.
        grid_hw: (h, w) of the network input (the window's largest view).

    Returns:
        (S, 4) float64 ``x0, y0, x1, y1`` in input pixels (pixel edges): network column
        0's left edge lies at x0 and column w's at x1 (likewise rows). Beyond the image
        (x0 < 0 or x1 > W after padding) the grid holds white padding.
    """
    grid_h, grid_w = int(grid_hw[0]), int(grid_hw[1])
    boxes = []
    for hw in images_hw:
        big_h, big_w = float(hw[0]), float(hw[1])
        height, width = preprocessed_size(hw, size, mode)
        crop_top = (height - size) // 2 if mode == CROP and height > size else 0
        # the view's own canvas (cropped, or padded to the square), then centred on the grid
        view_h = size if mode == PAD else min(height, size)
        view_w = size if mode == PAD else width
        pad_top = (size - height) // 2 if mode == PAD else 0
        pad_left = (size - width) // 2 if mode == PAD else 0
        top = (grid_h - view_h) // 2 + pad_top
        left = (grid_w - view_w) // 2 + pad_left
        sy, sx = big_h / height, big_w / width  # input pixels per resized pixel
        y0 = (crop_top - top) * sy
        x0 = -left * sx
        boxes.append((x0, y0, x0 + grid_w * sx, y0 + grid_h * sy))
    return np.asarray(boxes, dtype=np.float64)


# --------------------------------------------------------------------------- family


class VggtFamily(ModelFamily):
    """VGGT: multiples of 14, the reference's ``crop`` sizing (width at the network
    size), preprocessing by Pillow on the CPU, windows of views with their cameras."""

    name = "vggt"
    title = "VGGT"
    weight_markers = ("aggregator.", "camera_head.")
    window_modes = MODES
    size_multiple = PATCH
    resize_method = "upper_bound"
    output_interpolation = "inverse_depth"
    reference = ""  # single images: no comparison yet (windows: dpt-ros bench --window)
    # 1.19 B parameters (4.8 GB in fp32) exceed ONNX's 2 GB protobuf: the weights go to
    # model.onnx.data, which the engine cache digests with the graph. The export is
    # proven on a reduced configuration of the same blocks and heads
    # (test/export/test_vggt_window_engine.py); vggt_1b itself was never exported in
    # this project (minutes and many GB: docs/speed.md). So backend auto builds nothing
    # for it: it loads an engine built on purpose (backend onnxruntime, dpt-ros export).
    engines = True
    external_data = True
    auto_builds = False
    auto_build_reason = (
        "its full-size export was proven only on a reduced configuration and needs several "
        "times its 4.8 GB of weights in memory"
    )

    def cache_subdir(self, spec: ModelSpec) -> str:
        """``model.pt`` is a common name: a folder of its own."""
        return spec.hub_repo.rsplit("/", 1)[-1]

    def build(self, spec: ModelSpec) -> nn.Module:
        """:class:`~dpt_ros.models.network.vggt.VggtSingleView`: single images give
        (B, 2, h, w) depth and confidence; windows run through its ``window``."""
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models.network.vggt import VggtSingleView

        _LOG.info(
            "%s: weights %s are %s (non-commercial); %s allows commercial use",
            spec.name,
            spec.hub_repo,
            spec.licence,
            COMMERCIAL_REPO,
        )
        return VggtSingleView().eval()

    def file_keys(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        return without_track_head(state_dict)

    def input_size(
        self,
        spec: ModelSpec,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        keep_aspect_ratio: bool,
    ) -> tuple[int, int]:
        """The reference's ``crop`` sizing with the width of ``net_hw`` as its 518;
        without ``keep_aspect_ratio`` ``net_hw`` itself."""
        if not keep_aspect_ratio:
            return int(net_hw[0]), int(net_hw[1])
        return input_size(image_hw, int(net_hw[1]), CROP)

    def preprocess(
        self,
        spec: ModelSpec,
        images: torch.Tensor,
        input_hw: Sequence[int],
        net_hw: Sequence[int],
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> torch.Tensor:
        """Pillow on the CPU (:func:`preprocess_views`, ``crop``): a host tensor of RGB
        in [0, 1] (the network normalises). ``input_hw`` other than the crop rule's
        (a fixed engine input) resizes to it directly."""
        # torch on first use: the registry imports this file at start-up
        import torch

        host = images.cpu().numpy()
        width = int(input_hw[1])
        x = preprocess_views(list(host), width, CROP)
        if tuple(x.shape[-2:]) != (int(input_hw[0]), int(input_hw[1])):
            raise ValueError(
                f"VGGT's crop sizing gives {tuple(x.shape[-2:])} for these images, not "
                f"{tuple(input_hw)}"
            )
        return torch.from_numpy(x)

    def window_input(
        self,
        spec: ModelSpec,
        images: torch.Tensor,
        input_hw: Sequence[int],
        net_hw: Sequence[int],
        mean: torch.Tensor,
        std: torch.Tensor,
        mode: str | None = None,
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """:func:`preprocess_views` in ``mode`` (None: ``crop``, the reference's
        default) at the width of ``net_hw``, and :func:`network_boxes`. ``crop`` keeps
        :meth:`preprocess`'s sizing (``input_hw``); ``pad`` makes the square of that
        width."""
        # torch on first use: the registry imports this file at start-up
        import torch

        mode = CROP if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"unknown VGGT preprocessing mode {mode!r}; valid: {', '.join(MODES)}")
        host = images.cpu().numpy()
        if mode == CROP:
            x = self.preprocess(spec, images, input_hw, net_hw, mean, std)
        else:
            x = torch.from_numpy(preprocess_views(list(host), int(net_hw[1]), mode))
        size = int(net_hw[1]) if mode == PAD else int(input_hw[1])
        boxes = network_boxes([v.shape[:2] for v in host], size, mode, x.shape[-2:])
        return x, boxes

    def decode(
        self,
        spec: ModelSpec,
        raw: torch.Tensor,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        fill_sky: bool = False,
    ) -> Prediction:
        """(B, 2, h, w) depth and confidence of single views -> relative inverse depth
        (the inverse of VGGT's depth, which grows with distance) and ``confidence``
        (1 + exp, > 1)."""
        out = raw.float()
        return Prediction(inverse_depth=1.0 / out[:, 0], confidence=out[:, 1])

    def forward_window(
        self,
        spec: ModelSpec,
        network: nn.Module,
        x: torch.Tensor,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        camera_from_world: np.ndarray | None = None,
        intrinsics: np.ndarray | None = None,
        reference_view: str = "saddle_balanced",
        view_keys: Sequence[Hashable] | None = None,
        cache: ViewCache | None = None,
    ) -> Prediction:
        """One window of N views (:func:`window_prediction`). VGGT has no reference-view
        choice (view 0 is always the world: ``reference_view`` is ignored) and takes no
        known cameras. It keeps nothing between windows yet (``view_keys`` and ``cache``
        are ignored): its per-frame DINOv2 patch embedding could be kept, its
        aggregator alternates frame and global attention from the first block on."""
        if camera_from_world is not None or intrinsics is not None:
            raise ValueError("VGGT estimates the cameras itself: it takes no known cameras")
        # the torch network, or a window engine (window_runtimes) with the same window()
        model: Any = network
        return window_prediction(model.window(x[None]), tuple(x.shape[-2:]))

    def window_module(
        self, spec: ModelSpec, network: nn.Module, reference_view: str, known_cameras: bool
    ) -> nn.Module:
        """:class:`~dpt_ros.models.network.vggt.VggtWindow`: the raw outputs (the pose
        encoding is decoded outside the graph, as for PyTorch: :func:`window_prediction`).
        ``reference_view`` changes nothing (view 0 is the world)."""
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models.network.vggt import VggtWindow

        if known_cameras:
            raise ValueError("VGGT estimates the cameras itself: it takes no known cameras")
        return VggtWindow(network)

    def resize(self, spec: ModelSpec, prediction: Prediction, size_hw: Sequence[int]) -> Prediction:
        """Depth as the geometry resizes it (bilinear in inverse depth), confidence
        bilinearly, both with ``align_corners=False``."""
        return resize_depth_and_maps(spec, prediction, size_hw)

    def window_forward(self, spec: ModelSpec, network: nn.Module) -> Callable[[torch.Tensor], Any]:
        """The network's ``window``: the raw outputs, pose encoding not decoded."""
        model: Any = network
        return model.window

    def window_reference(self, spec: ModelSpec) -> tuple[str, nn.Module | None]:
        """facebookresearch/vggt's ``VGGT`` without its track head."""
        try:
            # optional, never a dependency (VGGT License v1): the reference for comparisons
            from vggt.models.vggt import VGGT
        except ImportError:
            return (
                "not installed (a separate venv with facebookresearch/vggt's vggt/ on its "
                "path, see scripts/make_vggt_goldens.py)",
                None,
            )
        return "vggt VGGT(enable_track=False), float32", VGGT(enable_track=False).eval()


def window_prediction(out: Any, input_hw: Sequence[int]) -> Prediction:
    """The first window of a :class:`~dpt_ros.models.network.vggt.VggtOutput` -> a
    :class:`Prediction` (depth and confidence tensors; cameras and point map on the host).

    Args:
        out: the network's output for (1, N, 3, h, w).
        input_hw: (h, w) of the network input.
    """
    # torch on first use: the registry imports this file at start-up
    from dpt_ros.models.network.vggt import pose_encoding_to_extri_intri

    camera_from_world, intrinsics = pose_encoding_to_extri_intri(out.pose_enc[0].float(), input_hw)
    cameras = WindowCameras(
        camera_from_world=camera_from_world.cpu().numpy().astype(np.float32),
        intrinsics=intrinsics.cpu().numpy().astype(np.float32),
        reference_view=0,
        world_points=out.world_points[0].float().cpu().numpy(),
    )
    return Prediction(
        depth=out.depth[0].float(), confidence=out.depth_conf[0].float(), cameras=cameras
    )


FAMILY = VggtFamily()

# --------------------------------------------------------------------------- types

SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "vggt_1b",
        "depth",
        "vitl",
        RELATIVE_INVERSE_DEPTH,
        VGGT_SIZE,
        VGGT_SIZE,
        "model.pt",
        readout="ignore",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        licence="CC-BY-NC-4.0",
        hub_repo="facebook/VGGT-1B",
        maps=("confidence",),
        windows=True,
        family=FAMILY,
    ),
)
