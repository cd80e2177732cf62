"""``dpt-ros bench``: latency, throughput and memory of the model and of the whole node
pipeline per frame, and the same architecture in Hugging Face ``transformers`` side by
side. A script that prints figures; no test asserts on timings.

Random weights are used (timing does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from std_msgs.msg import Header

from dpt_ros.cli.args import add_predictor_arguments, image_size, options_from_flags, positive_int
from dpt_ros.cli.bench_timing import camera_size, machine, time_calls
from dpt_ros.cli.bench_window import run_window
from dpt_ros.models import Predictor
from dpt_ros.models.registry import get_spec
from dpt_ros.models.transforms import preprocess
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.image_codec import image_to_rgb, rgb_to_image_msg


def add_parser(subparsers, name: str, help: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        name,
        help=help,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model-type", default="dpt_hybrid", help="model type (default dpt_hybrid)")
    add_predictor_arguments(p)
    p.add_argument(
        "--engine",
        default=None,
        help="exported .onnx / .engine file for --backend onnxruntime/tensorrt",
    )
    p.add_argument(
        "--camera-size",
        type=image_size,
        metavar="WxH",
        help="camera image size in pixels (default: 640x480)",
    )
    p.add_argument("--width", type=positive_int, help="deprecated: use --camera-size")
    p.add_argument("--height", type=positive_int, help="deprecated: use --camera-size")
    p.add_argument("--batch", type=positive_int, default=1, help="frames per forward pass")
    p.add_argument(
        "--window",
        type=positive_int,
        metavar="N",
        help="time the window forward of N views (one forward, fp32) of a multi-view type "
        "beside its reference implementation, and its peak memory; 1 = a window of one "
        "view (docs/speed.md#windows)",
    )
    p.add_argument("--iters", type=positive_int, default=10, help="timed iterations")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument(
        "--no-transformers",
        action="store_true",
        help="skip the Hugging Face transformers comparison",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with every figure as the last line",
    )
    return p


def _stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median": statistics.median(ms), "p90": ms[min(len(ms) - 1, int(0.9 * len(ms)))]}


def _peak_memory_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def _transformers_model(model_type: str, device: torch.device, size_hw):
    """transformers' model of the same architecture, random weights (the family's
    :meth:`~dpt_ros.models.family.ModelFamily.transformers_model`)."""
    spec = get_spec(model_type)
    return spec.family.transformers_model(spec, size_hw).eval().to(device)


def run(args: argparse.Namespace) -> int:
    if args.window is not None:
        window = run_window(args)
        _print(window)
        if args.json:
            print(json.dumps(window))
        return 0
    width, height = camera_size(args)
    options = options_from_flags(args, args.model_type, engine=args.engine, random_weights=True)
    predictor = Predictor(options.validated(), progress=False)
    if predictor.runtime.fixed_input_shape is not None:
        args.batch = predictor.runtime.fixed_input_shape[0]  # an engine's batch is fixed
    device = predictor.device
    frames = np.random.default_rng(0).integers(
        0, 256, (args.batch, height, width, 3), dtype=np.uint8
    )
    size = predictor.input_size((height, width))
    results: dict[str, object] = {
        "model_type": args.model_type,
        "device": str(device),
        "precision": str(predictor.dtype).replace("torch.", ""),
        "compile": args.compile,
        "backend_requested": args.backend,
        "image": f"{width}x{height}",
        "network_input": f"{size[1]}x{size[0]}",
        "batch": args.batch,
        "iters": args.iters,
        "torch": torch.__version__,
        "machine": machine(device),
    }
    t0 = time.perf_counter()
    predictor.warm_up((height, width), args.batch)
    predictor.runtime.wait()  # an engine_build lazy build
    results["warm_up_s"] = time.perf_counter() - t0
    # What runs, after the warm-up has built or loaded any engine (auto resolved).
    results["backend"] = predictor.backend
    results["engine_cached"] = predictor.engine_cached
    x = predictor.preprocess(predictor.upload(frames))
    _bench_model(args, predictor, x, results)
    _bench_pipeline(args, predictor, frames, x[:1], results)
    compare = _REFERENCES.get(predictor.spec.family.reference)
    if compare is None:
        results["reference"] = f"no comparison for the {predictor.spec.family.name} family yet"
    else:
        compare(args, predictor, frames, x, results)
    _print(results)
    if args.json:
        print(json.dumps(results))
    return 0


def _bench_model(args: argparse.Namespace, predictor, x, results: dict[str, object]) -> None:
    """The network alone on the whole batch: latency, throughput, peak memory."""
    device = predictor.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    s = _stats(time_calls(lambda: predictor.network(x), device, args.iters, args.warmup))
    results["model_ms_median"], results["model_ms_p90"] = s["median"], s["p90"]
    results["throughput_fps"] = 1e3 * args.batch / s["median"]
    results["peak_memory_mb"] = _peak_memory_mb(device)


def _bench_pipeline(
    args: argparse.Namespace, predictor, frames, x1, results: dict[str, object]
) -> None:
    """The node's whole per-frame work on one frame: decode (a copy of an rgb8 message),
    upload, preprocessing, model, postprocessing, download, messages and PointCloud2.

    Overhead is measured against a single-frame forward: the node runs one camera's
    frame at a time. The total runs as the node does (one device wait per frame); the
    per-stage split runs again with a wait after each stage.
    """
    if predictor.is_depth:
        pipeline = FramePipeline(
            predictor,
            None,
            PipelineOptions(
                relative_depth_scale=0.0 if predictor.is_metric else 1.0, relative_depth_shift=0.1
            ),
        )
    else:
        pipeline = FramePipeline(None, predictor)
    height, width = frames.shape[1:3]
    info = synthetic_camera(width, height).to_camera_info("camera_optical_frame")
    header = Header(frame_id="camera_optical_frame")
    msg = rgb_to_image_msg(frames[0], header)
    per_frame: list[dict[str, float]] = []

    def frame():
        t0 = time.perf_counter()
        rgb = image_to_rgb(msg)
        t1 = time.perf_counter()
        out = pipeline.process(rgb, header, info)
        if pipeline.sync_timings:
            per_frame.append({"decode": (t1 - t0) * 1e3, **out.timings_ms})

    device = predictor.device
    single = time_calls(lambda: predictor.network(x1), device, args.iters, args.warmup)
    pipeline_ms = time_calls(frame, device, args.iters, args.warmup)
    pipeline.sync_timings = True
    time_calls(frame, device, args.iters, 0)
    results["model_single_ms_median"] = statistics.median(single)
    results["pipeline_ms_median"] = statistics.median(pipeline_ms)
    results.update(_overhead(per_frame))
    results["pipeline_parts_ms_median"] = {
        k: round(statistics.median(f[k] for f in per_frame), 3) for k in per_frame[0]
    }


def _overhead(per_frame: list[dict[str, float]]) -> dict[str, float]:
    """The pipeline's share of a frame's time outside the network, from each frame's
    own stage timings (the ``*model`` stages are the network): never negative, unlike
    the difference of two medians measured apart. Its spread over the frames (10th to
    90th percentile) says how noisy the figure is."""
    shares = sorted(
        1.0 - sum(v for k, v in f.items() if k.endswith("model")) / sum(f.values())
        for f in per_frame
        if sum(f.values()) > 0
    )

    def at(q: float) -> float:
        return shares[min(len(shares) - 1, int(q * len(shares)))]

    return {
        "pipeline_overhead_fraction": statistics.median(shares),
        "pipeline_overhead_fraction_p10": at(0.1),
        "pipeline_overhead_fraction_p90": at(0.9),
    }


def _compare_transformers(args, predictor, frames, x, results: dict[str, object]) -> None:
    """transformers' model of the same architecture beside ours on the same input and
    device, at the benchmark's precision and in fp32; ratios > 1 mean ours is faster
    (depth models, unless --no-transformers). DPT runs at its square network size
    (transformers' hybrid embedding accepts no other), Depth Anything V2 at the
    camera's network input (the family's ``transformers_input_hw``)."""
    if args.no_transformers or not predictor.is_depth:
        return
    device = predictor.device
    spec = predictor.spec
    sq = spec.family.transformers_input_hw(spec, predictor.input_size(frames.shape[1:3]))
    if predictor.backend != "torch" and tuple(predictor.net_hw) != sq:
        results["transformers"] = (
            f"skipped: the comparison runs at {sq[1]}x{sq[0]}; export "
            f"the engine at that size to compare"
        )
        return
    try:
        hf = _transformers_model(args.model_type, device, sq)
    except ImportError:
        results["transformers"] = "not installed (pip install -e '.[bench]')"
        return
    # Both models run on the same input for this comparison.
    predictor.prepare(sq, args.batch)  # an engine built on first use: for this size too
    xs = preprocess(predictor.upload(frames), sq, predictor.spec.mean, predictor.spec.std)
    results["compare_input"] = f"{sq[1]}x{sq[0]}"
    results["transformers_attention"] = getattr(hf.config, "_attn_implementation", "?")

    def hf_forward(dtype):
        return _hf_forward(hf, xs, device, dtype)

    p = str(predictor.dtype).replace("torch.", "")
    timed = {
        f"transformers_{p}": hf_forward(predictor.dtype),
        f"ours_{p}": lambda: predictor.network(xs),
    }
    if predictor.dtype != torch.float32:
        ours32 = Predictor(predictor.options.with_(precision="fp32"), progress=False)
        ours32.prepare(sq, args.batch)
        timed["transformers_float32"] = hf_forward(torch.float32)
        timed["ours_float32"] = lambda: ours32.network(xs)
    medians = {
        k: statistics.median(time_calls(fn, device, args.iters, args.warmup))
        for k, fn in timed.items()
    }
    for k, v in medians.items():
        results[f"{k}_ms_median"] = v
    results["speedup_vs_transformers"] = medians[f"transformers_{p}"] / medians[f"ours_{p}"]
    if predictor.dtype != torch.float32:
        results["speedup_vs_transformers_float32"] = (
            medians["transformers_float32"] / medians[f"ours_{p}"]
        )
        results["speedup_vs_ours_float32"] = medians["ours_float32"] / medians[f"ours_{p}"]


def _compare_da3_reference(args, predictor, frames, xs, results: dict[str, object]) -> None:
    """Depth Anything 3's reference network (``DepthAnything3Net`` of
    ``depth-anything-3``, where it imports: it is never a dependency) beside ours on the
    same input and device, both in fp32 and called directly (the reference's API
    wrapper autocasts to 16 bits even on the CPU); a ratio > 1 means ours is faster."""
    try:
        # optional, never a dependency: the reference for comparisons (docs/speed.md)
        from depth_anything_3.cfg import create_object, load_config
        from depth_anything_3.registry import MODEL_REGISTRY
    except ImportError:
        results["reference"] = (
            "not installed (a separate venv: pip install --no-deps depth-anything-3==0.1.1 "
            "einops omegaconf addict imageio)"
        )
        return
    device = predictor.device
    name = predictor.spec.hub_model_name
    reference = create_object(load_config(MODEL_REGISTRY[name])).eval().to(device)
    ours = predictor
    if predictor.dtype != torch.float32:
        ours = Predictor(predictor.options.with_(precision="fp32"), progress=False)
        ours.prepare(tuple(xs.shape[-2:]), args.batch)
    x = xs.float()
    results["reference"] = f"depth_anything_3 {name} DepthAnything3Net, float32"

    def reference_forward():
        with torch.inference_mode():
            return reference(x[:, None])["depth"]

    # Taken in turns, one forward each, so that a machine's changing load weighs on both.
    forwards = {"reference_float32": reference_forward, "ours_float32": lambda: ours.network(x)}
    for fn in forwards.values():
        time_calls(fn, device, 0, args.warmup)
    times: dict[str, list[float]] = {key: [] for key in forwards}
    for _ in range(args.iters):
        for key, fn in forwards.items():
            times[key] += time_calls(fn, device, 1, 0)
    medians = {key: statistics.median(values) for key, values in times.items()}
    for key, value in medians.items():
        results[f"{key}_ms_median"] = value
    results["speedup_vs_reference_float32"] = medians["reference_float32"] / medians["ours_float32"]


#: The comparison of each family's ``reference`` implementation.
_REFERENCES = {"transformers": _compare_transformers, "depth_anything_3": _compare_da3_reference}


def _hf_forward(hf, xs, device: torch.device, dtype: torch.dtype) -> Callable[[], object]:
    """One forward pass of transformers' model on ``xs`` at ``dtype`` (autocast)."""

    def run():
        enabled = dtype != torch.float32
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=enabled):
            return hf(pixel_values=xs).predicted_depth

    return run


def synthetic_camera(width: int, height: int):
    """The pinhole camera benchmarks pretend to have: fx = fy = 0.8 * width, principal
    point at the image centre."""
    f = 0.8 * width
    return Intrinsics(fx=f, fy=f, cx=width / 2, cy=height / 2, width=width, height=height)


def _print(results: dict[str, object]) -> None:
    for key, value in results.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"{key:>34}: {value}")
