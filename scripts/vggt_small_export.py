#!/usr/bin/env python3
"""Builds VGGT's window engines at a reduced configuration (the same blocks, heads and
camera decoding as VGGT-1B at width 64 and 4 block pairs, deterministic weights:
``test/support/vggt_cases.py``) through the engine cache, as ``Predictor.infer_window``
with ``backend: onnxruntime`` does, and prints for each window size the build's time,
PyTorch's and ONNX Runtime's time a window (as the build timed them), and each output's
largest difference to PyTorch relative to its largest magnitude.

    python scripts/vggt_small_export.py --views 2 3 --size 70

The views are 160x120 crops of the test image (the network grid 70x56 at --size 70).
The engines are built in this process (the cache's child process would build vggt_1b
at full size: 1.19 B parameters, not run here) into a temporary cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "support"))

import vggt_cases  # noqa: E402

from dpt_ros.models import Predictor  # noqa: E402
from dpt_ros.runtime.window_runtimes import window_shape  # noqa: E402


def _views(count: int) -> list[np.ndarray]:
    """160x120 crops of the test image moving to the right and down (as the tests')."""
    bgr = cv2.imread(str(vggt_cases.FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    rgb = cv2.resize(bgr[:, :, ::-1], (240, 180), interpolation=cv2.INTER_AREA)
    return [rgb[6 * i : 6 * i + 120, 20 * i : 20 * i + 160].copy() for i in range(count)]


def _error(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--size", type=int, default=70, help="network width, multiple of 14")
    args = parser.parse_args()
    kwargs = {"random_weights": True, "network_size": (args.size, args.size), "device": "cpu"}
    with vggt_cases.reduced_vggt_1b(), tempfile.TemporaryDirectory() as cache:
        reference = Predictor(vggt_cases.MODEL_TYPE, backend="torch", **kwargs)
        params = sum(p.numel() for p in reference.model.parameters())
        engine = Predictor(
            vggt_cases.MODEL_TYPE,
            backend="onnxruntime",
            engine_build="eager",
            cache_dir=cache,
            **kwargs,
        )
        print(f"VGGT reduced configuration: {params / 1e6:.2f} M parameters, fp32, CPU")
        worst = 0.0
        for count in args.views:
            views = _views(count)
            want = reference.infer_window(views)
            start = time.perf_counter()
            got = engine.infer_window(views)  # eager: builds the window's engine first
            first_s = time.perf_counter() - start
            (folder,) = (Path(cache) / "engines").glob(f"*_n{count}_onnxruntime_*")
            record = json.loads((folder / "key.json").read_text())
            sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
            hw = tuple(got.depth.shape[-2:])
            print(
                f"\n{count} views of {hw[1]}x{hw[0]}: build {record['build_s']:.1f} s (first "
                f"window {first_s:.1f} s); a window: torch {record.get('torch_ms', 'n/a')} ms, "
                f"onnxruntime {record.get('onnxruntime_ms', 'n/a')} ms; files {sizes}"
            )
            errors = {
                "depth": _error(got.depth, want.depth),
                "depth_conf": _error(got.confidence, want.confidence),
                "world_points": _error(got.cameras.world_points, want.cameras.world_points),
                "camera_from_world": _error(
                    got.cameras.camera_from_world, want.cameras.camera_from_world
                ),
                "intrinsics": _error(got.cameras.intrinsics, want.cameras.intrinsics),
            }
            # the raw outputs too: the pose encoding and the point map's confidence
            spec = reference.spec
            batch = torch.from_numpy(np.stack(views))
            net_hw = reference.input_size(batch.shape[1:3])
            x, _ = spec.family.window_input(
                spec, batch, net_hw, reference.net_hw, reference._mean, reference._std
            )
            runner = engine.runtime.window_engine(window_shape(count, net_hw, "none", False))
            with torch.inference_mode():
                raw_want = reference.model.window(x[None])
                raw_got = runner.window(x[None])
            for name, g, w in zip(raw_want._fields, raw_got, raw_want):
                errors[f"raw {name}"] = _error(g, w)
            for name, error in errors.items():
                print(f"  {name:22s} max |ort - torch| / max |torch| = {error:.2e}")
                worst = max(worst, error)
        print(f"\nworst: {worst:.2e} ({'within' if worst <= 1e-4 else 'NOT within'} 1e-4)")


if __name__ == "__main__":
    main()
