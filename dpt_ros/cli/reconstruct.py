"""``dpt-ros reconstruct INPUT... -o OUT``: a multi-view model over windows of frames
from a folder of images or a bag, the windows chained into one geometry, written as
depth, cameras, a trajectory, a fused cloud and a COLMAP model (docs/reconstruct.md).

The work apart from the model is :mod:`dpt_ros.reconstruct` (no torch); this module
parses the flags, loads the predictor and wires its ``infer_window`` to the driver's
``run_window`` callable (:func:`window_runner`).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dpt_ros.cli.args import (
    AUTO_BUILD,
    add_max_input_pixels_argument,
    add_predictor_arguments,
    non_negative_int,
    options_from_flags,
    positive_int,
    say_backend,
)
from dpt_ros.cli.reconstruct_fleet import InputJob, InputOutcome, Reconstructor, run_on_ray
from dpt_ros.models.families import depth_anything_3, vggt
from dpt_ros.models.registry import get_spec, window_model_names
from dpt_ros.reconstruct.chain import WindowResult
from dpt_ros.reconstruct.driver import OUTPUT_SIZES, ReconstructOptions, RunWindow, reconstruct
from dpt_ros.reconstruct.frames import (
    FrameSkips,
    bag_frames,
    bag_image_count,
    check_output_folder,
    folder_frames,
    list_images,
    window_count,
)
from dpt_ros.reconstruct.metric import MetricDepth
from dpt_ros.text import shown

_LOG = logging.getLogger(__name__)

#: ``--reference-view`` values (Depth Anything 3's reference view strategies).
REFERENCE_VIEWS = depth_anything_3.FAMILY.reference_views
#: ``--metric-model`` values (a metric model whose metres scale each window).
METRIC_MODELS = ("depth_anything_3_metric_large",)
#: ``--mode`` values (VGGT's preprocessing).
VGGT_MODES = vggt.FAMILY.window_modes
DEFAULT_WINDOW = 8
DEFAULT_OVERLAP = 2
#: Suffixes of bag files (a rosbag2 folder is recognised by its metadata.yaml).
BAG_SUFFIXES = (".bag", ".db3", ".mcap")
#: Skipped inputs named in the final line; the rest are counted.
_MAX_NAMED = 5

_EPILOG = """\
outputs in OUT (one input) or OUT/<input name> (several):
  windows/<k>.npz         raw network outputs of window k, before chaining
  depth/<stem>.npy        float32 depth (z, larger = farther), reconstruction's unit
  confidence/<stem>.npy   float32 confidence, larger = surer
  cameras.json            per frame: window, camera_from_world (OpenCV axes),
                          intrinsics, stamp; unit, scale, chained or not
  trajectory.tum          stamp tx ty tz qx qy qz qw, world-from-camera
  points.ply              fused cloud, binary: x y z red green blue confidence
  colmap/                 cameras.txt, images.txt, points3D.txt (PINHOLE)
see docs/reconstruct.md for the conventions and the window chaining.

exit status: 0 on success, 2 on an error (one line on stderr, 'dpt-ros: error: ...')."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists the model types when help is printed, so parsing never loads a model."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action) or ""
        if "--model-type" in action.option_strings:
            text += " (one of: " + ", ".join(window_model_names()) + ")"
        return text


