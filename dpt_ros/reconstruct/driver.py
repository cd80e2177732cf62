"""The work of ``dpt-ros reconstruct`` on one input, apart from the model: frames in,
windows through a callable, windows chained, files written (no torch, no rclpy).

The model is any callable ``run_window(images, names) -> WindowResult``
(:data:`RunWindow`): the command wires a multi-view predictor to it; tests give it
synthetic geometry.

A frame that several windows hold takes its depth, confidence and camera from the first
window that holds it (the one whose world the next window was aligned to); later
windows' copies of it serve only to align them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dpt_ros.reconstruct.chain import (
    DEFAULT_POINT_STRIDE,
    AlignedWindow,
    WindowChain,
    WindowResult,
    back_project,
)
from dpt_ros.reconstruct.frames import Frame, FrameSkips, windows
from dpt_ros.reconstruct.grid import (
    colours_on_network_grid,
    full_box,
    image_mask,
    intrinsics_to_input,
    maps_to_input,
)
from dpt_ros.reconstruct.metric import (
    MetricDepth,
    MetricFit,
    fit_metric_scale,
    sample_on_network_grid,
    scale_window,
)
from dpt_ros.reconstruct.writers import (
    CameraRecord,
    select_points,
    write_cameras_json,
    write_colmap,
    write_frame_maps,
    write_ply,
    write_tum,
    write_window,
)

__all__ = ["RunWindow", "ReconstructOptions", "ReconstructSummary", "reconstruct", "OUTPUT_SIZES"]

_LOG = logging.getLogger(__name__)

#: ``--output-size`` values.
OUTPUT_SIZES = ("network", "input")

#: The model: (H, W, 3) uint8 RGB images of one window and their names -> its outputs.
RunWindow = Callable[[Sequence[np.ndarray], Sequence[str]], WindowResult]


@dataclass(frozen=True)
class ReconstructOptions:
    """How a reconstruction is made and written.

    Attributes:
        window: frames per window (views per forward), >= 1.
        overlap: frames shared by consecutive windows, 0 <= overlap < window; 0 = not
            chained.
        output_size: ``network`` (the model's grid) or ``input`` (each image's size)
            for depth/, confidence/ and the intrinsics (points.ply always comes
            from the network grid).
        min_confidence: points.ply keeps points of at least this confidence.
        confidence_percentile: ... and of at least this percentile (0..100) of all.
        voxel: one point per cube of this side (the reconstruction's unit).
        point_stride: depth pixels taken every this many pixels to align windows.
    """

    window: int
    overlap: int = 0
    output_size: str = "network"
    min_confidence: float | None = None
    confidence_percentile: float | None = None
    voxel: float | None = None
    point_stride: int = DEFAULT_POINT_STRIDE

    def validated(self) -> ReconstructOptions:
        """Raises ValueError naming a bad value."""
        if self.window < 1:
            raise ValueError(f"--window must be at least 1, got {self.window}")
        if not 0 <= self.overlap < self.window:
            raise ValueError(
                f"--overlap {self.overlap} must be at least 0 and smaller than --window "
                f"{self.window} (consecutive windows share that many frames)"
            )
        if self.output_size not in OUTPUT_SIZES:
            raise ValueError(f"--output-size must be one of {', '.join(OUTPUT_SIZES)}")
        p = self.confidence_percentile
        if p is not None and not 0 <= p <= 100:
            raise ValueError(f"--confidence-percentile must be in 0..100, got {p}")
        if self.voxel is not None and not self.voxel > 0:
            raise ValueError(f"--voxel must be a positive length, got {self.voxel}")
        return self


@dataclass
class ReconstructSummary:
    """What a run did: frames and windows, alignment quality, seconds per stage."""

    frames: int = 0
    windows: int = 0
    points: int = 0
    chained: bool = False
    fits: list[Any] = field(default_factory=list)
    metric_scales: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Adds the seconds the ``with`` block takes to ``stage`` (not where it raises)."""
        start = time.perf_counter()
        yield
        self.add_time(stage, time.perf_counter() - start)


def _check_window(result: WindowResult, frames: Sequence[Frame]) -> None:
    if not isinstance(result, WindowResult):
        raise TypeError(f"run_window returned {type(result).__name__}, not a WindowResult")
    if len(result) != len(frames):
        raise ValueError(f"the model returned {len(result)} views for a window of {len(frames)}")


def _without_padding(raw: WindowResult, frames: Sequence[Frame]) -> WindowResult:
    """The window with the network pixels off its images (VGGT's white padding:
    :func:`~dpt_ros.reconstruct.grid.image_mask`) made invalid: depth and world points
    NaN, confidence 0; so the metric fit, the chain, depth/, confidence/ and the cloud
    never take the model's outputs on the padding for the scene."""
    if raw.network_box is None:
        return raw
    net_hw = raw.depth.shape[1:]
    masks = np.stack(
        [image_mask(net_hw, f.rgb.shape[:2], b) for f, b in zip(frames, raw.network_box)]
    )
    if masks.all():
        return raw
    points = raw.world_points
    return replace(
        raw,
        depth=np.where(masks, raw.depth, np.nan).astype(np.float32),
        confidence=np.where(masks, raw.confidence, 0.0).astype(np.float32),
        world_points=None
        if points is None
        else np.where(masks[..., None], points, np.nan).astype(np.float32),
    )


def _frame_outputs(
    aligned: AlignedWindow, j: int, frame: Frame, output_size: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(depth, confidence, intrinsics, network-grid colours) of the window's j-th frame:
    the maps and intrinsics on the output grid, the colours on the network grid."""
    w = aligned.window
    net_hw = w.depth.shape[1:]
    input_hw = frame.rgb.shape[:2]
    box = full_box(input_hw) if w.network_box is None else np.asarray(w.network_box[j], float)
    colours = colours_on_network_grid(frame.rgb, net_hw, box)
    if output_size == "input":
        depth, conf = maps_to_input(w.depth[j], w.confidence[j], input_hw, box)
        return depth, conf, intrinsics_to_input(w.intrinsics[j], net_hw, box), colours
    return (
        np.asarray(w.depth[j], np.float32),
        np.asarray(w.confidence[j], np.float32),
        np.asarray(w.intrinsics[j], np.float64),
        colours,
    )


def _metric_fit(metric: MetricDepth, raw: WindowResult, frames: Sequence[Frame]) -> MetricFit:
    """The window's scale to the metric model's metres, on the window's network grid."""
    missing = [f.name for f in frames if f.camera_info is None]
    if missing:
        raise ValueError(
            f"--metric-model needs each frame's intrinsics, and {missing[0]} has none (no "
            "camera_info, or one for another image size): give a bag with camera_info or "
            "--camera-info FILE"
        )
    images = [f.rgb for f in frames]
    intrinsics = [np.asarray(f.camera_info, np.float64) for f in frames]
    net_hw = (int(raw.depth.shape[1]), int(raw.depth.shape[2]))
    if raw.network_box is None:
        metres, sky = metric(images, intrinsics, net_hw)
    else:
        # a crop or a pad: the metric model on the input grid, then the window's region
        on_input, sky_input = metric(images, intrinsics, frames[0].rgb.shape[:2])
        box = np.asarray(raw.network_box, np.float64)
        metres = np.stack(
            [sample_on_network_grid(m, net_hw, b, np.nan) for m, b in zip(on_input, box)]
        )
        sky = np.stack([sample_on_network_grid(s, net_hw, b, 1.0) for s, b in zip(sky_input, box)])
    return fit_metric_scale(raw.depth, raw.confidence, metres, sky)


def _window_info(
    aligned: AlignedWindow, frames: Sequence[Frame], metric_fit: MetricFit | None
) -> dict[str, Any]:
    """The window's entry in cameras.json's ``windows``."""
    s = aligned.sim3
    info: dict[str, Any] = {
        "index": aligned.index,
        "frames": [f.name for f in frames],
        "reference_view": int(aligned.window.reference_view),
        "sim3_to_world": {
            "scale": float(s.scale),
            "rotation": [[float(v) for v in row] for row in s.rotation],
            "translation": [float(v) for v in s.translation],
        },
        "fit": None,
    }
    if aligned.fit is not None:
        info["fit"] = {
            "correspondences": aligned.fit.points,
            "inlier_fraction": aligned.fit.inlier_fraction,
            "rms": aligned.fit.rms,
            "iterations": aligned.fit.iterations,
        }
    if metric_fit is not None:
        info["metric_scale"] = {
            "scale": metric_fit.scale,
            "pixels": metric_fit.pixels,
            "median_confidence": metric_fit.median_confidence,
        }
    return info


def _scale_text(metric: bool, not_chained: bool) -> str:
    """How the unit of cameras.json was set."""
    if not metric:
        if not_chained:
            return "each window's own relative unit (windows not chained)"
        return (
            "relative: the first window's unit (the model's own scale); every later "
            "window scaled onto it by its Sim(3) to the window before"
        )
    fitted = (
        "metres: each window's depth and translations scaled by a least-squares fit of its "
        "depth to the metric model's metres (confident non-sky pixels; windows[].metric_scale)"
    )
    if not_chained:
        return fitted + "; windows not chained, each in its own world"
    return (
        fitted + "; later windows then scaled onto the first by their Sim(3) to the window before"
    )


def reconstruct(
    frames: Iterable[Frame],
    run_window: RunWindow,
    out: Path,
    options: ReconstructOptions,
    extra: dict[str, Any] | None = None,
    skips: FrameSkips | None = None,
    metric: MetricDepth | None = None,
) -> ReconstructSummary:
    """Runs the model on windows of ``frames``, chains them and writes every output
    into ``out`` (created): windows/, depth/, confidence/, cameras.json,
    trajectory.tum, points.ply, colmap/ (see docs/reconstruct.md).

    Args:
        extra: more entries for cameras.json (the model, its settings).
        skips: what reading the frames skipped (counted in cameras.json).
        metric: a metric model: each window is scaled to its metres before chaining
            (:func:`~dpt_ros.reconstruct.metric.fit_metric_scale`) and the unit is
            metres; every frame needs its intrinsics (``Frame.camera_info``).

    Raises:
        ValueError: bad options, no readable frame, frames of different sizes in one
            window, a model output of the wrong shape, windows that do not agree; with
            ``metric``, a frame without intrinsics or a window with too few pixels to
            fit its scale.
    """
    options.validated()
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("windows", "depth", "confidence"):
        (out / sub).mkdir(exist_ok=True)
    run = _Reconstruction(out, options, metric)
    for win in windows(iter(frames), options.window, options.overlap):
        aligned = run.add_window(win, run_window)
        with run.summary.timed("frames"):
            for j, frame in enumerate(win):
                if frame.index not in run.records:
                    run.add_frame(aligned, j, frame)
    return run.finish(extra, skips)


class _Reconstruction:
    """One run of :func:`reconstruct` under way: the chain of windows, and what they
    gave so far (a camera record and a cloud per frame, an entry of cameras.json per
    window), until :meth:`finish` writes the files of the whole run."""

    def __init__(self, out: Path, options: ReconstructOptions, metric: MetricDepth | None) -> None:
        self.out = out
        self.options = options
        self.metric = metric
        self.summary = ReconstructSummary()
        self.chain = WindowChain(options.overlap, options.point_stride)
        #: {frame index: its camera}, from the first window that holds the frame.
        self.records: dict[int, CameraRecord] = {}
        self.window_infos: list[dict[str, Any]] = []
        #: (xyz, rgb, confidence) of each frame's points, in the chain's world.
        self.clouds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add_window(self, win: Sequence[Frame], run_window: RunWindow) -> AlignedWindow:
        """The model on one window; its raw outputs written to windows/, the padding
        masked, the window scaled to metres (with a metric model) and chained."""
        names = [f.name for f in win]
        with self.summary.timed("model"):
            raw = run_window([f.rgb for f in win], names)
        _check_window(raw, win)
        with self.summary.timed("chain"):
            write_window(self.out / "windows" / f"{self.chain.count:04d}.npz", raw, names)
            raw = _without_padding(raw, win)
        metric_fit = None
        if self.metric is not None:
            with self.summary.timed("metric"):
                metric_fit = _metric_fit(self.metric, raw, win)
                raw = scale_window(raw, metric_fit.scale)
                self.summary.metric_scales.append(metric_fit.scale)
        with self.summary.timed("chain"):
            aligned = self.chain.add([f.index for f in win], raw)
        if aligned.fit is not None:
            self.summary.fits.append(aligned.fit)
        self.window_infos.append(_window_info(aligned, win, metric_fit))
        return aligned

    def add_frame(self, aligned: AlignedWindow, j: int, frame: Frame) -> None:
        """The window's j-th frame, seen for the first time: its depth/ and
        confidence/ maps written, its camera recorded, its points kept."""
        depth, conf, k, colours = _frame_outputs(aligned, j, frame, self.options.output_size)
        write_frame_maps(self.out, frame.stem, depth, conf)
        self.records[frame.index] = CameraRecord(
            name=frame.name,
            stem=frame.stem,
            window=aligned.index,
            camera_from_world=np.asarray(aligned.window.camera_from_world[j], np.float64),
            intrinsics=k,
            width=int(depth.shape[1]),
            height=int(depth.shape[0]),
            stamp_ns=frame.stamp_ns,
            camera_info=frame.camera_info,
        )
        self.clouds.append(_frame_cloud(aligned.window, j, colours, self.options))

    def finish(self, extra: dict[str, Any] | None, skips: FrameSkips | None) -> ReconstructSummary:
        """Writes cameras.json, trajectory.tum, points.ply and colmap/; the summary."""
        if not self.records:
            raise ValueError("no readable frame in the input")
        summary, chain, options = self.summary, self.chain, self.options
        summary.frames, summary.windows = len(self.records), chain.count
        summary.chained = options.overlap > 0 and chain.count > 1
        ordered = [self.records[i] for i in sorted(self.records)]
        not_chained = chain.count > 1 and options.overlap == 0
        with summary.timed("cameras"):
            self._write_cameras(ordered, not_chained, extra, skips)
        with summary.timed("points"):
            xyz, rgb, conf = select_points(
                np.concatenate([c[0] for c in self.clouds]),
                np.concatenate([c[1] for c in self.clouds]),
                np.concatenate([c[2] for c in self.clouds]),
                min_confidence=options.min_confidence,
                confidence_percentile=options.confidence_percentile,
                voxel=options.voxel,
            )
            summary.points = len(xyz)
            write_ply(self.out / "points.ply", xyz, rgb, conf)
        with summary.timed("colmap"):
            write_colmap(self.out / "colmap", ordered, xyz, rgb)
        if not_chained:
            _LOG.warning(
                "--overlap 0: the %d windows are not chained; each keeps its own world and "
                "unit (cameras.json says so)",
                chain.count,
            )
        return summary

    def _write_cameras(
        self,
        ordered: list[CameraRecord],
        not_chained: bool,
        extra: dict[str, Any] | None,
        skips: FrameSkips | None,
    ) -> None:
        """cameras.json and trajectory.tum of the frames, in frame order."""
        write_cameras_json(
            self.out / "cameras.json",
            ordered,
            unit="relative" if self.metric is None else "metres",
            scale=_scale_text(self.metric is not None, not_chained),
            chained=self.options.overlap > 0,
            one_world=not not_chained,
            windows=self.window_infos,
            extra={
                **(extra or {}),
                "skipped": {
                    "images": len(skips.images) if skips else 0,
                    "camera_info": skips.camera_info if skips else 0,
                },
            },
        )
        write_tum(self.out / "trajectory.tum", ordered)


def _frame_cloud(
    window: WindowResult, j: int, colours: np.ndarray, options: ReconstructOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xyz, rgb, confidence) of the window's j-th frame's valid depth pixels, in the
    window's world; thinned already where the options allow it."""
    # The cloud from the network grid, whatever the output grid: its size stays
    # that of the model's outputs, not of a phone's 12-megapixel photos.
    d_net = window.depth[j]
    rows, cols = np.nonzero(np.isfinite(d_net) & (d_net > 0))
    xyz = back_project(d_net, window.intrinsics[j], window.camera_from_world[j], rows, cols)
    cloud = (
        xyz.astype(np.float32),
        colours[rows, cols],
        np.asarray(window.confidence[j], np.float32)[rows, cols],
    )
    if options.voxel and options.confidence_percentile is None:
        # Thinned frame by frame too, so that memory follows the scene's volume,
        # not the number of frames (a percentile needs every point first).
        cloud = select_points(*cloud, min_confidence=options.min_confidence, voxel=options.voxel)
    return cloud
