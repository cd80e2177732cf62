#!/usr/bin/env python3
"""Prints how far dpt_ros is from the original DPT on the fidelity goldens.

For each model type with a golden: the network on the original's exact input (full
goldens only), the network on our own preprocessing, and the end-to-end result, each as
the largest difference relative to the output's largest magnitude (labels: share of
equal pixels). For the hybrid types, the same with timm 1.x's / transformers' weight
standardisation, ``(w - mean) / sqrt(var + 1e-8)``, in place of the original's; for
Depth Anything V2, the same with position embeddings resized to the grid's size
(timm's and transformers' way) instead of the original's scale factor.

    python scripts/fidelity_report.py [--types dpt_hybrid dpt_large ...]

Uses the compact goldens in test/fixtures, and the full ones where ../shared/fixtures
(or $DPT_ROS_FIXTURES) is present.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

TEST_DIR = Path(__file__).resolve().parents[1] / "test" / "support"
sys.path.insert(0, str(TEST_DIR))

import deterministic_weights  # noqa: E402  (test helpers: generator and goldens)
from goldens import FIXTURES, Golden, shared_fixtures_dir  # noqa: E402

from dpt_ros.models import Predictor  # noqa: E402
from dpt_ros.models.network import depth_anything  # noqa: E402
from dpt_ros.models.network.std_conv import OriginalStdConv2d  # noqa: E402
from dpt_ros.models.transforms import preprocess  # noqa: E402

TYPES = (
    "dpt_hybrid",
    "dpt_large",
    "dpt_hybrid_nyu",
    "dpt_hybrid_ade20k",
    "depth_anything_v2_vits",
    "depth_anything_v2_metric_hypersim_vitb",
)


def _layout_and_golden(shared: Path | None, model_type: str) -> tuple[Path, Path | None]:
    """The key layout file and the full golden (None without ../shared) of a type."""
    if model_type.startswith("depth_anything_v2"):
        keys = f"keys_depth_anything_v2_{model_type.rsplit('_', 1)[1]}.json"
        family = "dav2"
    else:
        keys, family = f"keys_{model_type}.json", "dpt"
    full = shared / family / f"golden_{model_type}_scene_a.npz" if shared else None
    return FIXTURES / "keys" / keys, full


def _size_based_pos_embed(pos_embed: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Position embeddings resized to the grid's size (timm's and transformers' way),
    instead of the original's scale factor."""
    n = pos_embed.shape[1] - 1
    side = int(n**0.5)
    grid = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, size=tuple(grid_hw), mode="bicubic")
    grid = grid.permute(0, 2, 3, 1).reshape(1, grid_hw[0] * grid_hw[1], -1)
    return torch.cat((pos_embed[:, :1], grid), dim=1)


def _timm_1x_standardization(module: OriginalStdConv2d) -> None:
    def standardized_weight() -> torch.Tensor:
        w = module.weight
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True, correction=0)
        return (w - mean) / torch.sqrt(var + 1e-8)

    module.standardized_weight = standardized_weight


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


def report(model_type: str, weights: Path, rgb: np.ndarray, golden: Golden, timm_1x: bool) -> str:
    # PyTorch: the network as written (an ONNX engine from ``backend: auto`` would carry
    # the original's standardisation whatever is patched in here; engines have tests of
    # their own)
    predictor = Predictor(
        model_type, weights=weights, device="cpu", precision="fp32", backend="torch"
    )
    if timm_1x:
        for m in predictor.model.modules():
            if isinstance(m, OriginalStdConv2d):
                _timm_1x_standardization(m)
    size = predictor.input_size(rgb.shape[:2])
    x = preprocess(torch.from_numpy(rgb)[None], size, predictor.spec.mean, predictor.spec.std)
    with torch.inference_mode():
        net = predictor.model(x)[0].numpy()
        exact = (
            predictor.model(torch.from_numpy(golden.full["net_input"])[None])[0].numpy()
            if golden.full is not None
            else None
        )
    final = predictor.predict(rgb)
    parts = [f"input {golden.relative_error('net_input', x[0].numpy()):.1e}"]
    if predictor.is_depth:
        parts += [
            f"network {golden.relative_error('net_output', net):.1e}",
            f"end to end {golden.relative_error('final', final):.1e}",
        ]
        if exact is not None:
            parts.insert(
                1, f"network on the original's input {_rel(exact, golden.full['net_output']):.1e}"
            )
    else:
        c, y, xx = golden.raw("logit_index").T
        parts += [
            f"logits {_rel(net[c, y, xx], golden.raw('logit_value')):.1e}",
            f"labels equal {100 * golden.agreement('labels', final):.4f} %",
        ]
        if exact is not None:
            parts.insert(
                1,
                f"logits on the original's input {_rel(exact[c, y, xx], golden.raw('logit_value')):.1e}",
            )
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--types", nargs="+", default=list(TYPES), choices=TYPES)
    args = parser.parse_args()
    shared = shared_fixtures_dir()
    print(
        f"goldens: {'full (' + str(shared) + ')' if shared else 'compact only'}; "
        f"torch {torch.__version__}"
    )
    bgr = cv2.imread(str(FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    with tempfile.TemporaryDirectory() as tmp:
        for model_type in args.types:
            keys, full = _layout_and_golden(shared, model_type)
            golden = Golden.load(FIXTURES / "compact" / f"{model_type}_scene_a.compact.npz", full)
            layout = deterministic_weights.read_layout(keys)
            weights = Path(tmp) / f"{model_type}.pt"
            torch.save(deterministic_weights.deterministic_state_dict(layout), weights)
            print(f"{model_type}: {report(model_type, weights, rgb, golden, False)}", flush=True)
            if "hybrid" in model_type:
                print(
                    f"  with timm 1.x / transformers weight standardisation: "
                    f"{report(model_type, weights, rgb, golden, True)}",
                    flush=True,
                )
            if model_type.startswith("depth_anything_v2"):
                original = depth_anything.interpolate_pos_embed
                depth_anything.interpolate_pos_embed = _size_based_pos_embed
                print(
                    f"  with size-based position embeddings (timm / transformers): "
                    f"{report(model_type, weights, rgb, golden, False)}",
                    flush=True,
                )
                depth_anything.interpolate_pos_embed = original
            weights.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
