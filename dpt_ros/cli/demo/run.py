"""``dpt-ros demo``: a synthetic camera run through the real ``dpt_node``, end to end.

1. A short camera sequence is rendered with numpy (ray casting): a textured ground
   plane, boxes and spheres, seen from a camera moving forward at 10 Hz, with its
   ``CameraInfo`` and the exact depth. It is written as a rosbag2 bag
   (``<output>/input_bag``: ``/camera/image_raw``, ``/camera/camera_info`` and the
   ground truth ``/camera/ground_truth/depth``), so it can be replayed with
   ``dpt-ros play`` or processed with ``dpt-ros bag``.
2. The bag's frames are published over ROS topics (under ``/dpt_ros_demo/camera``) to
   an in-process ``DptNode``, one frame at a time (the next frame goes out when every
   output of the previous one has arrived, so none is dropped on a slow CPU), and the
   node's outputs are collected.
3. What a user looks at is written to the output directory, per frame
   ``frame_XXX_input.png``, ``frame_XXX_depth_color.png``,
   ``frame_XXX_labels_overlay.png`` and ``frame_XXX_cloud_preview.png`` (the
   PointCloud2 seen from above and behind the camera, coloured by depth), plus
   ``summary.json``; a summary is printed.

Weights: the official file of each model is used when found in ``--weights-dir`` or
in the checkpoint cache (``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``). The demo never
downloads: a missing file means random weights (``*.random_weights``), announced in a
banner, and meaningless outputs (the plumbing and the timing are still real).

Metric depth for the point cloud: a metric model (``dpt_hybrid_nyu``,
``dpt_hybrid_kitti``) is used as is. A relative model (the default ``dpt_hybrid``)
gets the calibration ``relative_depth.scale = 0.000305``, ``relative_depth.shift =
0.1378``: the output transform of the NYU-trained DPT-Hybrid, whose head was
fine-tuned from the relative model. It yields indoor-like depths (about 0.9 to 7 m)
and is only plausible, not exact: a relative model needs a per-camera calibration.
``summary.json`` reports the median relative error against the rendered depth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpt_ros.cli.args import network_size, positive_int
from dpt_ros.cli.demo.driver import (
    BAG_NAMESPACE,
    FRAME_TIMEOUT_S,
    LIVE_NAMESPACE,
    FrameResult,
    NodeRun,
    node_parameters,
    prepare_output,
    read_bag_frames,
    run_node,
    write_input_bag,
)
from dpt_ros.cli.demo.preview import PICTURE_KINDS, write_frame_pictures
from dpt_ros.models import resolve_device
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.registry import get_spec
from dpt_ros.models.weights.download import cached_checkpoint_path, default_cache_dir
from dpt_ros.options import add_flags
from dpt_ros.ros.image_codec import image_msg_to_array

DEFAULT_OUTPUT = "demo_output"
DEFAULT_DEPTH_MODEL = "dpt_hybrid"
DEFAULT_SEGMENTATION_MODEL = "dpt_hybrid_ade20k"
IMAGE_SIZES = {"320x240": (320, 240), "640x480": (640, 480)}
#: Network input size on the CPU (small, so that the demo is quick).
CPU_NETWORK_SIZE = (256, 192)
#: relative_depth calibration used with relative models (see the module docstring).
RELATIVE_SCALE, RELATIVE_SHIFT = 0.000305, 0.1378


def add_parser(subparsers: Any, name: str, help: str) -> argparse.ArgumentParser:
    """Adds ``dpt-ros demo`` to ``subparsers``."""
    p = subparsers.add_parser(
        name,
        help=help,
        description="Render a short synthetic camera sequence (written as a bag), run it "
        "through dpt_node over ROS topics in this process, and write the depth "
        "colour map, label overlay and a point cloud preview of every frame, "
        "plus summary.json. Never downloads weights: without the official files "
        "it runs with random weights and says so.",
        epilog="Official weights are looked up in --weights-dir, then in the checkpoint "
        "cache ($DPT_ROS_CACHE or ~/.cache/dpt_ros). Relative depth models get the "
        f"calibration relative_depth.scale={RELATIVE_SCALE}, "
        f"shift={RELATIVE_SHIFT} for the point cloud (plausible, not exact).",
    )
    p.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"output directory (default ./{DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--frames",
        type=positive_int,
        default=8,
        metavar="N",
        help="frames to render and process (default 8)",
    )
    p.add_argument(
        "--depth-model",
        default=DEFAULT_DEPTH_MODEL,
        metavar="M",
        help=f"depth model (default {DEFAULT_DEPTH_MODEL}; '' disables depth)",
    )
    p.add_argument(
        "--segmentation-model",
        default=DEFAULT_SEGMENTATION_MODEL,
        metavar="M",
        help=f"segmentation model (default {DEFAULT_SEGMENTATION_MODEL}; '' disables segmentation)",
    )
    p.add_argument(
        "--weights-dir",
        metavar="DIR",
        help="directory holding official checkpoint files (by their official names)",
    )
    add_flags(
        p,
        PredictorOptions,
        ["device", "backend"],
        helps={
            "backend": "the node's backend parameter: auto (a cached engine where there is "
            "one; the demo builds none, as a few frames cannot pay back a build), torch, "
            "onnxruntime or tensorrt"
        },
    )
    p.add_argument(
        "--network-size",
        type=network_size,
        metavar="WxH",
        help=f"network input size (default {CPU_NETWORK_SIZE[0]}x"
        f"{CPU_NETWORK_SIZE[1]} on the CPU, the model's own on CUDA)",
    )
    p.add_argument(
        "--image-size",
        choices=tuple(IMAGE_SIZES),
        default="320x240",
        help="size of the rendered camera images (default 320x240)",
    )
    return p


# ----------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------
def find_weights(model: str, weights_dir: str | None) -> Path | None:
    """The official checkpoint of ``model`` in ``weights_dir`` or the cache, or None."""
    spec = get_spec(model)
    candidates = []
    if weights_dir:
        candidates.append(Path(weights_dir).expanduser() / spec.file_name)
    candidates.append(cached_checkpoint_path(spec.file_name))
    for path in candidates:
        if path.is_file():
            return path
    return None


def _random_weights_banner(missing: dict[str, str], places: list[str]) -> str:
    rule = "!" * 78
    lines = [rule, "!!  NO OFFICIAL WEIGHTS FOUND: THIS DEMO RUNS WITH RANDOM WEIGHTS", "!!"]
    for model, file_name in missing.items():
        lines.append(f"!!  {model}: {file_name} not found")
    lines.append(f"!!  looked in: {', '.join(places)}")
    lines += [
        "!!",
        "!!  Depth, labels and point clouds below are MEANINGLESS noise; the ROS",
        "!!  plumbing and the timings are real. For real outputs put the official",
        "!!  files there (or run dpt_node once, which downloads them), or pass",
        "!!  --weights-dir DIR. The demo itself never downloads anything.",
        rule,
    ]
    return "\n".join(lines)


def _weights_places(weights_dir: str | None) -> list[str]:
    """Where :func:`find_weights` looks, for the banner."""
    places = [str(Path(weights_dir).expanduser())] if weights_dir else []
    places.append(str(default_cache_dir()))
    return places


# ----------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------
@dataclass
class _Config:
    """The demo's settings, from the command line.

    Attributes:
        models: ``depth`` and ``segmentation`` model names ('' disables the task).
        specs: the model spec of each enabled task, depth first.
        weights: for each enabled task, its official checkpoint or None (random weights).
        missing: official file name of every model without its checkpoint, by model name.
        device: the ``--device`` value, as the node gets it.
        backend: the ``--backend`` value, as the node gets it.
        network: network input (width, height) in pixels, or None for the model's own.
        frames: number of frames.
        width, height: camera image size in pixels.
        out_dir: the output directory.
    """

    models: dict[str, str]
    specs: dict[str, Any]
    weights: dict[str, Path | None]
    missing: dict[str, str]
    device: str
    backend: str
    network: tuple[int, int] | None
    frames: int
    width: int
    height: int
    out_dir: Path

    @property
    def relative(self) -> bool:
        """Whether the depth model is relative (it gets the RELATIVE_* calibration)."""
        return "depth" in self.specs and not self.specs["depth"].is_metric


def _model_specs(models: dict[str, str]) -> dict[str, Any]:
    """The spec of each enabled task's model; ValueError for a wrong or unknown model."""
    if not models["depth"] and not models["segmentation"]:
        raise ValueError("both models are disabled: nothing to demonstrate")
    specs = {}
    for task, name in models.items():
        if name:
            spec = get_spec(name)  # ValueError lists the valid names
            if spec.task != task:
                raise ValueError(f"{name} is not a {task} model")
            specs[task] = spec
    return specs


