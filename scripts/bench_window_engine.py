#!/usr/bin/env python3
"""Times a Depth Anything 3 window forward on PyTorch against its ONNX Runtime window
engine, on the CPU, in turns, and prints the figures.

    python scripts/bench_window_engine.py --views 4 --width 280 --height 210

The window engine is exported as the engine cache builds it (``export_window_onnx``,
fixed N, the reference-view strategy in the graph) into a temporary folder; both run the
same random normalised input, one untimed run each first, then ``--runs`` timed runs in
turns so that a change of the machine's load hits both. Random weights unless
``--weights``: the time does not depend on the values.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dpt_ros.models.network.depth_anything3 import DepthAnything3Window
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.runtime.export import export_window_onnx
from dpt_ros.runtime.window_runtimes import OnnxWindowModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-type", default="depth_anything_3_small")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--width", type=int, default=280, help="network input, multiple of 14")
    parser.add_argument("--height", type=int, default=210, help="network input, multiple of 14")
    parser.add_argument("--reference-view", default="saddle_balanced")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch's intra-op threads (0: its default)"
    )
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "window.onnx"
        start = time.perf_counter()
        result = export_window_onnx(
            args.model_type,
            path,
            views=args.views,
            width=args.width,
            height=args.height,
            reference_view=args.reference_view,
            weights=args.weights,
            random_weights=args.weights is None,
            progress=False,
        )
        export_s = time.perf_counter() - start
        engine = OnnxWindowModel(path, "cpu", model_type=args.model_type)
        network = load_model(args.model_type, args.weights, random_weights=args.weights is None)
        window = DepthAnything3Window(network, args.reference_view).eval()
        x = torch.rand(
            (1, args.views, 3, args.height, args.width), generator=torch.Generator().manual_seed(1)
        )
        x = x * 2 - 1
        runs: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
        calls = {
            "torch": lambda: window(x),
            "onnxruntime": lambda: engine.forward_window(x, reference_view=args.reference_view),
        }
        with torch.inference_mode():
            for step in range(1 + args.runs):
                for name, call in calls.items():
                    begin = time.perf_counter()
                    call()
                    if step:
                        runs[name].append((time.perf_counter() - begin) * 1e3)
    print(
        f"{args.model_type}, {args.views} views of {args.width}x{args.height}, "
        f"{args.reference_view}, CPU, {torch.get_num_threads()} torch threads"
    )
    print(
        f"export + check: {export_s:.1f} s (largest difference to PyTorch: {result.max_rel_diff:.2g})"
    )
    for name, values in runs.items():
        print(
            f"{name:12s} median {statistics.median(values):8.1f} ms, min {min(values):8.1f} ms "
            f"({len(values)} runs)"
        )
    ratio = statistics.median(runs["onnxruntime"]) / statistics.median(runs["torch"])
    print(f"onnxruntime / torch (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
