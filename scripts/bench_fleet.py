#!/usr/bin/env python3
"""Bags per minute of ``dpt-ros bag`` over many bags: in this process, and on a local Ray
with 1 and 2 workers. Prints a table and the per-frame cost, from which the scaling on N
GPUs follows (bags are independent: throughput ~ N x one worker's, until the shared
file system or the bag reading is the limit).

    python scripts/bench_fleet.py [--bags 6] [--frames 8] [--network-size 64x64]

Random weights; small synthetic bags (rosbags, sqlite3) in a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpt_ros.cli.main import main as dpt_ros  # noqa: E402


def write_bag(path: Path, frames: int, width: int = 160, height: int = 120) -> None:
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image

    store = get_typestore(Stores.ROS2_HUMBLE)
    rng = np.random.default_rng(0)
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i in range(frames):
            msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
            msg.header.stamp.sec = 100 + i
            msg.data = rng.integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()
            writer.write(conn, (100 + i) * 10**9, serialize_message(msg))


def timed(inputs: list[Path], out: Path, network: str, extra: list[str]) -> float:
    argv = ["bag", *map(str, inputs), "-o", str(out), "--image-topic", "/cam/image_raw"]
    argv += ["--random-weights", "--network-size", network, "--device", "cpu", "-q", *extra]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = dpt_ros(argv)
    if code != 0:
        raise SystemExit(f"dpt-ros bag failed ({code}) with {' '.join(extra)}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bags", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8, help="frames per bag")
    parser.add_argument("--network-size", default="64x64")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = [root / f"bag_{i}" for i in range(args.bags)]
        for path in inputs:
            write_bag(path, args.frames)
        runs = [("this process", []), ("Ray, 1 worker", ["--ray", "--workers", "1"])]
        runs.append(("Ray, 2 workers", ["--ray", "--workers", "2"]))
        print(
            f"{args.bags} bags x {args.frames} frames (160x120), network {args.network_size}, CPU"
        )
        print("| run | seconds | bags/min | frames/s |\n|---|---:|---:|---:|")
        for i, (name, extra) in enumerate(runs):
            if extra and not ray.is_initialized():
                ray.init(include_dashboard=False, log_to_driver=False)
            seconds = timed(inputs, root / f"out_{i}", args.network_size, extra)
            frames = args.bags * args.frames
            print(
                f"| {name} | {seconds:.1f} | {60 * args.bags / seconds:.1f} | "
                f"{frames / seconds:.2f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
