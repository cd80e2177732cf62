"""What ``dpt-ros bench`` and its window mode share: the camera size from the flags,
timing in turns with the device synchronised, and the machine's name."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import torch

from dpt_ros.cli.args import image_size

#: The camera image size when --camera-size is not given (width, height).
DEFAULT_CAMERA = (640, 480)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    fn: Callable[[], object], device: torch.device, iters: int, warmup: int
) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def camera_size(args: argparse.Namespace) -> tuple[int, int]:
    """(width, height) of the camera image: --camera-size, or the deprecated
    --width/--height."""
    if args.width is not None or args.height is not None:
        if args.camera_size is not None:
            raise ValueError("give --camera-size or the deprecated --width/--height, not both")
        print(
            "dpt-ros: note: bench --width/--height are deprecated, use --camera-size WxH",
            file=sys.stderr,
        )
        width = args.width if args.width is not None else DEFAULT_CAMERA[0]
        height = args.height if args.height is not None else DEFAULT_CAMERA[1]
        return image_size(f"{width}x{height}")
    return args.camera_size or DEFAULT_CAMERA


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"