def _resolve_config(args: argparse.Namespace) -> _Config:
    """Checks the models, picks the network size and looks up the weights."""
    models = {
        "depth": (args.depth_model or "").strip(),
        "segmentation": (args.segmentation_model or "").strip(),
    }
    specs = _model_specs(models)
    device = resolve_device(args.device)
    network = args.network_size or (CPU_NETWORK_SIZE if device.type == "cpu" else None)
    width, height = IMAGE_SIZES[args.image_size]
    weights: dict[str, Path | None] = {
        t: find_weights(s.name, args.weights_dir) for t, s in specs.items()
    }
    missing = {specs[t].name: specs[t].file_name for t, w in weights.items() if w is None}
    return _Config(
        models=models,
        specs=specs,
        weights=weights,
        missing=missing,
        device=args.device,
        backend=args.backend,
        network=network,
        frames=args.frames,
        width=width,
        height=height,
        out_dir=Path(args.output),
    )


# ----------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """``dpt-ros demo``; see the module docstring."""
    t_start = time.monotonic()
    config = _resolve_config(args)
    if config.missing:
        print(
            _random_weights_banner(config.missing, _weights_places(args.weights_dir)),
            file=sys.stderr,
        )
    params = node_parameters(
        config.models,
        config.device,
        config.weights,
        config.network,
        (RELATIVE_SCALE, RELATIVE_SHIFT) if config.relative else None,
        backend=config.backend,
    )

    # 1. The input bag.
    bag_dir = prepare_output(config.out_dir)
    start_ns = time.time_ns() // 10**9 * 10**9
    true_depths = write_input_bag(bag_dir, config.frames, config.width, config.height, start_ns)
    frames = read_bag_frames(bag_dir)
    t_rendered = time.monotonic()

    # 2. The node, fed over ROS topics.
    node_run = run_node(frames, params)

    # 3. Pictures and summary.
    files, abs_rel = _write_pictures(config.out_dir, node_run.results, frames, true_depths)
    report = _Report(
        config=config,
        bag_dir=bag_dir,
        frames=len(frames),
        node=node_run,
        stats=_frame_stats(node_run.results),
        files=files,
        abs_rel=abs_rel,
        times=_Timings(
            t_start, t_rendered, node_run.t_ready, node_run.t_done, total=time.monotonic() - t_start
        ),
    )
    (config.out_dir / "summary.json").write_text(json.dumps(_summary(report), indent=2) + "\n")
    _print_report(report)
    unprocessed = report.frames - len(report.stats.processed)
    if unprocessed > 0:
        print(
            f"dpt-ros demo: warning: {unprocessed} frame(s) got no "
            f"complete output within {FRAME_TIMEOUT_S:.0f} s",
            file=sys.stderr,
        )
        return 1
    return 0


