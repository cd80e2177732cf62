#!/usr/bin/env python3
"""Time depth back-projection and PointCloud2 packing for one camera frame.

Usage::

    python scripts/bench_pointcloud.py [--width 640] [--height 480] [--stride 1] [--repeat 50]
                                       [--device cpu]

Prints the median wall time in milliseconds of the node's per-frame cloud
cost: the torch back-projection (``dpt_ros.models.geometry.backproject``) on
``--device``, the copy of the xyz grid to the host, and ``make_pointcloud2``
with rgb and labels; then each step on its own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builtin_interfaces.msg import Time  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dpt_ros.models.geometry import backproject  # noqa: E402
from dpt_ros.ros.camera import Intrinsics  # noqa: E402
from dpt_ros.ros.pointcloud import make_pointcloud2  # noqa: E402


def median_ms(fn: Callable[[], object], repeat: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeat`` runs (after 3 warm-ups).

    On a CUDA device each run waits for the device to finish before it is timed.
    """

    def run() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    """Parse the command line, run the timings and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--device", default="cpu", help="torch device of the depth (cpu, cuda)")
    args = parser.parse_args()

    w, h, s = args.width, args.height, args.stride
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 8.0, size=(h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.05] = np.nan
    depth_t = torch.from_numpy(depth).to(device)
    intr = Intrinsics(fx=0.8 * w, fy=0.8 * w, cx=(w - 1) / 2, cy=(h - 1) / 2, width=w, height=h)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)[::s, ::s]
    labels = rng.integers(0, 151, size=(h, w), dtype=np.uint8)[::s, ::s]
    header = Header(stamp=Time(sec=0, nanosec=0), frame_id="camera_optical_frame")

    def project() -> torch.Tensor:
        return backproject(depth_t, intr.fx, intr.fy, intr.cx, intr.cy, stride=s, max_depth=10.0)

    xyz = project().cpu().numpy()
    both = median_ms(
        lambda: make_pointcloud2(header, project().cpu().numpy(), rgb=rgb, labels=labels),
        args.repeat,
        device,
    )
    bp = median_ms(project, args.repeat, device)
    pc = median_ms(
        lambda: make_pointcloud2(header, xyz, rgb=rgb, labels=labels), args.repeat, device
    )
    print(
        f"{w}x{h} stride {s} ({xyz.shape[0] * xyz.shape[1]} points) on {device}, "
        f"median of {args.repeat}:"
    )
    print(f"  backproject + to host + make_pointcloud2 (xyz+rgb+label): {both:.2f} ms")
    print(f"  backproject only:                                         {bp:.2f} ms")
    print(f"  make_pointcloud2 only:                                    {pc:.2f} ms")


if __name__ == "__main__":
    main()
