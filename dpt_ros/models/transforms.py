"""Pre- and post-processing of the original pipelines, in torch so it runs on the GPU.

Pre-processing, as both originals do it in float64 with OpenCV: RGB uint8 -> [0, 1] ->
resize keeping the aspect ratio to multiples of the network's granularity around the
network size (DPT's "minimal" method, Depth Anything V2's "lower_bound") with OpenCV's
INTER_CUBIC arithmetic (:mod:`dpt_ros.models.opencv_cubic`) -> normalise with the model's
mean/std -> float32.
Post-processing: the network output resized back to the image as the originals do it in
torch (DPT: bicubic; Depth Anything V2: bilinear, align_corners=True).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dpt_ros.models.geometry import upsample_depth
from dpt_ros.models.opencv_cubic import resize_cubic


def _constrain_to_multiple(
    x: float, multiple: int, max_val: float | None = None, min_val: float = 0
) -> int:
    # np.round rounds half to even, like the originals.
    y = int(np.round(x / multiple) * multiple)
    if max_val is not None and y > max_val:
        y = int(np.floor(x / multiple) * multiple)
    if y < min_val or y < multiple:
        # Never zero: the original's default lower bound (0) would make an empty tensor.
        y = int(np.ceil(x / multiple) * multiple) or multiple
    return y


#: ``network_input_size`` methods: DPT's and Depth Anything V2's.
RESIZE_METHODS = ("minimal", "lower_bound")


def network_input_size(
    image_hw: Sequence[int],
    net_hw: Sequence[int],
    keep_aspect_ratio: bool = True,
    multiple_of: int = 32,
    method: str = "minimal",
) -> tuple[int, int]:
    """The (H, W) an image is resized to before the network.

    With ``keep_aspect_ratio`` one scale of the two (net/image per axis) is used for
    both axes: ``minimal`` (DPT) takes the one closest to 1, so the image is scaled as
    little as possible; ``lower_bound`` (Depth Anything V2's ``input_size``) takes the
    larger, so neither side ends below the network size. Each side is then rounded to
    a multiple of ``multiple_of`` (with ``lower_bound``, rounded up where rounding
    would go below the network size).

    Args:
        image_hw: (height, width) of the image in pixels.
        net_hw: (height, width) of the network size.
        keep_aspect_ratio: scale both axes alike.
        multiple_of: the network's size granularity (32 for DPT, 14 for DINOv2).
        method: one of :data:`RESIZE_METHODS`.

    Returns:
        (height, width), positive multiples of ``multiple_of``.
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"unknown resize method {method!r}; valid: {', '.join(RESIZE_METHODS)}")
    h, w = int(image_hw[0]), int(image_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    scale_h = net_hw[0] / h
    scale_w = net_hw[1] / w
    if keep_aspect_ratio:
        if method == "lower_bound":
            scale_h = scale_w = max(scale_h, scale_w)
        elif abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h
    low_h, low_w = (net_hw[0], net_hw[1]) if method == "lower_bound" else (0, 0)
    return (
        _constrain_to_multiple(scale_h * h, multiple_of, min_val=low_h),
        _constrain_to_multiple(scale_w * w, multiple_of, min_val=low_w),
    )


#: Largest ratio of the longer side of a network input to its shorter side. A thin
#: image (1x10 px) would become a 518x5180 input for Depth Anything V2: 49 s on a CPU
#: where a 640x480 camera takes 1.8 s, and a 1x2000 one asks for 6.4 GB.
MAX_INPUT_ASPECT_RATIO = 8.0
#: Largest network input in pixels, as a multiple of the network size's pixels (a
#: 1920x1080 camera is 1.8x for DPT at 384, 3.3x for a KITTI image with Depth Anything
#: V2 at 518).
MAX_INPUT_PIXEL_FACTOR = 4.0


def network_input_problem(
    image_hw: Sequence[int], input_hw: Sequence[int], net_hw: Sequence[int]
) -> str:
    """Why an image may not run as the network input :func:`network_input_size` gives
    it, or "" when it may: an input more elongated than :data:`MAX_INPUT_ASPECT_RATIO`,
    or larger than :data:`MAX_INPUT_PIXEL_FACTOR` times the network size's pixels, would
    take the model many times a camera frame's time and memory.

    Args:
        image_hw: (height, width) of the image in pixels.
        input_hw: (height, width) of its network input.
        net_hw: (height, width) of the network size.
    """
    h, w = int(input_hw[0]), int(input_hw[1])
    net_h, net_w = int(net_hw[0]), int(net_hw[1])
    what = f"a {int(image_hw[1])}x{int(image_hw[0])} image becomes a {w}x{h} network input"
    ratio = max(h, w) / min(h, w)
    # A network size more elongated than the bound is the user's choice: its own shape is.
    max_ratio = max(MAX_INPUT_ASPECT_RATIO, max(net_h, net_w) / max(1, min(net_h, net_w)))
    if ratio > max_ratio:
        return (
            f"{what}, {ratio:.1f}:1, more elongated than {max_ratio:g}:1; "
            "crop or resize it to a camera-like aspect ratio"
        )
    if h * w > MAX_INPUT_PIXEL_FACTOR * net_h * net_w:
        return (
            f"{what}, {h * w} pixels, over {MAX_INPUT_PIXEL_FACTOR:g}x the network size's "
            f"{net_w}x{net_h}; crop or resize it"
        )
    return ""


def resize_bicubic(x: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """torch's bicubic resize of (B, C, H, W) float, align_corners=False, no antialiasing.

    What DPT's original does to its network output (``F.interpolate``). The kernel is
    OpenCV's ``INTER_CUBIC`` one (a = -0.75, edge pixels replicated), but computed with
    other roundings: the network input is resized with :func:`resize_cubic` instead.
    """
    size = (int(size_hw[0]), int(size_hw[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=False)


def preprocess(
    images: torch.Tensor,
    size_hw: Sequence[int],
    mean: Sequence[float] | torch.Tensor,
    std: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    """RGB uint8 images to the network input, as the originals compute it.

    The originals divide by 255, resize with ``cv2.resize(INTER_CUBIC)`` and normalise,
    all in float64, and only then convert to float32; so does this, on the images'
    device, which gives their input bit for bit. In float32 the resize alone would be
    2e-5 away at factors like 1280 -> 672.

    Args:
        images: (B, H, W, 3) uint8 RGB (any device).
        size_hw: network input (h, w) (:func:`network_input_size`).
        mean, std: per-channel normalisation of values in [0, 1]: sequences, or tensors
            of 3 values on the images' device. The originals use float64 values:
            sequences and float64 tensors give their result exactly; float32 tensors
            are their float32 roundings (an input up to one float32 step away for
            Depth Anything V2's ImageNet values, exact for DPT's 0.5).

    Returns:
        (B, 3, h, w) float32 on the images' device (channels_last strides), roughly in
        [-1, 1] (DPT) or [-2.2, 2.7] (ImageNet statistics).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"expected a (B, H, W, 3) uint8 RGB tensor, got {tuple(images.shape)} {images.dtype}"
        )
    x = resize_cubic(images.to(torch.float64).div_(255.0), size_hw)
    x = (x - _channel_vector(mean, x)) / _channel_vector(std, x)
    # The permuted view keeps the pixels interleaved: the result is channels_last.
    return x.to(torch.float32).permute(0, 3, 1, 2)


def _channel_vector(values, like: torch.Tensor) -> torch.Tensor:
    """(3,) per-channel values in ``like``'s dtype, on its device; a tensor already on
    the device is not copied from the host (building one from a list would be a
    host-to-device copy on every frame)."""
    if isinstance(values, torch.Tensor) and values.device == like.device:
        return values.to(like.dtype).view(3)
    return torch.tensor(values, dtype=like.dtype).view(3).to(like.device)


#: ``resize_output`` modes: DPT's bicubic, Depth Anything V2's bilinear (align_corners=True),
#: Depth Anything 3's inverse depth resized as the geometry resizes depth.
OUTPUT_INTERPOLATIONS = ("bicubic", "bilinear", "inverse_depth")


def resize_output(out: torch.Tensor, size_hw: Sequence[int], mode: str = "bicubic") -> torch.Tensor:
    """Resizes network outputs back to the image as the original does it.

    Args:
        out: (B, h, w) depth or (B, C, h, w) logits, float.
        size_hw: target (H, W).
        mode: ``bicubic`` (DPT; align_corners=False, like OpenCV), ``bilinear``
            (Depth Anything V2; align_corners=True) or ``inverse_depth`` ((B, h, w)
            inverse depth as :func:`~dpt_ros.models.geometry.upsample_depth` resizes
            depth: bilinear in inverse depth, align_corners=False, never leaving the
            neighbours' range: Depth Anything 3, its depth pixel-aligned with the
            geometry's).

    Returns:
        (B, H, W) or (B, C, H, W) float32.
    """
    size = (int(size_hw[0]), int(size_hw[1]))
    if mode == "inverse_depth":
        if out.ndim != 3:
            raise ValueError(f"inverse_depth resizes (B, h, w) depth, got {tuple(out.shape)}")
        inverse = out.float()
        if tuple(inverse.shape[-2:]) == size:
            return inverse
        return torch.reciprocal(upsample_depth(torch.reciprocal(inverse), size))
    x = out.float().unsqueeze(1) if out.ndim == 3 else out.float()
    if mode == "bicubic":
        x = resize_bicubic(x, size_hw)
    elif mode == "bilinear":
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    else:
        raise ValueError(
            f"unknown output interpolation {mode!r}; valid: {', '.join(OUTPUT_INTERPOLATIONS)}"
        )
    return x.squeeze(1) if out.ndim == 3 else x


def labels_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) class scores -> (B, H, W) uint8 label ids 1..C (0 stays
    "unlabelled", the ADE20K convention)."""
    return (logits.argmax(dim=1) + 1).to(torch.uint8)


def label_confidence(logits: torch.Tensor) -> torch.Tensor:
    """The softmax probability of the arg-max class, as mono8.

    Args:
        logits: (B, C, H, W) float class scores.

    Returns:
        (B, H, W) uint8 ``round(255 * max_c softmax(logits)_c)``; 255 = certain,
        ``round(255 / C)`` = uniform.
    """
    logits = logits.float()
    # max_c softmax = 1 / sum_c exp(l_c - max l): no (B, C, H, W) probability tensor kept.
    top = logits.amax(dim=1, keepdim=True)
    probability = 1.0 / torch.exp(logits - top).sum(dim=1)
    return torch.round(probability * 255.0).to(torch.uint8)


def check_rgb(array: np.ndarray, batched: bool) -> None:
    """Raises ValueError unless ``array`` is a (B, H, W, 3) (``batched``) or (H, W, 3)
    uint8 RGB array with pixels."""
    ndim = 4 if batched else 3
    shape = "(B, H, W, 3)" if batched else "(H, W, 3)"
    if not isinstance(array, np.ndarray) or array.ndim != ndim or array.shape[-1] != 3:
        got = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"expected a {shape} uint8 RGB array, got {got}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB values 0..255, got dtype {array.dtype}")
    if min(array.shape[-3:-1]) <= 0:
        raise ValueError(f"image is empty: shape {array.shape}")
