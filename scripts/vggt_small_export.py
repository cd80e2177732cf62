#!/usr/bin/env python3
"""Exports VGGT's window forward at a reduced configuration (narrow and shallow: the
same block types, heads and camera decoding as VGGT-1B) to ONNX with its weights as
external data, runs it with ONNX Runtime on another input than the traced one, and
prints each output's largest difference to PyTorch, relative to its largest magnitude.

    python scripts/vggt_small_export.py --views 3 --size 56

Evidence for whether VGGT's graph exports (a full-size export of 1.19 B parameters
needs external data past protobuf's 2 GB and many GiB of memory; it is not run here).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dpt_ros.models.network.vggt import Vggt, VggtConfig, pose_encoding_to_extri_intri

#: A VGGT of a few million parameters: 4 block pairs of width 64, 2 DINOv2 blocks.
SMALL = VggtConfig(
    embed_dim=64,
    depth=4,
    num_heads=2,
    dino_depth=2,
    dino_heads=2,
    out_layers=(0, 1, 2, 3),
    features=32,
    channels=(32, 64, 64, 64),
    camera_depth=1,
    camera_iterations=2,
)
NAMES = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")


class _Window(torch.nn.Module):
    """Vggt.window with the outputs as a tuple, and the decoded cameras."""

    def __init__(self, network: Vggt) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network.window(images)
        extrinsics, intrinsics = pose_encoding_to_extri_intri(out.pose_enc, images.shape[-2:])
        return (*out, extrinsics, intrinsics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--size", type=int, default=56, help="network side, multiple of 14")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.manual_seed(0)
    network = Vggt(SMALL).eval()
    with torch.no_grad():  # random weights, with a field of view > 0 (not ReLU's 0)
        for value in network.parameters():
            value.copy_(torch.randn_like(value) * 0.05)
        # the fields of view through ReLU: a positive bias keeps them > 0 (finite fx, fy)
        network.camera_head.pose_branch.fc2.bias[7:] = 1.0
    model = _Window(network).eval()
    params = sum(p.numel() for p in network.parameters())
    generator = torch.Generator().manual_seed(1)
    shape = (1, args.views, 3, args.size, args.size)
    trace_x, check_x = (
        torch.rand(shape, generator=generator),
        torch.rand(shape, generator=generator),
    )
    with torch.inference_mode():
        want = model(check_x)
    names = (*NAMES, "camera_from_world", "intrinsics")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vggt_small.onnx"
        start = time.perf_counter()
        program = torch.onnx.export(
            model,
            (trace_x,),
            dynamo=True,
            opset_version=18,
            input_names=["images"],
            output_names=list(names),
            optimize=True,
        )
        assert program is not None
        program.save(str(path), external_data=True)
        export_s = time.perf_counter() - start
        files = sorted(p.name for p in Path(folder).iterdir())
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(list(names), {"images": check_x.numpy()})
    print(
        f"VGGT reduced config ({params / 1e6:.2f} M parameters), {args.views} views of "
        f"{args.size}x{args.size}: exported in {export_s:.1f} s, files {files}"
    )
    worst = 0.0
    for name, g, w in zip(names, got, want):
        w = w.numpy().astype(np.float64)
        error = float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-12))
        worst = max(worst, error)
        print(f"{name:18s} {tuple(w.shape)!s:24s} max |ort - torch| / max |torch| = {error:.2e}")
    print(f"worst: {worst:.2e} ({'within' if worst <= 1e-4 else 'NOT within'} 1e-4)")


if __name__ == "__main__":
    main()