def add_parser(subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """Adds the ``reconstruct`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description="Run a multi-view model (Depth Anything 3 any-view, VGGT) over windows "
        "of frames from folders of images or bags, chain the windows with robust Sim(3) "
        "alignment, and write depth, cameras, a trajectory, a fused cloud and a COLMAP "
        "model.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    # in --help's order
    _add_input_and_model_arguments(parser)
    _add_metric_arguments(parser)
    _add_window_arguments(parser)
    add_predictor_arguments(parser, compile=False, engine_build_auto=True, job_unit="window")
    _add_ray_arguments(parser)
    add_max_input_pixels_argument(parser)
    _add_cloud_arguments(parser)
    _add_camera_arguments(parser)
    return parser


def _add_input_and_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The inputs, the output folder, the model type and its weights."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="a folder of images (sorted by name; not subfolders) or a bag (rosbag2 "
        "folder, .db3, .mcap, ROS 1 .bag; needs --image-topic)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output folder, created if needed"
    )
    parser.add_argument(
        "--model-type", required=True, metavar="NAME", help="a multi-view model type"
    )
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="weights file; default: the official checkpoint from the cache "
        "($DPT_ROS_CACHE or ~/.cache/dpt_ros), downloaded there if missing",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="random weights instead of a file (plumbing tests only: meaningless outputs)",
    )


def _add_metric_arguments(parser: argparse.ArgumentParser) -> None:
    """The metric model that scales each window to metres, and its weights."""
    parser.add_argument(
        "--metric-model",
        choices=METRIC_MODELS,
        help="scale each window to metres by a least-squares fit of its depth to this "
        "metric model's depth on confident non-sky pixels (as Depth Anything 3's nested "
        "model); needs the camera's intrinsics (a bag's camera_info or --camera-info). "
        "Default: none, the reconstruction is in a relative unit",
    )
    parser.add_argument(
        "--metric-weights",
        metavar="PATH",
        help="the metric model's weights file; default: its official checkpoint from the "
        "cache, downloaded there if missing",
    )
    parser.add_argument(
        "--metric-random-weights",
        action="store_true",
        help="random weights for the metric model (plumbing tests only)",
    )


def _add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """The windows (views per forward, overlap), the output grid and the families'
    window options."""
    parser.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        metavar="N",
        help="views per forward (default %(default)s); the last window may be shorter",
    )
    parser.add_argument(
        "--overlap",
        type=non_negative_int,
        default=DEFAULT_OVERLAP,
        metavar="K",
        help="frames shared by consecutive windows, 0 <= K < N; 0 = windows not chained "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--output-size",
        choices=OUTPUT_SIZES,
        default="input",
        help="grid of depth/, confidence/ and the intrinsics: each image's size "
        "(default) or the network's",
    )
    parser.add_argument(
        "--reference-view",
        choices=REFERENCE_VIEWS,
        default="saddle_balanced",
        help="Depth Anything 3: how the reference view of a window of 3 or more is "
        "chosen (default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=VGGT_MODES,
        help="VGGT: crop the height to the network size, or pad to a square with white "
        "(default: crop); refused for Depth Anything 3",
    )


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """Several inputs on Ray."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="several inputs: reconstruct them on Ray, one input per task, the model loaded "
        "once per worker; an input that fails fails alone (exit status 1): no ADDRESS = a "
        "local Ray sized to this machine, 'auto' = the running cluster, "
        "'ray://host:10001' = a remote one (pip install 'dpt_ros[fleet]')",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="Ray workers (default: one per GPU the cluster has for --gpus-per-worker, else 1)",
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="G",
        help="GPUs each Ray worker requests (default 1 with a CUDA --device, else 0)",
    )


def _add_cloud_arguments(parser: argparse.ArgumentParser) -> None:
    """Which points points.ply keeps."""
    parser.add_argument(
        "--min-confidence",
        type=float,
        metavar="C",
        help="points.ply: keep points of confidence >= C",
    )
    parser.add_argument(
        "--confidence-percentile",
        type=float,
        metavar="P",
        help="points.ply: keep points at or above the P-th percentile (0..100) of all "
        "points' confidence",
    )
    parser.add_argument(
        "--voxel",
        type=float,
        metavar="SIZE",
        help="points.ply: one point per cube of side SIZE (reconstruction unit)",
    )


def _add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    """The bags' image topic and the camera's calibration."""
    parser.add_argument(
        "--image-topic", metavar="TOPIC", help="bags: the Image or CompressedImage topic"
    )
    parser.add_argument(
        "--camera-info",
        metavar="FILE",
        help="the camera's calibration (camera_calibration YAML) for folders, or for bags "
        "without camera_info; recorded in cameras.json beside the model's intrinsics",
    )


# --------------------------------------------------------------------------- model


class WindowPredictor(Protocol):
    """What the command needs from a predictor: multi-view inference of one window."""

    def infer_window(
        self,
        images: Sequence[np.ndarray],
        reference_view: str = ...,
        extrinsics: Any = None,
        intrinsics: Any = None,
        output_hw: Any = None,
    ) -> Any: ...


