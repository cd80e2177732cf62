"""Depth, the pipeline's geometry stage: from the depth model's output at the network's
resolution to what is published, on the device: the relative output at the published
size, metric depth (a metric model's metres, or a relative model's under a calibration:
fixed, or fitted online frame by frame), the temporal stabilisation of each stream and
each frame's points. No message is built here."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

import numpy as np
import torch

from dpt_ros.models import Predictor
from dpt_ros.models.geometry import backproject as device_backproject
from dpt_ros.models.geometry import mark_saturated as device_mark_saturated
from dpt_ros.models.geometry import relative_to_metric as device_relative_to_metric
from dpt_ros.models.geometry import upsample_depth as device_upsample_depth
from dpt_ros.models.predictor import download_to_host
from dpt_ros.models.transforms import resize_output
from dpt_ros.pipeline.inference import Batch, DeviceOutputs, run_models, size_groups
from dpt_ros.pipeline.intake import Frame
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.pipeline.status import NoMetres
from dpt_ros.ros.camera import Intrinsics

#: A relative model's calibration for metres: ``1 / (scale * x + shift)``.
Calibration = tuple[float, float]


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


def no_metres(frame: Frame, model: str) -> NoMetres | None:
    """For a model that needs the camera's matrix for metres: why ``frame`` gets none
    (it has no accepted camera_info), or None when it has one."""
    return NoMetres(model, frame.refusal) if frame.image_k is None else None


def batch_calibrations(
    calibrations: Sequence[Calibration | None] | SequentialCalibration | None,
    o: PipelineOptions,
    n: int,
) -> tuple[list[Calibration | None], SequentialCalibration | None]:
    """(each of ``n`` frames' calibration, the frame-by-frame alignment or None): as
    given, filled in frame by frame (``SequentialCalibration``, all None until then),
    or None for the options' fixed one (None per frame: not calibrated)."""
    if calibrations is not None and not isinstance(calibrations, Sequence):
        return [None] * n, calibrations
    if calibrations:
        return list(calibrations), None
    fixed = (o.relative_depth_scale, o.relative_depth_shift)
    return [fixed if o.relative_depth_scale > 0 else None] * n, None


@dataclass
class DepthGroup:
    """The depth stage's view of a group of frames of one size (one batch).

    Attributes:
        out_hw: (H, W) of the published images.
        cloud_stride: the stride of ``points``.
        intrinsics: each frame's camera at the published size, or None.
        calibrations: each frame's calibration (filled by ``sequential`` if given).
        arrays: each frame's arrays (the stabilised ones go in here from the host).
        temporal: the stabiliser, or None (off).
        streams, stamps: each frame's stream and stamp (seconds), for ``temporal``.
        stabilized: each frame's stabilisation (filled here).
        sequential: online alignment frame by frame, or None.
    """

    out_hw: tuple[int, int]
    cloud_stride: int
    intrinsics: list[Intrinsics | None]
    calibrations: list[Calibration | None]
    arrays: list[dict[str, np.ndarray]]
    temporal: Stabilizer | None
    streams: list[Hashable]
    stamps: list[float]
    stabilized: list[Stabilized | None]
    sequential: SequentialCalibration | None

    @classmethod
    def of(
        cls,
        frames: Sequence[Frame],
        arrays: list[dict[str, np.ndarray]],
        calibrations: list[Calibration | None],
        temporal: Stabilizer | None,
        sequential: SequentialCalibration | None,
    ) -> DepthGroup:
        """The group of ``frames`` (one size), filling ``arrays``."""
        sizes = frames[0].sizes
        return cls(
            sizes.output_hw,
            sizes.cloud_stride,
            [None if f.camera is None else f.camera.intrinsics for f in frames],
            calibrations,
            arrays,
            temporal,
            [f.stream for f in frames],
            [f.stamp_s for f in frames],
            [None] * len(frames),
            sequential,
        )


def run_batch(
    models: tuple[Predictor | None, Predictor | None],
    frames: Sequence[Frame],
    arrays: list[dict[str, np.ndarray]],
    calibrations: Sequence[Calibration | None] | SequentialCalibration | None,
    temporal: Stabilizer | None,
    o: PipelineOptions,
    confidence: bool,
    sync_timings: bool = False,
) -> list[tuple[dict[str, float], Stabilized | None]]:
    """Runs a batch's frames through the models, one batch per image size (the inference
    stage), and the depth model's output through this stage (:func:`depth_outputs`).

    Args:
        models: (depth, segmentation), either may be None.
        frames: the batch's frames.
        arrays: each frame's arrays, filled here (numpy, at the published size).
        calibrations: each frame's (scale, shift), a frame-by-frame calibration, or
            None (the options'): see :func:`batch_calibrations`.
        temporal: the stabiliser, or None (off).
        o: the options the batch runs under.
        confidence: build the segmentation ``confidence``.
        sync_timings: see :func:`run_models`.

    Returns:
        Each frame's share of its group's timings (ms) and its stabilisation (or None).
    """
    depth, segmentation = models
    cals, sequential = batch_calibrations(calibrations, o, len(frames))
    out: list[tuple[dict[str, float], Stabilized | None]] = [({}, None)] * len(frames)
    for idx in size_groups(frames, sequential is not None):
        members = [frames[i] for i in idx]
        group_arrays, group_cals = [arrays[i] for i in idx], [cals[i] for i in idx]
        group = DepthGroup.of(members, group_arrays, group_cals, temporal, sequential)
        batch = Batch.of(members, group_arrays, confidence, sequential is not None)
        step = None if depth is None else partial(depth_outputs, depth, o, group)
        timings = run_models(depth, segmentation, batch, step, sync_timings)
        share = {k: v / len(idx) for k, v in timings.items()}
        for j, i in enumerate(idx):
            out[i] = (share, group.stabilized[j])
    return out


def depth_outputs(
    depth: Predictor,
    o: PipelineOptions,
    group: DepthGroup,
    raw: torch.Tensor,
    out: DeviceOutputs,
) -> None:
    """On the device, from the network-resolution depth ``raw``: the relative output
    (``inverse``, resized as the original: DPT bicubic, Depth Anything V2 bilinear;
    Depth Anything 3 as the geometry resizes depth, bilinear in inverse depth), metric
    depth (``metric`` for the batch, or each frame's own when their calibrations differ;
    computed at the network's resolution, saturation marked ``+Inf``, then upsampled
    without leaving the neighbours' range: bilinear in inverse depth, or Depth Anything
    V2's own bilinear resize in metres) and, for each frame with metric depth and
    intrinsics, its points (``xyz``), into ``out``."""
    if depth.is_metric:
        metric = _metric_model(depth, raw, group, out)
    else:
        metric = _relative_model(depth, raw, group, out)
    if o.cloud_enabled:
        _cloud(metric, o, group, out)


def _metric_model(
    depth: Predictor, raw: torch.Tensor, group: DepthGroup, out: DeviceOutputs
) -> list[torch.Tensor | None]:
    """A metric model's ``metric`` (stabilised where a stabiliser runs); returns each
    frame's metres for its points."""
    batch = out.batch
    if depth.spec.output_interpolation == "bilinear":
        # Depth Anything V2's own resize, bilinear in metres, already stays within
        # its neighbours' range: the original's numbers, then its ceiling marked.
        resized = resize_output(raw, group.out_hw, "bilinear")
        batch["metric"] = device_mark_saturated(resized, depth.depth_ceiling)
    else:
        saturated = device_mark_saturated(raw, depth.depth_ceiling)
        batch["metric"] = device_upsample_depth(saturated, group.out_hw)
    if group.temporal is None:
        return list(batch["metric"])
    # Stabilised metres (a * depth) for depth/image; the points scale by a.
    metres = batch.pop("metric")
    maps = _stabilize(metres, "metric", "scale", group)
    return [m * scale for m, (scale, _) in zip(metres, maps)]


def _relative_model(
    depth: Predictor, raw: torch.Tensor, group: DepthGroup, out: DeviceOutputs
) -> list[torch.Tensor | None]:
    """A relative model's ``inverse`` (stabilised where a stabiliser runs) and its
    ``metric`` under each frame's calibration; returns each frame's metres (None: not
    calibrated)."""
    inverse = resize_output(raw, group.out_hw, depth.spec.output_interpolation)
    if group.temporal is None:
        out.batch["inverse"] = inverse
    else:
        # Stabilised inverse depth a * x + b for depth/relative (and alignment);
        # metres from it: 1 / (s * (a x + b) + t) = 1 / (s a x + (s b + t)).
        maps = _stabilize(inverse, "inverse", "affine", group)
    if group.sequential is not None:
        _align_in_order(inverse, group, out)
    if group.temporal is not None:
        group.calibrations = [
            None if cal is None else (cal[0] * a, cal[0] * b + cal[1])
            for cal, (a, b) in zip(group.calibrations, maps)
        ]
    # One calibration for the whole batch (fixed, or equal fits): one operation.
    uniform = group.calibrations[0] if len(set(group.calibrations)) == 1 else None
    if uniform is not None:
        out.batch["metric"] = _metric(raw, uniform, group.out_hw)
        return list(out.batch["metric"])
    metric = [
        None if cal is None else _metric(raw[b : b + 1], cal, group.out_hw)[0]
        for b, cal in enumerate(group.calibrations)
    ]
    for frame, m in zip(out.frames, metric):
        if m is not None:
            frame["metric"] = m
    return metric


def _cloud(
    metric: list[torch.Tensor | None], o: PipelineOptions, group: DepthGroup, out: DeviceOutputs
) -> None:
    """Each frame's points (``xyz``), less those whose depth confidence is below
    ``cloud_min_confidence`` (NaN there), where it has metres and intrinsics."""
    confidence = out.batch.get("depth_confidence")
    s = group.cloud_stride
    points = _points(metric, group.intrinsics, o, s)
    for b, (frame, xyz) in enumerate(zip(out.frames, points)):
        if xyz is None:
            continue
        if confidence is not None and o.cloud_min_confidence > 0:
            unsure = confidence[b, ::s, ::s] < o.cloud_min_confidence
            xyz = xyz.masked_fill(unsure[..., None], float("nan"))
        frame["xyz"] = xyz


def _align_in_order(inverse: torch.Tensor, group: DepthGroup, out: DeviceOutputs) -> None:
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


def _stabilize(
    values: torch.Tensor, name: str, mode: Literal["affine", "scale"], group: DepthGroup
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


def _metric(inverse: torch.Tensor, calibration: Calibration, hw: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) relative inverse depth at the network's resolution -> (B, H, W) metres
    at ``hw`` under a (scale, shift) calibration, upsampled in inverse depth."""
    return device_upsample_depth(device_relative_to_metric(inverse, *calibration), hw)
