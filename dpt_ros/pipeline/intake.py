"""Intake, the pipeline's first stage: an image message becomes an RGB array that the
models can take, with each model's network input size, or a typed refusal naming why
(:func:`take`); then, inside the pipeline, the image and its camera_info become a
:class:`Frame`: rectified, its sizes and its camera model computed once, or its
camera_info refused with a typed :class:`CameraInfoRefusal` (:func:`admit_batch`). The
node and the bag tool both go through here, so a frame is judged the same way live and
from a recording, and the sizes found by :func:`take` are handed on, not found again."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.pipeline.status import CameraInfoProblem, CameraInfoRefusal
from dpt_ros.ros.camera import (
    Intrinsics,
    check_camera_info_matches,
    depth_camera_info,
    is_distorted,
)
from dpt_ros.ros.image_codec import ImageDecodeError, compressed_to_rgb, image_to_rgb
from dpt_ros.ros.messages import stamp_ns
from dpt_ros.ros.rectify import Rectifier


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


@dataclass(frozen=True)
class NetworkInputs:
    """Each model's network input for an image size, computed once
    (:meth:`Predictor.input_size` is not cheap).

    Attributes:
        image_hw: (H, W) of the image.
        input_hw: each model's network input (h, w), in the order the models were
            given (the pipeline's: depth, segmentation); None where a model does not run.
    """

    image_hw: tuple[int, int]
    input_hw: tuple[tuple[int, int] | None, ...]

    @classmethod
    def of(cls, predictors: Iterable[Predictor | None], image_hw: tuple[int, int]) -> NetworkInputs:
        """The inputs of an (H, W) image for ``predictors`` (None entries: None).

        Raises:
            ValueError: a network input too elongated or too large for a model (the
                first such model's reason, see :meth:`Predictor.input_size`).
        """
        sizes = tuple(None if p is None else p.input_size(image_hw) for p in predictors)
        return cls(image_hw, sizes)


def take(
    msg: Any, max_pixels: int, predictors: Iterable[Predictor | None]
) -> tuple[np.ndarray, NetworkInputs]:
    """The (H, W, 3) uint8 RGB of an Image or CompressedImage message that every one of
    ``predictors`` can run, and each one's network input for it (hand it on to
    :meth:`~dpt_ros.pipeline.frames.FramePipeline.process_batch`).

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
    try:
        inputs = NetworkInputs.of(predictors, (rgb.shape[0], rgb.shape[1]))
    except ValueError as exc:
        raise FrameRefused(str(exc), undecodable=False) from None
    return rgb, inputs


@dataclass(frozen=True)
class FrameSizes:
    """A frame's sizes, computed once.

    Attributes:
        image_hw: (H, W) of the camera image (after rectification: the same).
        output_hw: (H, W) of the published images (``output_size``).
        cloud_stride: the stride of ``points`` at ``output_hw``.
        input_hw: each model's network input (h, w), depth's then segmentation's
            (None where it does not run): see :class:`NetworkInputs`.
    """

    image_hw: tuple[int, int]
    output_hw: tuple[int, int]
    cloud_stride: int
    input_hw: tuple[tuple[int, int] | None, ...]

    @classmethod
    def of(
        cls,
        models: Sequence[Predictor | None],
        image_hw: tuple[int, int],
        o: PipelineOptions,
        inputs: NetworkInputs | None = None,
    ) -> FrameSizes:
        """The sizes of an (H, W) frame for the ``models`` (depth, segmentation) under
        the options ``o``; ``inputs``: the network inputs where known (used if they are
        for this image size and as many models)."""
        if inputs is None or (inputs.image_hw, len(inputs.input_hw)) != (image_hw, len(models)):
            inputs = NetworkInputs.of(models, image_hw)
        main_hw = next(hw for hw in inputs.input_hw if hw is not None)
        out_hw = main_hw if o.output_size == "network" else image_hw
        stride = o.cloud_stride_for(out_hw[1], models[1] is not None)
        return cls(image_hw, out_hw, stride, inputs.input_hw)


@dataclass(frozen=True)
class FrameCamera:
    """A frame's accepted camera, read once from its camera_info.

    Attributes:
        intrinsics: the camera at the published size (pixels).
        camera_info: the CameraInfo of the published images (``depth/camera_info``).
        image_k: (3, 3) camera matrix at the image's size, from ``P``, where the depth
            model needs it for metres (metric Depth Anything 3); else None.
    """

    intrinsics: Intrinsics
    camera_info: CameraInfo
    image_k: np.ndarray | None


@dataclass(frozen=True)
class Frame:
    """One frame on its way through the stages.

    Attributes:
        rgb: (H, W, 3) uint8 RGB, rectified where that was asked and possible.
        header: the camera image's header (copied onto every output).
        stream: which camera (each keeps its own state: colour range, stabilisation).
        sizes: its sizes.
        camera: its camera, or None (no camera_info, or refused).
        refusal: why its camera_info was refused, or None.
    """

    rgb: np.ndarray
    header: Header
    stream: Hashable
    sizes: FrameSizes
    camera: FrameCamera | None
    refusal: CameraInfoRefusal | None

    @property
    def stamp_s(self) -> float:
        """The header's stamp, seconds."""
        return stamp_ns(self.header) / 1e9

    @property
    def image_k(self) -> np.ndarray | None:
        """The camera matrix at the image's size, where the depth model needs it."""
        return None if self.camera is None else self.camera.image_k


def admit_batch(
    models: Sequence[Predictor | None],
    o: PipelineOptions,
    frames: Iterable[tuple[np.ndarray, Header, CameraInfo | None, Hashable, NetworkInputs | None]],
    rectifier: Rectifier,
    needs_k: bool,
) -> list[Frame]:
    """Each camera image of a batch, with its camera_info, as a :class:`Frame`.

    Args:
        models: the depth and the segmentation model (either may be None).
        o: the options, read once for the batch (``rectify``, ``output_size``,
            ``cloud_stride``).
        frames: each frame's (H, W, 3) uint8 RGB camera image, header, camera_info (or
            None), stream and network inputs (from :func:`take`, or None: computed here).
        rectifier: rectifies images whose camera_info has distortion, where ``o.rectify``.
        needs_k: the depth model needs each image's camera matrix for metres.
    """
    fix = rectifier if o.rectify else None
    return [
        admit(rgb, header, info, stream, models, o, inputs, fix, needs_k)
        for rgb, header, info, stream, inputs in frames
    ]


def admit(
    rgb: np.ndarray,
    header: Header,
    info: CameraInfo | None,
    stream: Hashable,
    models: Sequence[Predictor | None],
    o: PipelineOptions,
    inputs: NetworkInputs | None,
    rectifier: Rectifier | None,
    needs_k: bool,
) -> Frame:
    """A camera image and its camera_info as a :class:`Frame` (see :func:`admit_batch`;
    ``rectifier`` None: the image as is).

    A camera_info that cannot rectify the image or does not describe it is refused
    (``Frame.refusal``): the frame goes on without it, unrectified.
    """
    refusal = None
    if rectifier is not None and info is not None and is_distorted(info):
        try:
            rgb = rectifier(rgb, info, stream)
        except ValueError as exc:
            refusal = CameraInfoRefusal(CameraInfoProblem.UNRECTIFIABLE, str(exc))
            info = None
    sizes = FrameSizes.of(models, (int(rgb.shape[0]), int(rgb.shape[1])), o, inputs)
    camera = None
    if info is not None:
        try:
            camera = _camera(info, sizes, header, needs_k)
        except ValueError as exc:
            refusal = CameraInfoRefusal(CameraInfoProblem.UNUSABLE, str(exc))
    return Frame(rgb, header, stream, sizes, camera, refusal)


def _camera(info: CameraInfo, sizes: FrameSizes, header: Header, needs_k: bool) -> FrameCamera:
    """The frame's camera from its camera_info (read once); ValueError: unusable."""
    h, w = sizes.image_hw
    check_camera_info_matches(info, w, h)
    model = Intrinsics.from_camera_info(info)
    out_h, out_w = sizes.output_hw
    intrinsics, scaled = depth_camera_info(info, out_w, out_h, header, model)
    return FrameCamera(intrinsics, scaled, model.matrix() if needs_k else None)
