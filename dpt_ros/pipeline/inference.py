"""Inference, the pipeline's model stage: a batch's frames grouped by image size, and
each group through the models on their device (:meth:`Predictor.infer_on_device`) with
one upload of the uint8 pixels and, at the end, one download of every output and a
single wait for the device. What is made of the depth on the device (metres, the
stabilisation, points) is the depth stage's, handed in as a step."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dpt_ros.models import Predictor
from dpt_ros.models.da3_transforms import resize_maps, sky_mask
from dpt_ros.models.predictor import download_to_host, label_confidence
from dpt_ros.pipeline.intake import Frame


def size_groups(frames: Sequence[Frame], sequential: bool = False) -> list[list[int]]:
    """The batch's frame indices grouped by image size, in order of first appearance:
    frames of one size run as one batch (and, for a model that needs intrinsics, only
    with the frames that have them, or only with those that do not). ``sequential``:
    the calibration is asked frame by frame, which needs a batch of one image size
    (ValueError otherwise)."""
    groups: dict[tuple[int, int, bool], list[int]] = {}
    for i, frame in enumerate(frames):
        key = (*frame.sizes.image_hw, frame.image_k is not None)
        groups.setdefault(key, []).append(i)
    if sequential and len(groups) > 1:
        raise ValueError("frame-by-frame calibration needs a batch of one image size")
    return list(groups.values())


@dataclass
class Batch:
    """Frames of one image size, run through the models as one batch.

    Attributes:
        images: (B, H, W, 3) uint8 RGB.
        out_hw: (H, W) of the published images.
        input_hw: each model's network input (h, w), depth's then segmentation's
            (computed once, in intake).
        image_ks: each frame's camera matrix at the image's size (metric Depth Anything
            3; a group's frames either all have one or none does).
        arrays: each frame's arrays, filled with numpy at the end.
        confidence: build the segmentation ``confidence``.
        segment_first: run segmentation before depth (online alignment frame by frame
            fits with the labels).
    """

    images: np.ndarray
    out_hw: tuple[int, int]
    input_hw: tuple[tuple[int, int] | None, ...]
    image_ks: list[np.ndarray | None]
    arrays: list[dict[str, np.ndarray]]
    confidence: bool
    segment_first: bool

    @classmethod
    def of(
        cls,
        frames: Sequence[Frame],
        arrays: list[dict[str, np.ndarray]],
        confidence: bool,
        segment_first: bool,
    ) -> Batch:
        """The batch of ``frames`` (one size), filling ``arrays``."""
        images = np.stack([f.rgb for f in frames])
        image_ks = [f.image_k for f in frames]
        sizes = frames[0].sizes
        return cls(
            images, sizes.output_hw, sizes.input_hw, image_ks, arrays, confidence, segment_first
        )


@dataclass
class DeviceOutputs:
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


#: The depth stage's work on the device: from the network-resolution depth (relative
#: inverse depth or metres) into the group's outputs.
DepthStep = Callable[[torch.Tensor, DeviceOutputs], None]


def run_models(
    depth: Predictor | None,
    segmentation: Predictor | None,
    batch: Batch,
    depth_step: DepthStep | None,
    sync_timings: bool = False,
) -> dict[str, float]:
    """Runs the models on ``batch`` and fills each frame's ``arrays`` (``inverse``,
    ``metric``, ``labels``, ``confidence``, ``xyz``, ...) as numpy.

    Args:
        depth, segmentation: the models (at least one); the depth model, if it runs,
            uploads the frames.
        batch: the frames.
        depth_step: the depth stage, run on the device after the depth model (given
            where it runs).
        sync_timings: wait for the device after each stage, so the split is true
            device time (benchmarks); otherwise only the final wait is timed
            (``download``).

    Returns:
        The batch's timings in ms by stage.
    """
    main = depth if depth is not None else segmentation
    assert main is not None, "called with a model"
    timer = StageTimer(main.device if sync_timings else None)
    with torch.inference_mode():
        images = main.upload(batch.images)
        timer.mark("upload")
        out = DeviceOutputs({}, [{} for _ in batch.arrays])
        if segmentation is not None and batch.segment_first:
            _segment(segmentation, images, batch, out, timer)
        if depth is not None:
            raw = _depth(depth, images, batch, out, timer.prefixed("depth_"))
            if raw is not None and depth_step is not None:
                depth_step(raw, out)
            timer.mark("depth_postprocess")
        if segmentation is not None and not batch.segment_first:
            _segment(segmentation, images, batch, out, timer)
        out.download(batch.arrays)
        timer.mark("download")
    return timer.durations_ms()


def _segment(
    segmentation: Predictor,
    images: torch.Tensor,
    batch: Batch,
    out: DeviceOutputs,
    timer: StageTimer,
) -> None:
    """The segmentation model on the device: ``labels`` (and ``confidence``)."""
    mark = timer.prefixed("segmentation_")
    found = segmentation.infer_on_device(
        images, output_hw=batch.out_hw, mark=mark, input_hw=batch.input_hw[1]
    )
    out.batch["labels"] = found.labels
    if batch.confidence:
        out.batch["confidence"] = label_confidence(found.logits)
    mark("postprocess")


def _depth(
    depth: Predictor,
    images: torch.Tensor,
    batch: Batch,
    out: DeviceOutputs,
    mark: Callable[[str], None],
) -> torch.Tensor | None:
    """The depth model on the device: its maps at the output size into ``out``
    (``depth_confidence``, bilinear, or ``sky``, the resized sky map's pixels at or
    above the threshold), and its depth at the network's resolution for the depth stage
    (relative inverse depth, sky 0; or metres, sky ``+Inf``), None for a model that
    needs the camera's intrinsics without the group's."""
    ks = [k for k in batch.image_ks if k is not None]
    use = ks if ks and len(ks) == len(batch.image_ks) else None
    found = depth.infer_on_device(images, use, mark=mark, input_hw=batch.input_hw[0])
    if found.confidence is not None:
        out.batch["depth_confidence"] = resize_maps(found.confidence, batch.out_hw)
    if found.sky is not None:
        out.batch["sky"] = sky_mask(resize_maps(found.sky, batch.out_hw))
    return found.depth if found.depth is not None else found.inverse_depth


class StageTimer:
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

    def prefixed(self, prefix: str) -> Callable[[str], None]:
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
