"""One camera frame in, every output message out: the processing shared by the node,
the offline bag tool and the benchmarks. No rclpy Node here; messages are plain sensor_msgs.

Output topics (relative to the camera's namespace), see ``OUTPUT_TOPICS``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

import cv2
import numpy as np
import torch
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.models.da3_transforms import resize_maps, sky_mask
from dpt_ros.models.geometry import backproject as device_backproject
from dpt_ros.models.geometry import mark_saturated as device_mark_saturated
from dpt_ros.models.geometry import relative_to_metric as device_relative_to_metric
from dpt_ros.models.geometry import upsample_depth as device_upsample_depth
from dpt_ros.models.predictor import download_to_host, label_confidence
from dpt_ros.models.registry import task_problem
from dpt_ros.models.transforms import resize_output
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.camera import (
    Intrinsics,
    check_camera_info_matches,
    depth_camera_info,
    is_distorted,
)
from dpt_ros.ros.confidence import confidence_to_mono8, confident_points
from dpt_ros.ros.image_codec import depth_to_image_msg, labels_to_image_msg, rgb_to_image_msg
from dpt_ros.ros.messages import stamp_ns
from dpt_ros.ros.pointcloud import make_pointcloud2
from dpt_ros.ros.rectify import Rectifier
from dpt_ros.viz.ade20k import PALETTE
from dpt_ros.viz.colormap import StableRange, colorize, overlay_labels

#: Output topic name -> message type, relative to the camera namespace.
OUTPUT_TOPICS: dict[str, type] = {
    "depth/image": Image,
    "depth/relative": Image,
    "depth/camera_info": CameraInfo,
    "depth/colored": Image,
    "depth/confidence": Image,
    "depth/confidence_mono8": Image,
    "depth/sky": Image,
    "segmentation/labels": Image,
    "segmentation/colored": Image,
    "segmentation/confidence": Image,
    "points": PointCloud2,
    "points_confident": PointCloud2,
}

#: How a frame's warning about its camera_info starts (``FrameOutput.warnings``).
_CAMERA_INFO_REJECTED = "camera_info rejected: "

#: Outputs that the node skips while nobody subscribes to them (``skip``): building
#: them costs time on every frame and nothing else needs them.
SKIPPABLE_TOPICS: frozenset[str] = frozenset(
    {"points", "depth/colored", "segmentation/colored", "depth/confidence_mono8"}
)

#: Outputs built only when asked for (``on_demand``): the node asks when someone
#: subscribes, since they cost time on every frame. ``points_confident`` is ``points``
#: without the points less confident than ``cloud.confident_threshold`` (NaN there):
#: a marking source for a costmap layer that reads no confidence field.
ON_DEMAND_TOPICS: frozenset[str] = frozenset({"segmentation/confidence", "points_confident"})


class SequentialCalibration(Protocol):
    """Online alignment run frame by frame inside a batch (the bag tool's
    :class:`dpt_ros.cli.bag.alignment.BagAlignment`): the calibration of frame ``j``
    may depend on the fits of the frames before it in the same batch, so a batch gives
    exactly what the frames give one at a time. Indices are the frames' positions in
    :meth:`FramePipeline.process_batch`."""

    def calibration(self, index: int) -> tuple[float, float] | None:
        """Frame ``index``'s (scale, shift) for metres, or None (no metric output)."""
        ...

    def update(
        self,
        index: int,
        relative: np.ndarray,
        intrinsics: Intrinsics | None,
        labels: np.ndarray | None,
    ) -> None:
        """Fits frame ``index``'s (H, W) relative output (with its intrinsics at the
        output size and its ADE20K labels, if segmentation runs)."""
        ...


class Stabilized(Protocol):
    """One frame out of a :class:`Stabilizer` (a
    :class:`dpt_ros.alignment.temporal.StabilizedFrame`)."""

    @property
    def output(self) -> np.ndarray:
        """(H, W) float32: ``scale * frame + shift``."""

    @property
    def scale(self) -> float: ...

    @property
    def shift(self) -> float: ...

    @property
    def reason(self) -> str:
        """Why the stream started again at this frame; empty if it did not."""

    @property
    def restarted(self) -> bool:
        """The stream started again at this frame, not being its first."""


