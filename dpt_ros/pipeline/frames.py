"""One camera frame in, every output message out: the processing shared by the node,
the offline bag tool and the benchmarks. No rclpy Node here; messages are plain sensor_msgs.

:class:`FramePipeline` runs the stages, each a module with one job: ``intake`` (the
image and its camera_info: rectified, checked, their sizes computed once), ``inference``
(frames of one size in one batch through the models), ``depth`` (metres, calibration,
temporal stabilisation, points) and ``messages`` (arrays to messages, colours).

Output topics (relative to the camera's namespace), see ``OUTPUT_TOPICS``.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.pipeline.depth import (
    SequentialCalibration,
    Stabilized,
    Stabilizer,
    no_metres,
    run_batch,
)
from dpt_ros.pipeline.intake import Frame, NetworkInputs, admit_batch
from dpt_ros.pipeline.messages import (
    ON_DEMAND_TOPICS,
    OUTPUT_TOPICS,
    SKIPPABLE_TOPICS,
    ColourRanges,
    available_topics,
    batch_options,
    build_messages,
)
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.pipeline.status import CameraInfoRefusal, NoMetres
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.rectify import Rectifier

#: Names that live in the stage modules, importable from here as before.
__all__ = [
    "ON_DEMAND_TOPICS",
    "OUTPUT_TOPICS",
    "SKIPPABLE_TOPICS",
    "FrameOutput",
    "FramePipeline",
    "SequentialCalibration",
    "Stabilized",
    "Stabilizer",
]


@dataclass
class FrameOutput:
    """Messages for one frame, keyed by ``OUTPUT_TOPICS`` names, plus timings in ms."""

    messages: dict[str, object] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: The frame's arrays at the published size (``inverse``, ``metric``, ``labels``, ...).
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: The camera at the published size, when its camera_info was accepted.
    intrinsics: Intrinsics | None = None
    #: The temporal stabiliser's map of this frame's depth, when one runs.
    stabilized: Stabilized | None = None
    #: Why the frame's camera_info was refused, or None when it was used or there was
    #: none (read by the node's camera_info health).
    camera_info_rejection: CameraInfoRefusal | None = None
    #: Why a metric model that needs the camera's intrinsics (Depth Anything 3 metric)
    #: published no metres for this frame; None when it did or needs none.
    metres: NoMetres | None = None

    @property
    def warnings(self) -> list[str]:
        """The frame's problems as log lines (its refused camera_info)."""
        refusal = self.camera_info_rejection
        return [] if refusal is None else [str(refusal)]

    @property
    def no_metres(self) -> str:
        """``metres`` as a log line; empty when there are metres or none are needed."""
        return "" if self.metres is None else str(self.metres)


