#!/usr/bin/env python3
"""Memory of the running node over many frames: does it grow?

Starts the real ``DptNode`` in this process, publishes camera frames (rgb8 plus
camera_info) to it over rclpy and waits for each frame's ``points`` (or labels) before
sending the next, so every frame goes through decode, inference, messages and publish.
Process RSS (and CUDA memory on a GPU) is sampled every ``--every`` frames; after the
first ``--settle`` frames (allocator and caches warming up) the growth must stay under
``--max-growth-mb``.

    python scripts/check_memory.py --frames 10000 [--device cpu] [--segmentation]
        [--network-size 64x64] [--camera-size 640x480]

Random weights; the network size only sets the time per frame (the camera size sets the
size of every message). Prints a table of samples and a verdict; exit status 1 if the
memory grew.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpt_ros.cli.args import image_size, network_size  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--every", type=int, default=500, help="sample every N frames")
    parser.add_argument("--settle", type=int, default=500, help="frames before the baseline sample")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-type", default="dpt_hybrid")
    parser.add_argument(
        "--segmentation",
        action="store_true",
        help="also run dpt_hybrid_ade20k (labels in the cloud)",
    )
    parser.add_argument(
        "--network-size",
        "--network",
        dest="network_size",
        type=network_size,
        default=(64, 64),
        help="network input WxH, multiples of 32 (default 64x64)",
    )
    parser.add_argument(
        "--camera-size",
        type=image_size,
        default=(640, 480),
        help="camera image WxH (default 640x480)",
    )
    args = parser.parse_args(argv)
    args.width, args.height = args.camera_size

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Header

    from dpt_ros.cli.bench import synthetic_camera
    from dpt_ros.node.node import DptNode
    from dpt_ros.ros.image_codec import rgb_to_image_msg

    nw, nh = args.network_size
    rclpy.init()
    params = [
        Parameter("device", value=args.device),
        Parameter("network_width", value=nw),
        Parameter("network_height", value=nh),
        Parameter("depth.model_type", value=args.model_type),
        Parameter("depth.random_weights", value=True),
        Parameter("relative_depth.scale", value=1.0),
        Parameter("relative_depth.shift", value=0.1),
        Parameter("warmup_width", value=args.width),
        Parameter("warmup_height", value=args.height),
        Parameter("log_period", value=0.0),
        # Reliable input: a best-effort frame lost in transport would stall the
        # frame-by-frame handshake below.
        Parameter("qos.input.reliability", value="reliable"),
    ]
    if args.segmentation:
        params += [
            Parameter("segmentation.model_type", value="dpt_hybrid_ade20k"),
            Parameter("segmentation.random_weights", value=True),
        ]
    node = DptNode(parameter_overrides=params)
    driver = Node("memory_driver")
    done = threading.Event()
    received = [0]

    def on_points(_msg) -> None:
        received[0] += 1
        done.set()

    driver.create_subscription(PointCloud2, "points", on_points, 10)
    image_pub = driver.create_publisher(Image, "image", 10)
    info_pub = driver.create_publisher(CameraInfo, "camera_info", 10)
    # One executor thread, as 'ros2 run dpt_ros dpt_node' spins; inference has its own.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(driver)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    while image_pub.get_subscription_count() == 0 or driver.count_publishers("points") == 0:
        time.sleep(0.05)

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8) for _ in range(4)]
    info = synthetic_camera(args.width, args.height).to_camera_info("camera_optical_frame")
    cuda = node.pipeline.depth.device.type == "cuda"
    if cuda:
        import torch

    samples = []
    t_start = time.perf_counter()
    print(f"{'frame':>7} {'rss_mb':>9} {'cuda_alloc_mb':>14} {'ms/frame':>9}")
    last_t, last_i = t_start, 0
    for i in range(1, args.frames + 1):
        header = Header(frame_id="camera_optical_frame")
        header.stamp = node.get_clock().now().to_msg()
        info.header = header
        info_pub.publish(info)
        done.clear()
        image_pub.publish(rgb_to_image_msg(frames[i % 4], header))
        if not done.wait(60.0):
            print(f"frame {i}: no cloud after 60 s", flush=True)
            continue
        if i % args.every == 0 or i == args.frames:
            now = time.perf_counter()
            cuda_mb = torch.cuda.memory_allocated() / 2**20 if cuda else float("nan")
            samples.append((i, rss_mb(), cuda_mb))
            print(
                f"{i:>7} {samples[-1][1]:>9.1f} {cuda_mb:>14.1f} "
                f"{(now - last_t) * 1e3 / (i - last_i):>9.1f}",
                flush=True,
            )
            last_t, last_i = now, i
    status = node.status()
    executor.shutdown()
    node.destroy_node()
    driver.destroy_node()
    rclpy.try_shutdown()

    base = [s for s in samples if s[0] >= args.settle]
    if len(base) < 2:
        print("too few samples after --settle; raise --frames")
        return 1
    growth = base[-1][1] - base[0][1]
    peak = max(s[1] for s in base) - base[0][1]
    cuda_growth = base[-1][2] - base[0][2] if cuda else 0.0
    print(f"node latency (stamp to publish) median {status['latency_ms_median']} ms")
    print(
        f"frames sent {args.frames}, clouds received {received[0]}, node processed "
        f"{status['processed']}, dropped {status['dropped']}, failed {status['failed']}"
    )
    print(
        f"RSS from frame {base[0][0]} to {base[-1][0]}: {base[0][1]:.1f} -> "
        f"{base[-1][1]:.1f} MB (growth {growth:+.1f} MB, peak {peak:+.1f} MB)"
        + (f"; CUDA allocated growth {cuda_growth:+.1f} MB" if cuda else "")
    )
    ok = growth <= args.max_growth_mb and cuda_growth <= 1.0
    print("memory steady" if ok else f"MEMORY GREW by more than {args.max_growth_mb} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
