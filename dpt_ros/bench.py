"""``dpt-ros bench``: latency, throughput and memory of the model and of the whole node
pipeline per frame, and the same architecture in Hugging Face ``transformers`` side by
side. A script that prints figures; no test asserts on timings.

Random weights are used (timing does not depend on them).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported in run(): 'dpt-ros --help' stays fast
    import torch


def add_parser(subparsers, name: str = "bench") -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="benchmark the model and the node pipeline",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-type", default="dpt_hybrid", help="model type (default dpt_hybrid)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    p.add_argument("--width", type=int, default=640, help="camera image width (pixels)")
    p.add_argument("--height", type=int, default=480, help="camera image height (pixels)")
    p.add_argument("--batch", type=int, default=1, help="frames per forward pass")
    p.add_argument("--iters", type=int, default=10, help="timed iterations")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--no-transformers", action="store_true",
                   help="skip the Hugging Face transformers comparison")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with every figure as the last line")
    return p


def _sync(device: "torch.device") -> None:
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], device: "torch.device", iters: int, warmup: int) -> List[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _stats(ms: List[float]) -> Dict[str, float]:
    ms = sorted(ms)
    return {"median": statistics.median(ms), "p90": ms[min(len(ms) - 1, int(0.9 * len(ms)))]}


def _peak_memory_mb(device: "torch.device") -> Optional[float]:
    if device.type == "cuda":
        import torch
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def _transformers_model(model_type: str, device: "torch.device", size_hw):
    """DPTForDepthEstimation with DPT-Hybrid/Large's configuration, random weights."""
    from transformers import DPTConfig, DPTForDepthEstimation  # optional dependency

    from .models import get_spec

    spec = get_spec(model_type)
    if spec.backbone == "vitl16_384":
        config = DPTConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096, backbone_out_indices=[5, 11, 17, 23],
                           neck_hidden_sizes=[256, 512, 1024, 1024], image_size=size_hw[0])
    elif spec.backbone == "vitb_rn50_384":
        config = DPTConfig(is_hybrid=True, backbone_out_indices=[2, 5, 8, 11],
                           neck_hidden_sizes=[256, 512, 768, 768], image_size=size_hw[0],
                           embedding_type="vit-hybrid", readout_type="project")
    else:
        raise ValueError(f"no transformers configuration for backbone {spec.backbone}")
    return DPTForDepthEstimation(config).eval().to(device)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .models import Predictor
    from .models.transforms import preprocess
    from .pipeline import FramePipeline, PipelineOptions
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    predictor = Predictor(args.model_type, device=args.device, precision=args.precision,
                          random_weights=True, progress=False)
    device = predictor.device
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.batch, args.height, args.width, 3), dtype=np.uint8)
    size = predictor.input_size((args.height, args.width))
    x = preprocess(torch.from_numpy(frames).to(device), size, predictor.spec.mean,
                   predictor.spec.std)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def forward():
        with torch.inference_mode(), predictor._autocast():
            return predictor.model(x)

    results: Dict[str, object] = {
        "model_type": args.model_type, "device": str(device),
        "precision": str(predictor.dtype).replace("torch.", ""),
        "image": f"{args.width}x{args.height}", "network_input": f"{size[1]}x{size[0]}",
        "batch": args.batch, "iters": args.iters, "torch": torch.__version__,
        "machine": (torch.cuda.get_device_name(device) if device.type == "cuda"
                    else f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} threads"),
    }
    model_ms = _time(forward, device, args.iters, args.warmup)
    s = _stats(model_ms)
    results["model_ms_median"], results["model_ms_p90"] = s["median"], s["p90"]
    results["throughput_fps"] = 1e3 * args.batch / s["median"]
    results["peak_memory_mb"] = _peak_memory_mb(device)

    # The node's whole per-frame work on one frame: decode is a copy of an rgb8 message,
    # then preprocessing, model, postprocessing, messages and the PointCloud2.
    if predictor.is_depth:
        pipeline = FramePipeline(predictor, None, PipelineOptions(
            relative_scale=0.0 if predictor.spec.is_metric else 1.0, relative_shift=0.1))
    else:
        pipeline = FramePipeline(None, predictor)
    info = CameraInfo(width=args.width, height=args.height)
    f = 0.8 * args.width
    info.k = [f, 0.0, args.width / 2, 0.0, f, args.height / 2, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, args.width / 2, 0.0, 0.0, f, args.height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    header = Header(frame_id="camera_optical_frame")
    from .ros.image_codec import image_to_rgb, rgb_to_image_msg
    msg = rgb_to_image_msg(frames[0], header)
    parts: Dict[str, List[float]] = {}

    def frame():
        t0 = time.perf_counter()
        rgb = image_to_rgb(msg)
        t1 = time.perf_counter()
        out = pipeline.process(rgb, header, info)
        parts.setdefault("decode", []).append((t1 - t0) * 1e3)
        for k, v in out.timings_ms.items():
            parts.setdefault(k, []).append(v)

    pipeline_ms = _time(frame, device, args.iters, args.warmup)
    # Overhead is measured against a single-frame forward: the node runs one frame at a time.
    single = _time(lambda: _single_forward(predictor, x), device, args.iters, args.warmup)
    results["model_single_ms_median"] = statistics.median(single)
    results["pipeline_ms_median"] = statistics.median(pipeline_ms)
    results["pipeline_overhead_fraction"] = (
        (results["pipeline_ms_median"] - results["model_single_ms_median"])
        / results["pipeline_ms_median"])
    results["pipeline_parts_ms_median"] = {k: statistics.median(v[-args.iters:])
                                           for k, v in parts.items()}

    if not args.no_transformers and predictor.is_depth:
        try:
            sq = (predictor.spec.net_height, predictor.spec.net_height)
            hf = _transformers_model(args.model_type, device, sq)
        except ImportError:
            results["transformers"] = "not installed (pip install transformers)"
        else:
            # transformers' hybrid embedding accepts only its configured square size:
            # both models run on the same square input for this comparison.
            xs = preprocess(torch.from_numpy(frames).to(device), sq, predictor.spec.mean,
                            predictor.spec.std)

            def hf_forward():
                with torch.inference_mode(), predictor._autocast():
                    return hf(pixel_values=xs).predicted_depth

            def our_forward():
                with torch.inference_mode(), predictor._autocast():
                    return predictor.model(xs)
            hf_ms = _time(hf_forward, device, args.iters, args.warmup)
            ours_ms = _time(our_forward, device, args.iters, args.warmup)
            results["compare_input"] = f"{sq[1]}x{sq[0]}"
            results["transformers_ms_median"] = statistics.median(hf_ms)
            results["ours_same_input_ms_median"] = statistics.median(ours_ms)
            results["speedup_vs_transformers"] = (results["transformers_ms_median"]
                                                  / results["ours_same_input_ms_median"])
            del hf
    _print(results)
    if args.json:
        print(json.dumps(results))
    return 0


def _single_forward(predictor, x):
    import torch

    with torch.inference_mode(), predictor._autocast():
        return predictor.model(x[:1])


def _print(results: Dict[str, object]) -> None:
    for key, value in results.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"{key:>28}: {value}")
