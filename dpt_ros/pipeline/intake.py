"""Intake, the pipeline's first stage: an image message becomes an RGB array that the
models can take, or a typed refusal naming why. The node and the bag tool both go
through here, so a frame is judged the same way live and from a recording."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sensor_msgs.msg import CompressedImage

from dpt_ros.models import Predictor
from dpt_ros.ros.image_codec import ImageDecodeError, compressed_to_rgb, image_to_rgb


class FrameRefused(Exception):
    """An image that cannot reach the models.

    Attributes:
        reason: why, in one sentence (no prefix: callers say what was refused).
        undecodable: the message itself is bad (encoding, size, bytes); False when it
            decodes but no network can take its shape.
    """

    def __init__(self, reason: str, undecodable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.undecodable = undecodable


def network_problem(predictors: Iterable[Predictor | None], image_hw: tuple[int, int]) -> str:
    """Why an image of (H, W) may not reach the models (a network input too elongated
    or too large, see :meth:`Predictor.input_size`), or ""."""
    for predictor in predictors:
        if predictor is not None:
            try:
                predictor.input_size(image_hw)
            except ValueError as exc:
                return str(exc)
    return ""


def take(msg: Any, max_pixels: int, predictors: Iterable[Predictor | None]) -> np.ndarray:
    """The (H, W, 3) uint8 RGB of an Image or CompressedImage message that every one of
    ``predictors`` can run.

    Args:
        msg: ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``.
        max_pixels: the decoder's pixel limit (0: none), checked before decoding.
        predictors: the models the frame is for (None entries are skipped).

    Raises:
        FrameRefused: undecodable, over the pixel limit, or a shape no network takes.
    """
    try:
        if isinstance(msg, CompressedImage):
            rgb = compressed_to_rgb(msg, max_pixels)
        else:
            rgb = image_to_rgb(msg, max_pixels)
    except ImageDecodeError as exc:
        raise FrameRefused(str(exc), undecodable=True) from None
    problem = network_problem(predictors, (rgb.shape[0], rgb.shape[1]))
    if problem:
        raise FrameRefused(problem, undecodable=False)
    return rgb
