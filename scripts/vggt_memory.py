#!/usr/bin/env python3
"""Peak host memory of one VGGT forward: ours, or the reference's (``--reference``).

The reference keeps the outputs of all 24 block pairs for its heads; ours keeps the four
they read. Each run builds one network (random weights: the values do not change the
memory), resets the process's peak resident size (``/proc/self/clear_refs``), runs one
window of S views at N x N in float32 on the CPU and prints the peak minus the resident
size before the forward. Run each in a process of its own, ours with the main venv and
the reference with the venv of ``scripts/make_vggt_goldens.py``:

    PYTHONPATH=. python scripts/vggt_memory.py --views 8 --size 224
    /work/vggtref/bin/python scripts/vggt_memory.py --views 8 --size 224 --reference
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--reference", action="store_true", help="the reference's VGGT")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    if args.reference:
        from vggt.models.vggt import VGGT

        model = VGGT(enable_track=False).eval()
        name = "reference"
    else:
        from dpt_ros.models.network.vggt import Vggt

        model = Vggt().eval()
        name = "dpt_ros"
    images = torch.rand(1, args.views, 3, args.size, args.size)
    with torch.no_grad():  # warm-up at one view: allocator and thread pools
        model(images[:, :1])
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    with torch.no_grad():
        model(images)
    peak = _status_kib("VmHWM")
    print(
        f"{name}: S={args.views} at {args.size}x{args.size}: peak {peak / 1024:.0f} MiB, "
        f"resident before the forward {before / 1024:.0f} MiB, "
        f"forward's extra {(peak - before) / 1024:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