def window_runner(
    predictor: WindowPredictor, reference_view: str, mode: str | None = None
) -> RunWindow:
    """The driver's ``run_window`` from a predictor's ``infer_window``: the raw outputs on
    the network grid (``output_hw=None``), no known cameras.

    Raises:
        ValueError: the predictor has no ``infer_window`` (a single-frame model), or
            ``mode`` is given and its ``infer_window`` does not take it.
    """
    infer = getattr(predictor, "infer_window", None)
    if infer is None:
        raise ValueError(
            f"{type(predictor).__name__} has no window inference (infer_window): a "
            "single-frame model cannot reconstruct"
        )
    kwargs: dict[str, Any] = {"reference_view": reference_view}
    if mode is not None:
        if "mode" not in inspect.signature(infer).parameters:
            raise ValueError(f"this model's window inference takes no --mode ({mode})")
        kwargs["mode"] = mode

    def run(images: Sequence[np.ndarray], names: Sequence[str]) -> WindowResult:
        found = infer(list(images), **kwargs)
        cameras = found.cameras
        if cameras is None:
            raise ValueError("the model returned no cameras for the window")
        world_points = getattr(cameras, "world_points", None)
        return WindowResult(
            depth=np.asarray(found.depth, dtype=np.float32),
            confidence=np.asarray(found.confidence, dtype=np.float32),
            camera_from_world=np.asarray(cameras.camera_from_world, dtype=np.float64),
            intrinsics=np.asarray(cameras.intrinsics, dtype=np.float64),
            reference_view=int(cameras.reference_view),
            world_points=None if world_points is None else np.asarray(world_points, np.float32),
            network_box=getattr(cameras, "network_box", None),
        )

    return run


def deciding_runner(run_window: RunWindow, predictor: Any, windows: int) -> RunWindow:
    """``run_window`` that, once the input's first window has run, decides whether to
    build that window's engine for the ``windows - 1`` still to come (``--engine-build
    auto``: only where the build pays off, :mod:`dpt_ros.runtime.build_choice`) and says
    what runs and why in one line."""
    decided = False

    def run(images: Sequence[np.ndarray], names: Sequence[str]) -> WindowResult:
        nonlocal decided
        start = time.perf_counter()
        result = run_window(images, names)
        if not decided:
            decided = True
            seconds = time.perf_counter() - start
            _say_backend(predictor, predictor.build_window_engine_if_it_pays(windows - 1, seconds))
        return result

    return run


def _say_backend(predictor: Any, choice: Any) -> None:
    """The backend line of the choice after the first window."""
    runtime = predictor.runtime
    if choice is None:
        said = predictor.backend_status  # a cached engine, or none to be had
    elif not choice.build:
        said = f"torch ({choice.reason(runtime.backend, 'window')})"
    else:
        said = f"{runtime.backend} ({choice.reason(runtime.backend, 'window')}); built it"
        if predictor.backend != runtime.backend:
            said = predictor.backend_status  # the build failed, or PyTorch was faster
    say_backend(said)


def _engine_build(args: argparse.Namespace) -> str:
    """The models' ``engine_build``: ``--engine-build auto`` loads cached engines only
    until the first window shows whether a build pays off (:func:`deciding_runner`)."""
    return "never" if args.engine_build == AUTO_BUILD else args.engine_build


def _load_predictor(args: argparse.Namespace, spec: Any) -> Any:
    # torch only once the flags and inputs have been checked
    from dpt_ros.models import Predictor, resolve_device, resolve_precision

    options = options_from_flags(
        args, spec.name, weights=args.weights, random_weights=args.random_weights
    )
    options = options.with_(engine_build=_engine_build(args)).validated()
    resolve_precision(args.precision, resolve_device(args.device))
    return Predictor(options)


def _load_metric_predictor(args: argparse.Namespace) -> Any:
    # torch only once the flags and inputs have been checked
    from dpt_ros.models import Predictor

    options = options_from_flags(
        args,
        args.metric_model,
        weights=args.metric_weights,
        random_weights=args.metric_random_weights,
    )
    # its frames come in windows of the other model: under --engine-build auto it runs
    # on cached engines or PyTorch, and builds none
    options = options.with_(engine_build=_engine_build(args)).validated()
    return Predictor(options)