def _write_pictures(
    out_dir: Path,
    results: Sequence[FrameResult],
    frames: Sequence[tuple[Any, Any]],
    true_depths: Sequence[np.ndarray],
) -> tuple[list[str], list[float]]:
    """Writes every frame's pictures and compares its depth with the ground truth.

    Args:
        out_dir: the output directory.
        results: the node's outputs, one per frame.
        frames: the (Image, CameraInfo) pairs sent.
        true_depths: the rendered (H, W) float32 depth of every frame, in metres.

    Returns:
        (names of the files written, median relative depth error of every frame that
        has a metric depth output).
    """
    files: list[str] = []
    abs_rel: list[float] = []
    for i, (result, (image_msg, _)) in enumerate(zip(results, frames)):
        files += write_frame_pictures(out_dir / f"frame_{i:03d}", image_msg, result.messages)
        if "depth/image" in result.messages:
            error = _depth_abs_rel(result.messages["depth/image"], true_depths[i])
            if error is not None:
                abs_rel.append(error)
    return files, abs_rel


def _depth_abs_rel(depth_msg: Any, truth: np.ndarray) -> float | None:
    """Median of ``|estimate - truth| / truth`` over the pixels valid in both.

    Args:
        depth_msg: the node's metric ``depth/image`` (``sensor_msgs/Image``, metres).
        truth: (H, W) float32 rendered depth in metres (+inf: sky).

    Returns:
        The median relative error, or None when the sizes differ or no pixel is valid.
    """
    est = image_msg_to_array(depth_msg)
    if est.shape == truth.shape:
        ok = np.isfinite(truth) & np.isfinite(est) & (truth > 0)
        if ok.any():
            return float(np.median(np.abs(est[ok] - truth[ok]) / truth[ok]))
    return None


# ----------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------
@dataclass
class _FrameStats:
    """Timing of the frames that got every output.

    Attributes:
        processed: the complete frames.
        latencies: publish-to-last-output time of each, in milliseconds.
        rate: complete frames per second over the run (0 when unknown).
        median_latency: median of ``latencies`` in milliseconds (NaN when none).
    """

    processed: list[FrameResult]
    latencies: list[float]
    rate: float
    median_latency: float


def _frame_stats(results: Sequence[FrameResult]) -> _FrameStats:
    processed = [r for r in results if r.event.is_set()]
    latencies = [(r.done - r.published) * 1e3 for r in processed]
    span = (max(r.done for r in processed) - processed[0].published) if processed else 0.0
    rate = len(processed) / span if span > 0 else 0.0
    median_latency = statistics.median(latencies) if latencies else float("nan")
    return _FrameStats(processed, latencies, rate, median_latency)


