#!/usr/bin/env python3
"""Prints the per-frame cost of the node's windows (``any_view.window``) on this
machine: the window state, the forward and the chain, as the node's worker runs them
(no ROS), for windows of 1 (a single forward through the window path) to N views.

    python scripts/any_view_latency.py --model depth_anything_3_small --net 280 \\
        --image 480x640 --window 4 --frames 6

Random weights (the cost, not the numbers); the chain's Sim(3) links may fail on
them, which costs about what a link costs. Figures are medians over the frames after
the window filled.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dpt_ros.anyview import AnyViewOptions, WindowState  # noqa: E402
from dpt_ros.anyview.forward import run_window  # noqa: E402
from dpt_ros.models import Predictor  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="depth_anything_3_small")
    parser.add_argument("--net", type=int, default=280, help="network size (process_res)")
    parser.add_argument("--image", default="480x640", help="HxW of the camera images")
    parser.add_argument("--window", type=int, default=4, help="largest window (views)")
    parser.add_argument("--frames", type=int, default=5, help="timed frames per window")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    h, w = (int(v) for v in args.image.split("x"))
    predictor = Predictor(
        args.model,
        device=args.device,
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(args.net, args.net),
    )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(8)]
    print(f"{args.model} at {args.net}, images {h}x{w}, {args.device}")
    for window in range(2, args.window + 1):
        state = WindowState(AnyViewOptions(window=window, keyframe_period=1e-9))
        times = []
        for i in range(window - 1 + args.frames):
            start = time.perf_counter()
            plan = state.plan(images[i % len(images)], (i + 1) * 10**9)
            result, conditioned, _ = run_window(predictor, plan, "saddle_balanced", None)
            state.finish(plan, result, conditioned)
            if len(plan) == window:
                times.append(time.perf_counter() - start)
        print(
            f"window {window}: {statistics.median(times) * 1e3:.0f} ms per frame (median of "
            f"{len(times)})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
