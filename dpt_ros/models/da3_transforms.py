"""Depth Anything 3's pre- and post-processing, as pure functions.

Pre-processing reproduces the reference's ``InputProcessor`` with its default
``upper_bound_resize`` (ByteDance-Seed/Depth-Anything-3 at 2c21ea8):

1. the longest side becomes ``process_res`` (504 by default): both sides scaled by
   ``process_res / longest`` and rounded with Python's ``round`` (half to even:
   640x480 at 350 gives 350x262, not 263), OpenCV ``INTER_AREA`` when shrinking and
   ``INTER_CUBIC`` when enlarging, on the uint8 image; no resize when the longest side
   already is ``process_res``;
2. each side to its nearest multiple of 14 (ties go up), with a second uint8 resize when
   a side changes: ``INTER_CUBIC`` if either side grows, else ``INTER_AREA``;
3. ``/ 255`` then ImageNet normalisation, in float32.

Intrinsics follow the image: fx and cx scale by the width ratio, fy and cy by the height
ratio, once per resize, in the dtype they come in.

Post-processing: :func:`fill_sky` (what the reference's forward does to mono and metric
depth), :func:`metric_depth` (the metric type's depth in metres from the focal length),
and for outputs at another size than the network's (whose depth
:func:`~dpt_ros.models.transforms.resize_output` resizes as the geometry resizes depth),
:func:`resize_maps` and :func:`sky_mask` (the confidence and the sky map on its grid).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: DINOv2's patch side: network input sides are multiples of it.
PATCH_SIZE = 14
#: The reference's default ``process_res``.
DEFAULT_PROCESS_RES = 504
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Sky where the sky map reaches this (the reference's ``compute_sky_mask``).
SKY_THRESHOLD = 0.3
#: Sky pixels get this quantile of the other pixels' depth.
SKY_DEPTH_QUANTILE = 0.99
#: The metric type's depth is network output * focal / this (focal in pixels).
METRIC_FOCAL_DIVISOR = 300.0


def _nearest_multiple(x: int, multiple: int) -> int:
    down = (x // multiple) * multiple
    up = down + multiple
    return max(1, up if abs(up - x) <= abs(x - down) else down)


def resize_plan(
    image_hw: Sequence[int], process_res: int = DEFAULT_PROCESS_RES
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two sizes an image passes through: ((h1, w1) after the longest-side resize,
    (h, w) the network input, multiples of 14).

    Args:
        image_hw: (height, width) of the image in pixels.
        process_res: the longest side's target.
    """
    if process_res < 1:
        raise ValueError(f"process_res must be positive, got {process_res}")
    height, width = int(image_hw[0]), int(image_hw[1])
    longest = max(height, width)
    if longest == process_res:
        first = (height, width)
    else:
        scale = process_res / float(longest)
        first = (max(1, int(round(height * scale))), max(1, int(round(width * scale))))
    final = (_nearest_multiple(first[0], PATCH_SIZE), _nearest_multiple(first[1], PATCH_SIZE))
    return first, final


def network_input_size(
    image_hw: Sequence[int], process_res: int = DEFAULT_PROCESS_RES
) -> tuple[int, int]:
    """(h, w) of the network input for an image of ``image_hw``."""
    return resize_plan(image_hw, process_res)[1]


def _resize_uint8(image: np.ndarray, hw: tuple[int, int], enlarge: bool) -> np.ndarray:
    import cv2  # optional dependency of the package (ROS provides it; pip: opencv)

    interpolation = cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA
    return cv2.resize(image, (hw[1], hw[0]), interpolation=interpolation)