class Stabilizer(Protocol):
    """Per-stream temporal stabilisation of depth, run right after inference
    (:class:`dpt_ros.alignment.temporal.TemporalStreams`; the pipeline does not import
    the alignment layer, its callers hand it one)."""

    def update(
        self, stream: Hashable, frame: np.ndarray, mode: Literal["affine", "scale"], stamp: float
    ) -> Stabilized:
        """Maps the next frame of ``stream``: (H, W) inverse depth (``affine``) or metres
        (``scale``) at the frame's ``stamp`` (seconds)."""

    def reset(self) -> None:
        """Forgets every stream."""


@dataclass
class FrameOutput:
    """Messages for one frame, keyed by ``OUTPUT_TOPICS`` names, plus timings in ms."""

    messages: dict[str, object] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: The frame's arrays at the published size (``inverse``, ``metric``, ``labels``, ...).
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: The camera at the published size, when its camera_info was accepted.
    intrinsics: Intrinsics | None = None
    #: The temporal stabiliser's map of this frame's depth, when one runs.
    stabilized: Stabilized | None = None
    #: Why a metric model that needs the camera's intrinsics (Depth Anything 3
    #: metric) published no metres for this frame; empty when it did or needs none.
    no_metres: str = ""

    #: Why the frame's camera_info was refused (no prefix), or "" when it was used or
    #: there was none: a typed status, read by the node's health and ``no_metres``.
    camera_info_rejection: str = ""

    def refuse_camera_info(self, reason: str) -> None:
        """Records that the frame's camera_info was refused, and logs it once among the
        frame's ``warnings``."""
        self.camera_info_rejection = reason
        self.warnings.append(f"{_CAMERA_INFO_REJECTED}{reason}")


@dataclass
class _DeviceOutputs:
    """A group's outputs on the device: whole-batch tensors by array name, and each
    frame's own (its ``metric`` where calibrations differ, its points ``xyz``)."""

    batch: dict[str, torch.Tensor]
    frames: list[dict[str, torch.Tensor]]

    def download(self, arrays: list[dict[str, np.ndarray]]) -> None:
        """Copies everything to the host (one wait) into each frame's ``arrays``."""
        names = list(self.batch)
        per_frame = [(b, name) for b, frame in enumerate(self.frames) for name in frame]
        host = download_to_host(
            [self.batch[n] for n in names] + [self.frames[b][n] for b, n in per_frame]
        )
        for name, values in zip(names, host):
            for b, a in enumerate(arrays):
                a[name] = values[b]
        for (b, name), values in zip(per_frame, host[len(names) :]):
            arrays[b][name] = values


class _BatchFrames(NamedTuple):
    """The per-frame inputs of one :meth:`FramePipeline.process_batch`, each in the
    batch's order (after rectification)."""

    rgbs: Sequence[np.ndarray]
    headers: Sequence[Header]
    streams: Sequence[Hashable]
    cameras: list[tuple[Intrinsics | None, CameraInfo | None]]
    calibrations: Sequence[tuple[float, float] | None]
    image_ks: list[np.ndarray | None]


@dataclass
class _Group:
    """Frames of one image size, run through the models as one batch."""

    batch: np.ndarray  # (B, H, W, 3) uint8
    out_hw: tuple[int, int]
    intrinsics: list[Intrinsics | None]
    calibrations: list[tuple[float, float] | None]
    arrays: list[dict[str, np.ndarray]]
    confidence: bool
    #: Each frame's camera matrix at the image's size (metric Depth Anything 3; a
    #: group's frames either all have one or none does).
    image_ks: list[np.ndarray | None] = field(default_factory=list)
    #: Temporal stabilisation: the stabiliser (None = off), each frame's stream and
    #: stamp (seconds), and each frame's result (filled by the inference).
    temporal: Stabilizer | None = None
    streams: list[Hashable] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    stabilized: list[Stabilized | None] = field(default_factory=list)
    #: Online alignment frame by frame (then ``calibrations`` are filled by it).
    sequential: SequentialCalibration | None = None


