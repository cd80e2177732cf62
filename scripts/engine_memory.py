#!/usr/bin/env python3
"""Memory of a model on an engine: does the PyTorch copy stay beside it?

Loads ``--model-type`` with ``backend auto`` (random weights), warms it up at the
network size (the engine is built into a cache of this run, or taken from
``$DPT_ROS_CACHE``), runs frames, and prints the process RSS (and CUDA memory on a GPU)
at each step: the torch model alone, the engine running with the torch copy freed, and
after a shape without an engine has loaded the torch copy again.

    python scripts/engine_memory.py [--model-type dpt_hybrid] [--device cpu]
        [--network-size 384x384]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpt_ros.cli.args import network_size  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-type", default="dpt_hybrid")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--network-size", type=network_size, default=(384, 384))
    args = parser.parse_args(argv)
    os.environ.setdefault("DPT_ROS_CACHE", tempfile.mkdtemp(prefix="dpt_ros_memory_"))

    import torch

    from dpt_ros.models import Predictor

    def cuda_mb() -> str:
        if not torch.cuda.is_available() or not args.device.startswith("cuda"):
            return "-"
        return f"{torch.cuda.memory_allocated() / 2**20:.0f}"

    w, h = args.network_size
    rows = [("process start (torch imported)", rss_mb(), cuda_mb())]
    predictor = Predictor(
        args.model_type,
        device=args.device,
        random_weights=True,
        progress=False,
        network_size=(w, h),
        backend="auto",
    )
    rows.append(("model loaded (PyTorch)", rss_mb(), cuda_mb()))
    predictor.warm_up((h, w))
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for _ in range(3):
        predictor.predict(frame)
    runtime = predictor.runtime
    freed = not getattr(runtime, "torch_loaded", True)
    rows.append((f"engine running, torch copy freed: {freed}", rss_mb(), cuda_mb()))
    predictor.predict(np.zeros((h, w + 32, 3), np.uint8))  # a shape without an engine
    rows.append(("torch copy loaded again (a new shape)", rss_mb(), cuda_mb()))
    print(f"{args.model_type} {w}x{h} on {args.device}, backend {predictor.backend}")
    print("| step | RSS (MB) | CUDA allocated (MB) |\n|---|---|---|")
    for name, rss, cuda in rows:
        print(f"| {name} | {rss:.0f} | {cuda} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
