"""The steps of :meth:`~dpt_ros.models.Predictor.infer_window` that need no model: a
window's views checked and stacked, and its cameras carried to the output grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dpt_ros.models.family import WindowCameras
from dpt_ros.models.transforms import check_rgb


def stack_views(images: Sequence[np.ndarray]) -> np.ndarray:
    """The (N, H, W, 3) uint8 batch of a window's N (H, W, 3) RGB views.

    Raises:
        ValueError: no views, a view that is not (H, W, 3) uint8 RGB, or views of
            different sizes.
    """
    views = list(images)
    if not views:
        raise ValueError("a window needs at least one view, got none")
    for view in views:
        check_rgb(view, batched=False)
    sizes = sorted({tuple(v.shape[:2]) for v in views})
    if len(sizes) > 1:
        raise ValueError(
            f"the views of a window must have one size, got {sizes} (the reference "
            "centre-crops its network inputs to the smallest: crop or resize first)"
        )
    return np.stack(views)


def cameras_on_output(
    cameras: WindowCameras,
    network_hw: Sequence[int],
    image_hw: Sequence[int],
    output_hw: Sequence[int],
    given_intrinsics: np.ndarray | None = None,
) -> WindowCameras:
    """``cameras`` with their intrinsics on the (h, w) = ``output_hw`` grid that the
    window's maps were resized to.

    The maps are resized with ``align_corners=False``: a pixel centre u of the output
    lies at (u + 0.5) / s - 0.5 on the source grid, so the intrinsics (pixel centres, as
    the chain back-projects them) follow u = s * (u_src + 0.5) - 0.5, as ``dpt-ros
    reconstruct``'s ``--output-size input``.

    Args:
        cameras: the window's cameras, intrinsics (N, 3, 3) on the network grid.
        network_hw: (h, w) of the network grid.
        image_hw: (H, W) of the images.
        output_hw: (h, w) of the output grid.
        given_intrinsics: a window aligned to given cameras: their (N, 3, 3) intrinsics
            on the images' grid, carried to the output's directly (at the image's size,
            the given ones exactly); None: the cameras' own, from the network grid.

    Returns:
        ``cameras`` with the intrinsics on the output grid, of their shape and dtype.
    """
    if given_intrinsics is not None:
        source_hw, source = image_hw, np.asarray(given_intrinsics, np.float64)
    else:
        source_hw, source = network_hw, np.asarray(cameras.intrinsics, np.float64)
    sx, sy = output_hw[1] / source_hw[1], output_hw[0] / source_hw[0]
    to_output = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    intrinsics_out = np.broadcast_to(to_output @ source, np.shape(cameras.intrinsics)).astype(
        np.asarray(cameras.intrinsics).dtype
    )
    return replace(cameras, intrinsics=intrinsics_out)