class FramePipeline:
    """Runs the depth and/or segmentation model on one frame and builds the messages.

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
        if depth is None and segmentation is None:
            raise ValueError("at least one of depth and segmentation must be enabled")
        for task, predictor in (("depth", depth), ("segmentation", segmentation)):
            problem = predictor and task_problem(predictor.spec.name, task)
            if problem:
                raise ValueError(problem)
        self.depth = depth
        self.segmentation = segmentation
        #: The model that uploads frames and sets the output size (depth if it runs).
        self.main: Predictor = depth if depth is not None else segmentation  # type: ignore[assignment]
        self.options = options
        #: Temporal stabilisation of each stream's depth right after inference (before
        #: metric depth, points and colours are made from it), or None (off).
        self.temporal: Stabilizer | None = None
        self._ranges: dict[Hashable, StableRange] = {}
        self._rectifier = Rectifier()
        #: Wait for the device after each stage so ``timings_ms`` splits true device
        #: time (benchmarks); the node leaves it off: one wait per batch.
        self.sync_timings = False

    def reset(self) -> None:
        """Forgets per-stream state (the colour ranges, the temporal stabilisation), as
        for a new recording."""
        self._ranges.clear()
        if self.temporal is not None:
            self.temporal.reset()

    def topics(self, options: PipelineOptions | None = None) -> list[str]:
        """The output topics this configuration can publish."""
        o = options or self.options
        out: list[str] = []
        if self.depth is not None:
            metric = (
                self.depth.is_metric
                or o.relative_depth_scale > 0
                or o.relative_depth_alignment != "fixed"
            )
            if metric:
                out.append("depth/image")
            if not self.depth.is_metric:
                out.append("depth/relative")
            out += ["depth/colored", "depth/camera_info"]
            for name in self.depth.spec.maps:
                out.append(f"depth/{name}")
                if name == "confidence":
                    out.append("depth/confidence_mono8")
            if metric and o.cloud_enabled:
                out += ["points", "points_confident"]
        if self.segmentation is not None:
            out += ["segmentation/labels", "segmentation/colored", "segmentation/confidence"]
            if self.depth is None:
                out.append("depth/camera_info")
        return out

    def output_hw(
        self, image_hw: Sequence[int], options: PipelineOptions | None = None
    ) -> tuple[int, int]:
        """(H, W) of the published images for a camera image of ``image_hw``."""
        if (options or self.options).output_size == "network":
            return self.main.input_size(image_hw)
        return int(image_hw[0]), int(image_hw[1])

    def process(
        self,
        rgb: np.ndarray,
        header: Header,
        camera_info: CameraInfo | None = None,
        stream: Hashable = None,
    ) -> FrameOutput:
        """Runs the models on ``rgb`` and builds every enabled output message.

        Args:
            rgb: (H, W, 3) uint8 RGB camera image.
            header: the camera image's header; copied onto every output.
            camera_info: the camera's calibration for this image size, or None.
            stream: which camera the frame is from; each stream keeps its own colour
                range for ``depth/colored``.

        Returns:
            FrameOutput; a camera_info of another resolution is reported in ``warnings``
            and the outputs that need it (``depth/camera_info``, ``points``) are skipped.
        """
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
    ) -> list[FrameOutput]:
        """``process`` for several frames, running the models on batches.

        Frames of the same size go through each model as one batch: one upload of the
        uint8 pixels, pre-processing, the models, resizing, metric depth and the
        back-projection all on the model's device, then one device-to-host copy per
        output and a single wait for the device. The messages are then built frame by
        frame, in order (each stream's colour range follows its frames in the order
        given). The options are read once for the whole batch. Timings of batched work
        are divided among the batch's frames.

        Args:
            rgbs: (H, W, 3) uint8 RGB camera images (sizes may differ).
            headers: each image's header.
            infos: each image's camera_info, or None.
            streams: each frame's camera (its own colour range); None = one stream.
            on_demand: which of :data:`ON_DEMAND_TOPICS` to build.
            calibrations: each frame's (scale, shift) for metric depth from a relative
                model, or None for no metric output of that frame (online alignment);
                None = the options' ``relative_depth_scale``/``shift`` for every frame.
                A :class:`SequentialCalibration`: asked frame by frame, in order, once
                the batch's relative depth is known, and given each frame's relative
                output before the next frame's calibration (the frames must have one
                size: ValueError otherwise).
            skip: which of :data:`SKIPPABLE_TOPICS` not to build (nobody subscribes).

        Returns:
            One FrameOutput per frame, in the order given.
        """
        streams = _checked_batch(rgbs, headers, infos, streams)
        o = self.options
        if "points" in skip and "points_confident" not in on_demand:
            o = dataclasses.replace(o, cloud_enabled=False)
        results = [FrameOutput() for _ in rgbs]
        if o.rectify:
            rgbs, infos = self._rectify_batch(results, rgbs, infos, streams)
        cameras = [
            self._camera(results[i], o, infos[i], rgbs[i].shape[:2], headers[i])
            for i in range(len(rgbs))
        ]
        sequential: SequentialCalibration | None = None
        if calibrations is not None and not isinstance(calibrations, Sequence):
            sequential, calibrations = calibrations, [None] * len(rgbs)
        calibrations = calibrations or _fixed_calibrations(o, len(rgbs))
        image_ks = self._image_ks(results, infos, cameras)
        frames = _BatchFrames(rgbs, headers, streams, cameras, calibrations, image_ks)
        temporal = self.temporal  # read once: the node may swap it between batches
        groups = _size_groups(rgbs, image_ks)
        if sequential is not None and len(groups) > 1:
            raise ValueError("frame-by-frame calibration needs a batch of one image size")
        for idx in groups:
            self._infer_group(idx, results, frames, o, on_demand, temporal, sequential)
        for i, result in enumerate(results):
            result.intrinsics = cameras[i][0]
            self._build_messages(
                result, o, rgbs[i], headers[i], cameras[i][1], streams[i], skip, on_demand
            )
        return results

    def _rectify_batch(
        self,
        results: list[FrameOutput],
        rgbs: Sequence[np.ndarray],
        infos: Sequence[CameraInfo | None],
        streams: Sequence[Hashable],
    ) -> tuple[list[np.ndarray], list[CameraInfo | None]]:
        """:meth:`_rectify` of every frame: (the images, their camera_infos)."""
        rectified = [
            self._rectify(r, rgb, info, s) for r, rgb, info, s in zip(results, rgbs, infos, streams)
        ]
        return [rgb for rgb, _ in rectified], [info for _, info in rectified]

    def _infer_group(
        self,
        idx: list[int],
        results: list[FrameOutput],
        frames: _BatchFrames,
        o: PipelineOptions,
        on_demand: Collection[str],
        temporal: Stabilizer | None,
        sequential: SequentialCalibration | None,
    ) -> None:
        """Runs the frames ``idx`` of the batch (one size) through the models as one
        batch; their arrays, timings (divided among them) and stabilisation go into
        their ``results`` (``sequential``: online alignment fits them one by one)."""
        rgbs, headers, streams, cameras, calibrations, image_ks = frames
        h, w = rgbs[idx[0]].shape[:2]
        group = _Group(
            np.stack([rgbs[i] for i in idx]),
            self.output_hw((h, w), o),
            [cameras[i][0] for i in idx],
            [calibrations[i] for i in idx],
            [results[i].arrays for i in idx],
            "segmentation/confidence" in on_demand,
            [image_ks[i] for i in idx],
            temporal,
            [streams[i] for i in idx],
            [stamp_ns(headers[i]) / 1e9 for i in idx],
            [None] * len(idx),
            sequential,
        )
        timings = self._infer(group, o)
        for j, i in enumerate(idx):
            results[i].timings_ms.update({k: v / len(idx) for k, v in timings.items()})
            results[i].stabilized = group.stabilized[j]

    def _image_ks(
        self,
        results: list[FrameOutput],
        infos: Sequence[CameraInfo | None],
        cameras: list[tuple[Intrinsics | None, CameraInfo | None]],
    ) -> list[np.ndarray | None]:
        """Each frame's camera matrix at its image's size where the depth model needs it
        for metres (metric Depth Anything 3: from ``P``, as the geometry reads it), else
        None; a frame without one gets the reason in its ``no_metres``."""
        depth = self.depth
        if depth is None or not depth.needs_intrinsics:
            return [None] * len(results)
        ks: list[np.ndarray | None] = []
        for result, info, (intrinsics, _) in zip(results, infos, cameras):
            if info is not None and intrinsics is not None:
                ks.append(Intrinsics.from_camera_info(info).matrix())
                continue
            rejection = result.camera_info_rejection
            why = f"{_CAMERA_INFO_REJECTED}{rejection}" if rejection else "no camera_info"
            result.no_metres = (
                f"{depth.spec.name} publishes no metres without the camera's focal length: "
                f"{why} (depth/image and points are not published)"
            )
            ks.append(None)
        return ks

    def _rectify(
        self, result: FrameOutput, rgb: np.ndarray, info: CameraInfo | None, stream: Hashable
    ) -> tuple[np.ndarray, CameraInfo | None]:
        """(the image rectified with its camera_info when that has distortion, else as
        is; the camera_info). A calibration it cannot use (NaN or absurd distortion) is
        refused: the frame is processed unrectified with no camera_info (no points, no
        depth/camera_info), and the reason goes into ``result.warnings``."""
        if info is None or not is_distorted(info):
            return rgb, info
        try:
            return self._rectifier(rgb, info, stream), info
        except ValueError as exc:
            result.refuse_camera_info(f"cannot rectify: {exc}")
            return rgb, None

    def _camera(
        self,
        result: FrameOutput,
        o: PipelineOptions,
        camera_info: CameraInfo | None,
        image_hw: Sequence[int],
        header: Header,
    ) -> tuple[Intrinsics | None, CameraInfo | None]:
        """(intrinsics at the output size, camera_info rescaled to it) or (None, None)."""
        if camera_info is None:
            return None, None
        h, w = image_hw
        out_h, out_w = self.output_hw((h, w), o)
        try:
            check_camera_info_matches(camera_info, w, h)
            return depth_camera_info(camera_info, out_w, out_h, header)
        except ValueError as exc:
            result.refuse_camera_info(str(exc))
            return None, None

    def _infer(self, group: _Group, o: PipelineOptions) -> dict[str, float]:
        """Runs the models on a group's batch and fills each frame's ``arrays``
        (``inverse``, ``metric``, ``labels``, ``confidence``, ``xyz``) as numpy. Returns
        the batch's timings in ms: with ``sync_timings`` each stage waits for the device
        so the split is true; otherwise only the final wait is timed (``download``)."""
        main = self.main
        timer = _StageTimer(main.device if self.sync_timings else None)
        with torch.inference_mode():
            images = main.upload(group.batch)
            timer.mark("upload")
            out = _DeviceOutputs({}, [{} for _ in group.arrays])
            # Frame-by-frame alignment fits with the labels: segmentation first then.
            segment_first = group.sequential is not None
            if self.segmentation is not None and segment_first:
                self._segment(images, group, out, timer)
            if self.depth is not None:
                raw = self._depth(images, group, out, timer.prefixed("depth_"))
                if raw is not None:
                    self._depth_outputs(raw, o, group, out)
                timer.mark("depth_postprocess")
            if self.segmentation is not None and not segment_first:
                self._segment(images, group, out, timer)
            out.download(group.arrays)
            timer.mark("download")
        return timer.durations_ms()

    def _segment(
        self, images: torch.Tensor, group: _Group, out: _DeviceOutputs, timer: _StageTimer
    ) -> None:
        """The segmentation model on the device: ``labels`` (and ``confidence``)."""
        assert self.segmentation is not None, "called with a segmentation model"
        mark = timer.prefixed("segmentation_")
        found = self.segmentation.infer_on_device(images, output_hw=group.out_hw, mark=mark)
        out.batch["labels"] = found.labels
        if group.confidence:
            out.batch["confidence"] = label_confidence(found.logits)
        mark("postprocess")

    def _depth(
        self, images: torch.Tensor, group: _Group, out: _DeviceOutputs, mark
    ) -> torch.Tensor | None:
        """The depth model on the device: its maps at the output size into ``out``
        (``depth_confidence``, bilinear, or ``sky``, the resized sky map's pixels at or
        above the threshold), and its depth at the network's resolution for
        :meth:`_depth_outputs` (relative inverse depth, sky 0; or metres, sky ``+Inf``),
        None for a model that needs the camera's intrinsics without the group's."""
        depth = self.depth
        assert depth is not None, "called with a depth model"
        ks = [k for k in group.image_ks if k is not None]
        use = ks if ks and len(ks) == len(group.image_ks) else None
        found = depth.infer_on_device(images, use, mark=mark)
        if found.confidence is not None:
            out.batch["depth_confidence"] = resize_maps(found.confidence, group.out_hw)
        if found.sky is not None:
            out.batch["sky"] = sky_mask(resize_maps(found.sky, group.out_hw))
        return found.depth if found.depth is not None else found.inverse_depth

    def _depth_outputs(
        self, raw: torch.Tensor, o: PipelineOptions, group: _Group, out: _DeviceOutputs
    ) -> None:
        """On the device, from the network-resolution depth ``raw``: the relative output
        (``inverse``, resized as the original: DPT bicubic, Depth Anything V2 bilinear;
        Depth Anything 3 as the geometry resizes depth, bilinear in inverse depth),
        metric depth (``metric`` for the batch, or each frame's own when their
        calibrations differ; computed at the network's resolution, saturation marked
        ``+Inf``, then upsampled without leaving the neighbours' range: bilinear in
        inverse depth, or Depth Anything V2's own bilinear resize in
        metres) and, for each frame with metric depth and intrinsics, its points
        (``xyz``), into ``out``."""
        assert self.depth is not None, "called with a depth model"
        batch = out.batch
        metric: list[torch.Tensor | None]
        interpolation = self.depth.spec.output_interpolation
        if self.depth.is_metric:
            if interpolation == "bilinear":
                # Depth Anything V2's own resize, bilinear in metres, already stays within
                # its neighbours' range: the original's numbers, then its ceiling marked.
                resized = resize_output(raw, group.out_hw, interpolation)
                batch["metric"] = device_mark_saturated(resized, self.depth.depth_ceiling)
            else:
                saturated = device_mark_saturated(raw, self.depth.depth_ceiling)
                batch["metric"] = device_upsample_depth(saturated, group.out_hw)
            if group.temporal is None:
                metric = list(batch["metric"])
            else:
                # Stabilised metres (a * depth) for depth/image; the points scale by a.
                depth = batch.pop("metric")
                maps = self._stabilize(depth, "metric", "scale", group)
                metric = [m * scale for m, (scale, _) in zip(depth, maps)]
        else:
            inverse = resize_output(raw, group.out_hw, interpolation)
            if group.temporal is None:
                batch["inverse"] = inverse
            else:
                # Stabilised inverse depth a * x + b for depth/relative (and alignment);
                # metres from it: 1 / (s * (a x + b) + t) = 1 / (s a x + (s b + t)).
                maps = self._stabilize(inverse, "inverse", "affine", group)
            if group.sequential is not None:
                self._align_in_order(inverse, group, out)
            if group.temporal is not None:
                group.calibrations = [
                    None if cal is None else (cal[0] * a, cal[0] * b + cal[1])
                    for cal, (a, b) in zip(group.calibrations, maps)
                ]
            # One calibration for the whole batch (fixed, or equal fits): one operation.
            uniform = group.calibrations[0] if len(set(group.calibrations)) == 1 else None
            if uniform is not None:
                batch["metric"] = _metric(raw, uniform, group.out_hw)
                metric = list(batch["metric"])
            else:
                metric = [
                    None if cal is None else _metric(raw[b : b + 1], cal, group.out_hw)[0]
                    for b, cal in enumerate(group.calibrations)
                ]
                for frame, m in zip(out.frames, metric):
                    if m is not None:
                        frame["metric"] = m
        if o.cloud_enabled:
            confidence = batch.get("depth_confidence")
            s = self.cloud_stride(group.out_hw[1], o)
            points = self._points(metric, group.intrinsics, o, s)
            for b, (frame, xyz) in enumerate(zip(out.frames, points)):
                if xyz is None:
                    continue
                if confidence is not None and o.cloud_min_confidence > 0:
                    unsure = confidence[b, ::s, ::s] < o.cloud_min_confidence
                    xyz = xyz.masked_fill(unsure[..., None], float("nan"))
                frame["xyz"] = xyz

    @staticmethod
    def _align_in_order(inverse: torch.Tensor, group: _Group, out: _DeviceOutputs) -> None:
        """Fills ``group.calibrations`` frame by frame from ``group.sequential``: frame
        j's calibration, then its fit on its relative output (stabilised, if it was: as
        published), as if the frames came one at a time. Waits for the device once."""
        sequential = group.sequential
        assert sequential is not None, "called with a frame-by-frame calibration"
        stabilized = group.temporal is not None
        labels = out.batch.get("labels")
        wanted = ([] if stabilized else [inverse]) + ([] if labels is None else [labels])
        host = download_to_host(wanted)
        relative = [a["inverse"] for a in group.arrays] if stabilized else host.pop(0)
        host_labels = host[0] if labels is not None else None
        for j in range(len(group.arrays)):
            group.calibrations[j] = sequential.calibration(j)
            sequential.update(
                j,
                relative[j],
                group.intrinsics[j],
                None if host_labels is None else host_labels[j],
            )

    @staticmethod
    def _stabilize(
        values: torch.Tensor, name: str, mode: Literal["affine", "scale"], group: _Group
    ) -> list[tuple[float, float]]:
        """Runs the group's stabiliser on each frame of ``values`` ((B, H, W) on the
        device: inverse depth or metres at the output size), stores the stabilised
        frames as each frame's array ``name`` and returns each frame's map (a, b).

        The stabiliser works on the host, so this waits for the device once."""
        assert group.temporal is not None, "called with a stabiliser"
        (host,) = download_to_host([values])
        maps = []
        for b, arrays in enumerate(group.arrays):
            result = group.temporal.update(group.streams[b], host[b], mode, group.stamps[b])
            arrays[name] = result.output
            group.stabilized[b] = result
            maps.append((result.scale, result.shift))
        return maps

    def cloud_stride(self, width: int, options: PipelineOptions | None = None) -> int:
        """The stride of ``points`` for published images ``width`` pixels wide (the
        options' ``cloud_stride``, or its auto value: see
        :meth:`PipelineOptions.cloud_stride_for`)."""
        o = options or self.options
        return o.cloud_stride_for(width, self.segmentation is not None)

    @staticmethod
    def _points(
        metric: list[torch.Tensor | None],
        intrinsics: list[Intrinsics | None],
        o: PipelineOptions,
        stride: int,
    ) -> list[torch.Tensor | None]:
        """Each frame's points (on the device, every ``stride``-th pixel), None where it
        has no metric depth or no intrinsics."""
        edge = o.cloud_edge_threshold if o.cloud_edge_filter else 0.0
        return [
            None
            if m is None or intr is None
            else device_backproject(
                m,
                intr.fx,
                intr.fy,
                intr.cx,
                intr.cy,
                stride,
                o.cloud_max_depth,
                o.cloud_min_depth,
                edge,
            )
            for m, intr in zip(metric, intrinsics)
        ]

    def _colored_depth(
        self, metric: np.ndarray | None, inverse: np.ndarray | None, stream: Hashable
    ) -> np.ndarray:
        """(H, W, 3) uint8 colour map of the frame's depth, near = warm, in the stream's
        smoothed range (metric depth if there is any, else the relative output)."""
        colour_range = self._ranges.get(stream)
        if colour_range is None:
            colour_range = self._ranges[stream] = StableRange(alpha=0.1)
        if metric is not None:
            # Depth in metres: near = warm, so the range runs far -> near.
            lo, hi = colour_range.update(metric)
            return colorize(metric, hi, lo)
        assert inverse is not None, "called with some depth"
        # Inverse depth: larger = nearer = warm.
        lo, hi = colour_range.update(inverse)
        return colorize(inverse, lo, hi)

    def _build_messages(
        self,
        result: FrameOutput,
        o: PipelineOptions,
        rgb: np.ndarray,
        header: Header,
        scaled_info: CameraInfo | None,
        stream: Hashable = None,
        skip: Collection[str] = (),
        on_demand: Collection[str] = (),
    ) -> None:
        """Fills ``result`` with every message of one frame from the model outputs
        (``result.arrays``), with the options the batch's inference used, except the
        topics in ``skip``, and the on-demand topics in ``on_demand``."""
        arrays = result.arrays
        h, w = rgb.shape[:2]
        out_h, out_w = self.output_hw((h, w), o)
        inverse, metric = arrays.get("inverse"), arrays.get("metric")
        labels = arrays.get("labels")
        t2 = time.perf_counter()
        msgs = result.messages
        if metric is not None:
            msgs["depth/image"] = depth_to_image_msg(metric, header)
        if inverse is not None:
            msgs["depth/relative"] = depth_to_image_msg(inverse, header)
        if (metric is not None or inverse is not None) and "depth/colored" not in skip:
            msgs["depth/colored"] = rgb_to_image_msg(
                self._colored_depth(metric, inverse, stream), header
            )
        small_rgb = None
        if labels is not None:
            msgs["segmentation/labels"] = labels_to_image_msg(labels, header)
            if "segmentation/colored" not in skip:
                small_rgb = _resize_rgb(rgb, out_h, out_w)
                msgs["segmentation/colored"] = rgb_to_image_msg(
                    overlay_labels(small_rgb, labels, PALETTE), header
                )
        if arrays.get("confidence") is not None:
            # mono8 like the labels: the probability of each pixel's label, 0..255.
            msgs["segmentation/confidence"] = labels_to_image_msg(arrays["confidence"], header)
        depth_confidence = arrays.get("depth_confidence")
        if depth_confidence is not None:
            msgs["depth/confidence"] = depth_to_image_msg(depth_confidence, header)
            if "depth/confidence_mono8" not in skip:  # bounded, for mono8 readers
                mono8 = confidence_to_mono8(depth_confidence)
                msgs["depth/confidence_mono8"] = labels_to_image_msg(mono8, header)
        if arrays.get("sky") is not None:
            msgs["depth/sky"] = labels_to_image_msg(arrays["sky"], header)
        if scaled_info is not None:
            msgs["depth/camera_info"] = scaled_info
        t3 = time.perf_counter()

        xyz = arrays.get("xyz")
        if xyz is not None:
            s = self.cloud_stride(out_w, o)
            colors = None
            if o.cloud_color:
                if small_rgb is None:
                    small_rgb = _resize_rgb(rgb, out_h, out_w)
                colors = np.ascontiguousarray(small_rgb[::s, ::s])
            cloud_labels = labels[::s, ::s] if (labels is not None and o.cloud_labels) else None
            cloud_confidence = None if depth_confidence is None else depth_confidence[::s, ::s]
            if "points" not in skip:
                msgs["points"] = make_pointcloud2(
                    header, xyz, colors, cloud_labels, confidence=cloud_confidence
                )
            if "points_confident" in on_demand:
                confident = confident_points(xyz, cloud_confidence, o.cloud_confident_threshold)
                if confident is xyz and "points" in msgs:  # nothing to leave out: one message
                    msgs["points_confident"] = msgs["points"]
                else:
                    msgs["points_confident"] = make_pointcloud2(
                        header, confident, colors, cloud_labels, confidence=cloud_confidence
                    )
        t4 = time.perf_counter()
        result.timings_ms["messages"] = (t3 - t2) * 1e3
        result.timings_ms["pointcloud"] = (t4 - t3) * 1e3


def _metric(
    inverse: torch.Tensor, calibration: tuple[float, float], hw: tuple[int, int]
) -> torch.Tensor:
    """(B, h, w) relative inverse depth at the network's resolution -> (B, H, W) metres
    at ``hw`` under a (scale, shift) calibration, upsampled in inverse depth."""
    return device_upsample_depth(device_relative_to_metric(inverse, *calibration), hw)


def _resize_rgb(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def _fixed_calibrations(o: PipelineOptions, n: int) -> list[tuple[float, float] | None]:
    """The options' calibration for each of ``n`` frames (None: not calibrated)."""
    fixed = (o.relative_depth_scale, o.relative_depth_shift)
    return [fixed if o.relative_depth_scale > 0 else None] * n