def preprocess(rgb: np.ndarray, process_res: int = DEFAULT_PROCESS_RES) -> np.ndarray:
    """The reference's network input for one image.

    Args:
        rgb: (H, W, 3) uint8 RGB.
        process_res: the longest side's target before rounding to multiples of 14.

    Returns:
        (3, h, w) float32, ImageNet-normalised; h, w from :func:`network_input_size`.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    first, final = resize_plan((height, width), process_res)
    image = np.ascontiguousarray(rgb)
    if first != (height, width):
        image = _resize_uint8(image, first, enlarge=process_res > max(height, width))
    if final != first:
        image = _resize_uint8(image, final, enlarge=final[0] > first[0] or final[1] > first[1])
    x = image.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std)


def preprocess_to(
    rgb: np.ndarray, hw: Sequence[int], process_res: int = DEFAULT_PROCESS_RES
) -> np.ndarray:
    """:func:`preprocess` where the network input is its plan's size; else (an exported
    engine's fixed input) one uint8 resize straight to ``hw`` (``INTER_CUBIC`` if a side
    grows, else ``INTER_AREA``), then the same normalisation.

    Returns:
        (3, h, w) float32.
    """
    height, width = np.asarray(rgb).shape[:2]
    hw = (int(hw[0]), int(hw[1]))
    if resize_plan((height, width), process_res)[1] == hw:
        return preprocess(rgb, process_res)
    image = np.ascontiguousarray(rgb)
    if hw != (height, width):
        image = _resize_uint8(image, hw, enlarge=hw[0] > height or hw[1] > width)
    return preprocess(image, max(hw))


def network_intrinsics_to(
    intrinsics: np.ndarray,
    image_hw: Sequence[int],
    hw: Sequence[int],
    process_res: int = DEFAULT_PROCESS_RES,
) -> np.ndarray:
    """:func:`network_intrinsics` for the input :func:`preprocess_to` makes at ``hw``."""
    height, width = int(image_hw[0]), int(image_hw[1])
    if resize_plan((height, width), process_res)[1] == (int(hw[0]), int(hw[1])):
        return network_intrinsics(intrinsics, image_hw, process_res)
    k = np.array(intrinsics, copy=True)
    k[:1] *= int(hw[1]) / float(width)
    k[1:2] *= int(hw[0]) / float(height)
    return k.astype(np.float32)


def network_intrinsics(
    intrinsics: np.ndarray, image_hw: Sequence[int], process_res: int = DEFAULT_PROCESS_RES
) -> np.ndarray:
    """The camera matrix of the network input, as the reference rescales it.

    Args:
        intrinsics: (3, 3) K of the image (pixels).
        image_hw: (height, width) of the image.
        process_res: as for :func:`preprocess`.

    Returns:
        (3, 3) float32: row 0 (fx, cx) scaled by each resize's width ratio, row 1 (fy, cy)
        by its height ratio, computed in the dtype of ``intrinsics``.
    """
    k = np.array(intrinsics, copy=True)
    if k.shape != (3, 3):
        raise ValueError(f"intrinsics must be a 3x3 matrix, got shape {k.shape}")
    size = (int(image_hw[0]), int(image_hw[1]))
    for new in resize_plan(size, process_res):
        k[:1] *= new[1] / float(size[1])
        k[1:2] *= new[0] / float(size[0])
        size = new
    return k.astype(np.float32)


def metric_depth(depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Metres from the metric type's output: ``depth * ((fx + fy) / 2) / 300``.

    Args:
        depth: (B, h, w) network output (after sky filling, as the reference does it).
        intrinsics: (B, 3, 3) or (3, 3) K of the network input
            (:func:`network_intrinsics`), pixels.

    Returns:
        (B, h, w) metres, in depth's dtype.
    """
    k = intrinsics.to(depth.dtype)
    if k.dim() == 2:
        k = k[None]
    focal = (k[:, 0, 0] + k[:, 1, 1]) / 2
    return depth * (focal[:, None, None] / METRIC_FOCAL_DIVISOR)


def fill_sky(
    depth: torch.Tensor,
    sky: torch.Tensor,
    threshold: float = SKY_THRESHOLD,
    quantile: float = SKY_DEPTH_QUANTILE,
) -> torch.Tensor:
    """Sky pixels (``sky >= threshold``) set to the ``quantile`` of the other pixels' depth,
    per image; an image with 10 or fewer sky or non-sky pixels is left as it is.

    The reference does this inside its forward over the whole batch at once and, above
    100,000 non-sky pixels, on 100,000 of them drawn at random (with replacement); here
    the quantile is over every non-sky pixel, which is the same where there are at most
    100,000 (up to 364x274 at 4:3) and its expectation above.

    Args:
        depth: (B, h, w) mono or metric depth.
        sky: (B, h, w) the sky map.

    Returns:
        (B, h, w), a new tensor.
    """
    filled = depth.clone()
    for i in range(depth.shape[0]):
        ground = sky[i] < threshold
        count = int(ground.sum())
        if count <= 10 or ground.numel() - count <= 10:
            continue
        top = torch.quantile(depth[i][ground], quantile)
        filled[i][~ground] = top
    return filled


def resize_maps(maps: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """(B, h, w) confidence or sky map to (B, H, W) float32, bilinear on the depth's
    grid (``align_corners=False``), so they stay pixel-aligned."""
    size = (int(size_hw[0]), int(size_hw[1]))
    x = maps.float()
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def sky_mask(sky: torch.Tensor, threshold: float = SKY_THRESHOLD) -> torch.Tensor:
    """(B, H, W) uint8 mask of a sky map: 255 where it reaches ``threshold``, else 0
    (``depth/sky``, mono8)."""
    return (sky >= threshold).to(torch.uint8) * 255