class FramePipeline:
    """Runs the depth and/or segmentation model on frames and builds the messages.

    Both models see the same image, and every message carries the input header.

    Args:
        depth: depth predictor or None.
        segmentation: segmentation predictor or None.
        options: initial ``PipelineOptions``.
    """

    def __init__(
        self,
        depth: Predictor | None,
        segmentation: Predictor | None,
        options: PipelineOptions = PipelineOptions(),
    ) -> None:
        _check_models(depth, segmentation)
        self.depth = depth
        self.segmentation = segmentation
        #: The model that uploads frames and sets the output size (depth if it runs).
        self.main: Predictor = depth if depth is not None else segmentation  # type: ignore[assignment]
        self.options = options
        #: Temporal stabilisation of each stream's depth right after inference (before
        #: metric depth, points and colours are made from it), or None (off).
        self.temporal: Stabilizer | None = None
        self._colours = ColourRanges()
        self._rectifier = Rectifier()
        #: Wait for the device after each stage so ``timings_ms`` splits true device
        #: time (benchmarks); the node leaves it off: one wait per batch.
        self.sync_timings = False

    def reset(self) -> None:
        """Forgets per-stream state (the colour ranges, the temporal stabilisation), as
        for a new recording."""
        self._colours.clear()
        if self.temporal is not None:
            self.temporal.reset()

    def topics(self, options: PipelineOptions | None = None) -> list[str]:
        """The output topics this configuration can publish."""
        return available_topics(self.depth, self.segmentation, options or self.options)

    def output_hw(
        self, image_hw: Sequence[int], options: PipelineOptions | None = None
    ) -> tuple[int, int]:
        """(H, W) of the published images for a camera image of ``image_hw``."""
        if (options or self.options).output_size == "network":
            return self.main.input_size(image_hw)
        return int(image_hw[0]), int(image_hw[1])

    def cloud_stride(self, width: int, options: PipelineOptions | None = None) -> int:
        """The stride of ``points`` for published images ``width`` pixels wide (see
        :meth:`PipelineOptions.cloud_stride_for`)."""
        return (options or self.options).cloud_stride_for(width, self.segmentation is not None)

    @property
    def models(self) -> tuple[Predictor | None, Predictor | None]:
        """(depth, segmentation): the order of :class:`NetworkInputs` from :func:`take`."""
        return self.depth, self.segmentation

    def process(
        self,
        rgb: np.ndarray,
        header: Header,
        camera_info: CameraInfo | None = None,
        stream: Hashable = None,
    ) -> FrameOutput:
        """Runs the models on one (H, W, 3) uint8 RGB camera image and builds every
        enabled output message, each with ``header``. ``camera_info``: its calibration,
        or None; one of another resolution is refused (``camera_info_rejection``) and
        the outputs that need it (``depth/camera_info``, ``points``) are skipped.
        ``stream``: which camera (each keeps its own colour range)."""
        return self.process_batch([rgb], [header], [camera_info], [stream])[0]

    def process_batch(
        self,
        rgbs: Sequence[np.ndarray],
        headers: Sequence[Header],
        infos: Sequence[CameraInfo | None],
        streams: Sequence[Hashable] | None = None,
        on_demand: Collection[str] = (),
        calibrations: Sequence[tuple[float, float] | None] | SequentialCalibration | None = None,
        skip: Collection[str] = (),
        inputs: Sequence[NetworkInputs | None] | None = None,
    ) -> list[FrameOutput]:
        """``process`` for several frames, running the models on batches.

        Frames of one size go through the models as one batch (``inference``), on the
        device until one download and a single wait; the messages are then built frame
        by frame, in order (each stream's colour range follows its frames). The options
        are read once per batch; batched work's timings are divided among its frames.

        Args:
            rgbs, headers, infos: each frame's (H, W, 3) uint8 RGB image (sizes may
                differ), header and camera_info (or None).
            streams: each frame's camera (its own colour range); None = one stream.
            on_demand: which of :data:`ON_DEMAND_TOPICS` to build.
            calibrations: each frame's (scale, shift) for a relative model's metres, or
                None for none of that frame (online alignment); None = the options'
                ``relative_depth_scale``/``shift`` for every frame. A
                :class:`SequentialCalibration` is asked frame by frame once the relative
                depth is known (a batch of one image size: ValueError otherwise).
            skip: which of :data:`SKIPPABLE_TOPICS` not to build (nobody subscribes).
            inputs: each frame's network inputs as :func:`~dpt_ros.pipeline.intake.take`
                found them for :attr:`models` (not computed again), or None.

        Returns:
            One FrameOutput per frame, in the order given.
        """
        streams, inputs = _checked_batch(rgbs, headers, infos, streams, inputs)
        o = batch_options(self.options, on_demand, skip)
        needs_k = self.depth is not None and bool(self.depth.spec.camera_requirement)
        batch = zip(rgbs, headers, infos, streams, inputs)
        frames = admit_batch(self.models, o, batch, self._rectifier, needs_k)
        results = [_output(f, self.depth if needs_k else None) for f in frames]
        arrays, sync = [r.arrays for r in results], self.sync_timings
        confidence = "segmentation/confidence" in on_demand
        temporal = self.temporal  # read once: the node may swap it between batches
        ran = run_batch(self.models, frames, arrays, calibrations, temporal, o, confidence, sync)
        for frame, result, (timings, stabilized) in zip(frames, results, ran):
            result.stabilized = stabilized
            result.messages, built = build_messages(
                frame, result.arrays, o, self._colours, skip, on_demand
            )
            result.timings_ms.update({**timings, **built})
        return results


def _output(frame: Frame, metres_model: Predictor | None) -> FrameOutput:
    """A frame's output before inference: its camera and statuses (``metres_model``: a
    depth model that needs the frame's camera matrix for metres, or None)."""
    return FrameOutput(
        intrinsics=None if frame.camera is None else frame.camera.intrinsics,
        camera_info_rejection=frame.refusal,
        metres=None if metres_model is None else no_metres(frame, metres_model.spec.name),
    )


def _check_models(depth: Predictor | None, segmentation: Predictor | None) -> None:
    """ValueError unless at least one model runs, each on its task (its options are
    checked for the task only where the caller has not: the node's parameters and the
    commands' flags have)."""
    if depth is None and segmentation is None:
        raise ValueError("at least one of depth and segmentation must be enabled")
    for task, predictor in (("depth", depth), ("segmentation", segmentation)):
        if predictor is not None:
            predictor.options.validated(task)


def _checked_batch(
    rgbs: Sequence[np.ndarray],
    headers: Sequence[Header],
    infos: Sequence[CameraInfo | None],
    streams: Sequence[Hashable] | None,
    inputs: Sequence[NetworkInputs | None] | None,
) -> tuple[Sequence[Hashable], Sequence[NetworkInputs | None]]:
    """The stream keys (one stream when None) and network inputs (None: each computed
    in intake) of a batch; ValueError on unequal lengths."""
    if not (len(rgbs) == len(headers) == len(infos)):
        raise ValueError(
            f"process_batch needs as many headers and camera_infos as images, "
            f"got {len(rgbs)} images, {len(headers)} headers, "
            f"{len(infos)} camera_infos"
        )
    for name, given in (("stream key", streams), ("set of network inputs", inputs)):
        if given is not None and len(given) != len(rgbs):
            raise ValueError(
                f"process_batch needs one {name} per image, got {len(given)} for {len(rgbs)} images"
            )
    none = [None] * len(rgbs)
    return none if streams is None else streams, none if inputs is None else inputs