def metric_runner(predictor: Any) -> MetricDepth:
    """The driver's ``metric`` callable from a metric predictor's ``infer``: metres
    (the calibration's focal length) and the sky map on the grid asked for."""

    def run(
        images: Sequence[np.ndarray], intrinsics: Sequence[np.ndarray], hw: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        found = predictor.infer(list(images), intrinsics=list(intrinsics), output_hw=tuple(hw))
        if found.depth is None or found.sky is None:
            raise ValueError("the metric model returned no depth in metres or no sky map")
        return np.asarray(found.depth, np.float32), np.asarray(found.sky, np.float32)

    return run


# --------------------------------------------------------------------------- inputs


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (it has metadata.yaml) or a bag file."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.suffix.lower() in BAG_SUFFIXES


def output_folders(output: Path, inputs: Sequence[Path]) -> list[Path]:
    """OUT for one input; OUT/<input name> for several (names made unique)."""
    if len(inputs) == 1:
        return [output]
    names: list[str] = []
    for path in inputs:
        base = path.resolve().name.replace(".", "_") or "input"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return [output / n for n in names]


def _camera_info(args: argparse.Namespace) -> Any:
    if not args.camera_info:
        return None
    # a calibration file only: the message types load with it
    from dpt_ros.ros.camera import Intrinsics
    from dpt_ros.ros.camera_yaml import read_camera_info_yaml

    info = read_camera_info_yaml(args.camera_info)
    try:
        Intrinsics.from_camera_info(info)
    except ValueError as exc:
        raise ValueError(f"{args.camera_info}: {exc}") from None
    return info


def _check_flags(args: argparse.Namespace, spec: Any) -> ReconstructOptions:
    """Every check that needs no model and no frame; the driver's options."""
    if not spec.windows:
        raise ValueError(
            f"{spec.name} takes one frame at a time: reconstruct needs a multi-view "
            f"model type ({', '.join(window_model_names())})"
        )
    if args.weights and args.random_weights:
        raise ValueError("give either --weights or --random-weights, not both")
    metric_flags = args.metric_weights or args.metric_random_weights
    if metric_flags and not args.metric_model:
        raise ValueError("--metric-weights and --metric-random-weights need --metric-model")
    if args.metric_weights and args.metric_random_weights:
        raise ValueError("give either --metric-weights or --metric-random-weights, not both")
    if args.ray is None and (args.workers or args.gpus_per_worker is not None):
        raise ValueError("--workers and --gpus-per-worker need --ray")
    if args.mode is not None and not spec.family.window_modes:
        raise ValueError(f"--mode is VGGT's preprocessing; {spec.name} has no --mode")
    options = ReconstructOptions(
        window=args.window,
        overlap=args.overlap,
        output_size=args.output_size,
        min_confidence=args.min_confidence,
        confidence_percentile=args.confidence_percentile,
        voxel=args.voxel,
    ).validated()
    inputs = [Path(p).expanduser() for p in args.inputs]
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"input not found: {shown(path)}")
        if is_bag(path) and not args.image_topic:
            raise ValueError(f"{shown(path)} is a bag: give --image-topic TOPIC")
        if not is_bag(path) and not path.is_dir():
            raise ValueError(
                f"{shown(path)} is neither a folder of images nor a bag "
                f"({', '.join(BAG_SUFFIXES)} or a rosbag2 folder)"
            )
    if args.metric_model and not args.camera_info:
        folders = [p for p in inputs if not is_bag(p)]
        if folders:
            raise ValueError(
                f"--metric-model turns the metric model's output into metres with the "
                f"camera's focal length: give --camera-info FILE for {shown(folders[0])} "
                "(a folder of images has no camera_info)"
            )
    check_output_folder(Path(args.output).expanduser(), inputs)
    return options


