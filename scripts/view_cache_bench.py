"""Window forwards with and without kept keyframes (Depth Anything 3's view cache).

A live window is the current frame and N-1 keyframes that were in the last window too:
with ``view_keys`` the keyframes reuse what the blocks before ``alt_start`` made of them
(a third of the backbone's blocks) and only the new frame runs them. Prints the median
window time of both, taken in turns on the same views, and the largest difference of
the outputs (random weights; CPU fp32 by default).

    python scripts/view_cache_bench.py --model-type depth_anything_3_small --window 4 \\
        --network-size 504 --iters 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from dpt_ros.models import Predictor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-type", default="depth_anything_3_small")
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--network-size", type=int, default=504)
    p.add_argument("--camera-size", default="640x480")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    width, height = (int(v) for v in args.camera_size.split("x"))
    predictor = Predictor(
        args.model_type,
        device=args.device,
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(args.network_size, args.network_size),
    )
    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for _ in range(args.window + args.iters + 1)
    ]
    times: dict[str, list[float]] = {"all views": [], "keyframes kept": []}
    worst = 0.0
    predictor.infer_window(frames[: args.window], view_keys=list(range(args.window)))  # warm
    for i in range(1, args.iters + 1):
        keys = list(range(i, i + args.window))  # one new frame per window
        views = [frames[k] for k in keys]
        t0 = time.perf_counter()
        plain = predictor.infer_window(views)
        t1 = time.perf_counter()
        kept = predictor.infer_window(views, view_keys=keys)
        t2 = time.perf_counter()
        times["all views"].append((t1 - t0) * 1e3)
        times["keyframes kept"].append((t2 - t1) * 1e3)
        worst = max(worst, float(np.abs(kept.depth - plain.depth).max() / plain.depth.max()))
    print(
        f"{args.model_type}, window {args.window}, network {args.network_size}, "
        f"{torch.get_num_threads()} threads, {args.iters} windows"
    )
    for name, ms in times.items():
        print(f"  {name:15s} median {statistics.median(ms):8.1f} ms")
    ratio = statistics.median(times["all views"]) / statistics.median(times["keyframes kept"])
    print(f"  kept keyframes: {ratio:.2f}x; largest depth difference {worst:.1e} (relative)")
    cache = predictor.view_cache
    print(f"  view cache: {cache.hits} hits, {cache.misses} misses")


if __name__ == "__main__":
    main()