def _size_groups(rgbs: Sequence[np.ndarray], image_ks: list[np.ndarray | None]) -> list[list[int]]:
    """The batch's frame indices grouped by image size, in order of first appearance:
    frames of one size run as one batch (and, for a model that needs intrinsics, only
    with the frames that have them, or only with those that do not)."""
    groups: dict[tuple[int, int, bool], list[int]] = {}
    for i, rgb in enumerate(rgbs):
        key = (int(rgb.shape[0]), int(rgb.shape[1]), image_ks[i] is not None)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _checked_batch(
    rgbs: Sequence[np.ndarray],
    headers: Sequence[Header],
    infos: Sequence[CameraInfo | None],
    streams: Sequence[Hashable] | None,
) -> Sequence[Hashable]:
    """The stream keys of a batch (one stream when None); ValueError on unequal lengths."""
    if not (len(rgbs) == len(headers) == len(infos)):
        raise ValueError(
            f"process_batch needs as many headers and camera_infos as images, "
            f"got {len(rgbs)} images, {len(headers)} headers, "
            f"{len(infos)} camera_infos"
        )
    if streams is None:
        return [None] * len(rgbs)
    if len(streams) != len(rgbs):
        raise ValueError(
            f"process_batch needs one stream key per image, got "
            f"{len(streams)} for {len(rgbs)} images"
        )
    return streams


class _StageTimer:
    """Wall-clock marks between pipeline stages, summed by stage name.

    Args:
        sync_device: wait for this CUDA device at each mark (true per-stage device
            times, for benchmarks); None = no waits (the frame loop).
    """

    def __init__(self, sync_device: torch.device | None = None) -> None:
        self._sync = sync_device if sync_device is not None and sync_device.type == "cuda" else None
        self._marks: list[tuple[str, float]] = [("start", time.perf_counter())]

    def mark(self, stage: str) -> None:
        if self._sync is not None:
            torch.cuda.synchronize(self._sync)
        self._marks.append((stage, time.perf_counter()))

    def prefixed(self, prefix: str):
        """A ``mark`` for a predictor's stages: ``model`` becomes ``<prefix>model``,
        ``preprocess`` stays ``preprocess`` and ``postprocess`` counts as
        ``<prefix>postprocess``."""

        def mark(stage: str) -> None:
            self.mark(stage if stage == "preprocess" else prefix + stage)

        return mark

    def durations_ms(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for (_, t_prev), (name, t) in zip(self._marks, self._marks[1:]):
            out[name] = out.get(name, 0.0) + (t - t_prev) * 1e3
        return out