def make_reconstructor(args: argparse.Namespace) -> Reconstructor:
    """Loads the model (and the metric model) once; the returned callable reconstructs
    one input into its folder (:class:`~dpt_ros.cli.reconstruct_fleet.InputJob`) and
    says what it did (:class:`~dpt_ros.cli.reconstruct_fleet.InputOutcome`).

    Raises:
        ValueError, CheckpointError: bad flags or weights (before any input is read);
            the callable raises what reading or reconstructing an input raises.
    """
    spec = get_spec(args.model_type)
    options = _check_flags(args, spec)
    family = spec.family
    camera_info = _camera_info(args)
    predictor = _load_predictor(args, spec)
    run_window = window_runner(predictor, args.reference_view, args.mode)
    runtime = getattr(predictor, "runtime", None)
    decide = args.engine_build == AUTO_BUILD and hasattr(runtime, "window_build_choice")
    metric = metric_runner(_load_metric_predictor(args)) if args.metric_model else None
    extra = {
        "model": {
            "type": spec.name,
            "window": args.window,
            "overlap": args.overlap,
            "reference_view": args.reference_view if family.reference_views else None,
            "mode": (args.mode or family.window_modes[0]) if family.window_modes else None,
            "network_size": list(args.network_size) if args.network_size else None,
            "output_size": args.output_size,
            "metric_model": args.metric_model,
        }
    }

    def one(job: InputJob) -> InputOutcome:
        path, out = job.input, job.output
        skips = FrameSkips()
        if is_bag(path):
            frames = bag_frames(path, args.image_topic, args.max_input_pixels, skips, camera_info)
        else:
            frames = folder_frames(path, args.max_input_pixels, skips, camera_info)
        runner = run_window
        if decide:
            total = (
                bag_image_count(path, args.image_topic) if is_bag(path) else len(list_images(path))
            )
            runner = deciding_runner(
                run_window, predictor, window_count(total, args.window, args.overlap)
            )
        start = time.perf_counter()
        summary = reconstruct(
            frames, runner, out, options, {**extra, "input": str(path)}, skips, metric
        )
        seconds = time.perf_counter() - start
        fits = summary.fits
        worst = min((f.inlier_fraction for f in fits), default=1.0)
        said = (
            f"{shown(path)}: {summary.frames} frame(s) in {summary.windows} window(s)"
            + (f", chained (worst inlier fraction {worst:.0%})" if summary.chained else "")
            + (
                f", in metres (window scales {min(summary.metric_scales):.4g}.."
                f"{max(summary.metric_scales):.4g})"
                if summary.metric_scales
                else ""
            )
            + f", {summary.points} points, {seconds:.1f} s; results in {shown(out)}"
        )
        warning = ""
        if skips:
            named = "; ".join(skips.images[:_MAX_NAMED])
            more = len(skips.images) - _MAX_NAMED
            warning = (
                f"dpt-ros reconstruct: skipped {len(skips.images)} unreadable image(s)"
                + (f" and {skips.camera_info} camera_info message(s)" if skips.camera_info else "")
                + (f": {named}" if named else "")
                + (f" and {more} more" if more > 0 else "")
            )
        return InputOutcome(str(path), said, warning, len(skips.images))

    return one


def run(args: argparse.Namespace) -> int:
    """Runs ``dpt-ros reconstruct``; errors are raised for ``dpt_ros.cli.main.main``.
    With ``--ray`` the inputs go to Ray workers (:mod:`dpt_ros.cli.reconstruct_fleet`),
    and an input that fails fails alone (exit status 1)."""
    spec = get_spec(args.model_type)
    _check_flags(args, spec)  # before any model loads or Ray starts
    inputs = [Path(p).expanduser() for p in args.inputs]
    outputs = output_folders(Path(args.output).expanduser(), inputs)
    jobs = [InputJob(path, out) for path, out in zip(inputs, outputs)]
    if args.ray is not None:
        outcomes = run_on_ray(args, jobs, make_reconstructor)
    else:
        one = make_reconstructor(args)
        outcomes = []
        for job in jobs:
            outcome = one(job)
            _report(outcome)
            outcomes.append(outcome)
    if args.ray is not None:
        for outcome in outcomes:
            _report(outcome)
    failed = [o for o in outcomes if o.failed]
    return 1 if failed else 0


def _report(outcome: InputOutcome) -> None:
    if outcome.failed:
        print(f"{shown(outcome.input)}: failed: {outcome.failed}", file=sys.stderr, flush=True)
        return
    print(outcome.said + (f" (worker {outcome.worker})" if outcome.worker else ""), flush=True)
    if outcome.warning:
        print(outcome.warning, file=sys.stderr)
