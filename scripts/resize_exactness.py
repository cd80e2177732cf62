#!/usr/bin/env python3
"""Prints how far dpt_ros's pre-processing resize is from OpenCV's, before and after
issue 22, and what each costs.

Both originals resize the [0, 1] float64 image with ``cv2.resize(INTER_CUBIC)``. The
old path was torch's bicubic in float32 (``F.interpolate``); the new one applies
OpenCV's own float32 coordinates and weights in float64
(``dpt_ros.models.opencv_cubic``). For each image and model family: the network input
size, the largest difference of each path's resized image from ``cv2.resize`` (values
in [0, 1]), and each path's whole ``preprocess`` time per frame on the CPU (median of
``--repeats``; other processes on the machine move it). Then the network input of each
path against the goldens' ``net_input`` on ``scene_a`` (all elements where the full
goldens are beside the repository, else the 4,000 compact samples).

    python scripts/resize_exactness.py [--repeats 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

TEST_DIR = Path(__file__).resolve().parents[1] / "test" / "support"
sys.path.insert(0, str(TEST_DIR))

from goldens import FIXTURES, Golden, shared_fixtures_dir  # noqa: E402

from dpt_ros.models.opencv_cubic import resize_cubic  # noqa: E402
from dpt_ros.models.transforms import network_input_size, preprocess  # noqa: E402

#: (name, net size, multiple, method, mean, std) of the two families.
FAMILIES = (
    ("DPT", (384, 384), 32, "minimal", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    (
        "DAv2",
        (518, 518),
        14,
        "lower_bound",
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    ),
)

#: (goldens' model type, family name, compact file, full golden under shared fixtures).
GOLDENS = (
    ("dpt_hybrid", "DPT", "dpt_hybrid_scene_a.compact.npz", "dpt/golden_dpt_hybrid_scene_a.npz"),
    (
        "depth_anything_v2_vits",
        "DAv2",
        "depth_anything_v2_vits_scene_a.compact.npz",
        "dav2/golden_depth_anything_v2_vits_scene_a.npz",
    ),
)


def old_resize(images: torch.Tensor, size_hw: Sequence[int]) -> torch.Tensor:
    """The pre-issue-22 resize: torch's bicubic in float32, (B, 3, h, w)."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    return F.interpolate(x, size=tuple(size_hw), mode="bicubic", align_corners=False)


def old_preprocess(images, size_hw, mean, std) -> torch.Tensor:
    """The pre-issue-22 ``preprocess``: resize and normalise in float32."""
    x = old_resize(images, size_hw)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def ms_per_frame(fn: Callable[..., object], args: tuple, repeats: int) -> float:
    """Median milliseconds of ``fn(*args)``."""
    fn(*args)  # the first call builds the tables (cached per size pair), warms the allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def images() -> list[tuple[str, np.ndarray]]:
    """The test image, and noise (the worst case: every frequency) at camera sizes."""
    bgr = cv2.imread(str(FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    rng = np.random.default_rng(0)
    out = [("scene_a", np.ascontiguousarray(bgr[:, :, ::-1]))]
    for hw in ((720, 1280), (375, 1242), (480, 640)):
        out.append(("noise", rng.integers(0, 256, (*hw, 3), dtype=np.uint8)))
    return out


def resize_table(repeats: int) -> None:
    print("| image | size | family | network input | old − cv2 | new − cv2 | old ms | new ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rgb in images():
        hw = rgb.shape[:2]
        batch = torch.from_numpy(rgb)[None]
        for family, net, multiple, method, mean, std in FAMILIES:
            size = network_input_size(hw, net, True, multiple, method)
            want = cv2.resize(rgb / 255.0, size[::-1], interpolation=cv2.INTER_CUBIC)
            old = old_resize(batch, size)[0].permute(1, 2, 0).double().numpy()
            new = resize_cubic(batch.double() / 255.0, size)[0].numpy()
            args = (batch, size, mean, std)
            old_ms = ms_per_frame(old_preprocess, args, repeats)
            new_ms = ms_per_frame(preprocess, args, repeats)
            print(
                f"| {name} | {hw[0]}×{hw[1]} | {family} | {size[0]}×{size[1]} "
                f"| {np.abs(old - want).max():.1e} | {np.abs(new - want).max():.1e} "
                f"| {old_ms:.1f} | {new_ms:.1f} |"
            )


def golden_table() -> None:
    shared = shared_fixtures_dir()
    where = "all elements" if shared else "4,000 compact samples"
    print(f"\nNetwork input vs the goldens' net_input on scene_a ({where}), largest |difference|:")
    print("| golden | family | old | new |")
    print("|---|---|---|---|")
    bgr = cv2.imread(str(FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    batch = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1]))[None]
    families = {f[0]: f for f in FAMILIES}
    for model_type, family, compact, full in GOLDENS:
        gold = Golden.load(FIXTURES / "compact" / compact, shared / full if shared else None)
        _, net, multiple, method, mean, std = families[family]
        size = network_input_size(batch.shape[1:3], net, True, multiple, method)
        diffs = []
        for fn in (old_preprocess, preprocess):
            got = fn(batch, size, mean, std)[0].numpy()
            if gold.full is not None:
                diffs.append(np.abs(got - gold.full["net_input"]).max())
            else:
                index, want = gold.samples("net_input")
                diffs.append(np.abs(got[index] - want).max())
        print(f"| {model_type} | {family} | {diffs[0]:.1e} | {diffs[1]:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per figure")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, OpenCV {cv2.__version__}, CPU, "
        f"{torch.get_num_threads()} threads; times: whole preprocess, one frame\n"
    )
    resize_table(args.repeats)
    golden_table()


if __name__ == "__main__":
    main()