@dataclass
class _Timings:
    """``time.monotonic()`` of the demo's steps, and its total duration (seconds)."""

    start: float
    rendered: float
    ready: float
    done: float
    total: float


@dataclass
class _Report:
    """Everything ``summary.json`` and the printed summary tell.

    Attributes:
        config: the settings.
        bag_dir: the input bag.
        frames: number of frames sent.
        node: what the node run gave.
        stats: timing of the complete frames.
        files: names of the pictures written.
        abs_rel: median relative depth error of each frame with a metric depth.
        times: when each step ended.
    """

    config: _Config
    bag_dir: Path
    frames: int
    node: NodeRun
    stats: _FrameStats
    files: list[str]
    abs_rel: list[float]
    times: _Timings


def _models_summary(config: _Config) -> dict[str, dict[str, Any]]:
    """The ``models`` entry of ``summary.json``."""
    models = {}
    for task, spec in config.specs.items():
        models[task] = {
            "model": spec.name,
            "output": spec.output,
            "weights": str(config.weights[task]) if config.weights[task] is not None else None,
            "real_weights": config.weights[task] is not None,
        }
    if config.relative:
        models["depth"]["metric_from_relative"] = {"scale": RELATIVE_SCALE, "shift": RELATIVE_SHIFT}
    return models


def _summary(report: _Report) -> dict[str, Any]:
    """The contents of ``summary.json``."""
    config, stats, times = report.config, report.stats, report.times
    return {
        "frames": report.frames,
        "frames_processed": len(stats.processed),
        "image_size": [config.width, config.height],
        "network_size": list(config.network) if config.network is not None else "model default",
        "device": report.node.status["device"],
        "models": _models_summary(config),
        "real_weights": not config.missing,
        "processed_rate_hz": round(stats.rate, 3),
        "median_latency_ms": round(stats.median_latency, 1) if stats.latencies else None,
        "latencies_ms": [round(x, 1) for x in stats.latencies],
        "depth_abs_rel_median_vs_ground_truth": (
            round(statistics.median(report.abs_rel), 4) if report.abs_rel else None
        ),
        "node_status": report.node.status,
        "input_bag": str(report.bag_dir),
        "input_topics": [
            f"{BAG_NAMESPACE}/image_raw",
            f"{BAG_NAMESPACE}/camera_info",
            f"{BAG_NAMESPACE}/ground_truth/depth",
        ],
        "live_namespace": LIVE_NAMESPACE,
        "files": report.files,
        "seconds": {
            "total": round(times.total, 2),
            "render_and_bag": round(times.rendered - times.start, 2),
            "node_start": round(times.ready - times.rendered, 2),
            "frames": round(times.done - times.ready, 2),
        },
    }


def _print_report(report: _Report) -> None:
    """Prints the summary of the run (stdout)."""
    config, stats, times = report.config, report.stats, report.times
    missing, specs = config.missing, config.specs
    weights_text = (
        "official weights"
        if not missing
        else (
            "RANDOM weights (outputs meaningless)"
            if len(missing) == len(specs)
            else "RANDOM weights for " + ", ".join(missing)
        )
    )
    print(
        f"dpt-ros demo: {report.frames} synthetic {config.width}x{config.height} frames "
        f"through dpt_node ({report.node.status['models']}, {weights_text}) on "
        f"{report.node.status['device']}"
    )
    network = config.network
    net_text = f"{network[0]}x{network[1]}" if network is not None else "model default"
    print(
        f"  processed {len(stats.processed)}/{report.frames} frames at {stats.rate:.2f} "
        f"frames/s, median latency {stats.median_latency:.0f} ms (network input {net_text})"
    )
    if config.relative:
        print(
            f"  point cloud: {specs['depth'].name} is relative; metric depth from the "
            f"calibration relative_depth.scale={RELATIVE_SCALE}, "
            f"shift={RELATIVE_SHIFT} (plausible, not exact)"
        )
    if report.abs_rel:
        note = "" if config.weights.get("depth") is not None else " (meaningless: random weights)"
        print(
            f"  depth vs rendered ground truth: median relative error "
            f"{statistics.median(report.abs_rel):.2f}{note}"
        )
    kinds = [k for k in PICTURE_KINDS if any(f.endswith(f"_{k}.png") for f in report.files)]
    print(
        f"  wrote {config.out_dir}/: frame_XXX_{{{','.join(kinds)}}}.png for {report.frames} "
        f"frame(s), summary.json; input bag {report.bag_dir}"
    )
    print(
        f"  total time {times.total:.1f} s (node start {times.ready - times.rendered:.1f} s, "
        f"frames {times.done - times.ready:.1f} s)"
    )
