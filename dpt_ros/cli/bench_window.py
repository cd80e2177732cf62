"""``dpt-ros bench --window N``: the window forward of a multi-view model (Depth Anything
3 any-view, VGGT) timed beside the reference implementation in the same run.

What is timed, on both sides: the network's forward on one window, the same
preprocessed (1, N, 3, h, w) float32 tensor, in fp32, random weights, no gradients.
Depth Anything 3's input is ImageNet-normalised (ours and the reference's
``DepthAnything3Net`` both take it so, and both decode the cameras inside); VGGT's is RGB
in [0, 1] (ours and the reference's ``VGGT`` both normalise inside). Preprocessing,
resizing and the copy to the host are not timed. The forwards of the two sides are taken
in turns, one each, so that a machine's changing load weighs on both.

Peak memory of one forward: on CUDA, the allocator's peak over the memory held before
it; on the CPU, each side in a process of its own (a child of this one) that builds the
network, runs one warm-up view, resets the process's peak resident size and runs the
window: the peak minus the resident size before the forward (``forward_extra_mb``), and
the child's whole peak resident size with its network and the Python runtime
(``process_peak_rss_mb``; Linux's ``/proc/self/status``, elsewhere ``getrusage``).

``--window 1`` is a window of one view through the same window forward (cameras
included), not the single-image path that ``dpt-ros bench`` times without ``--window``.

Each family names its window forward and its reference
(:meth:`~dpt_ros.models.family.ModelFamily.window_forward`, ``window_reference``). The
references are optional imports, never dependencies: ``depth_anything_3``
(``depth-anything-3==0.1.1``) and ``vggt`` (facebookresearch/vggt), each in a venv of its
own (docs/speed.md). Where one does not import, the figures say so and ours is timed
alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpt_ros.cli.args import options_from_flags
from dpt_ros.cli.bench_timing import camera_size, machine, time_calls
from dpt_ros.models import Predictor
from dpt_ros.models.registry import get_spec, window_model_names

#: What is timed, as the figures say it.
TIMED = (
    "the network's window forward on one preprocessed (1, N, 3, h, w) float32 input, "
    "random weights, no gradients; preprocessing and the copy to the host not timed"
)


def check_window_args(args: argparse.Namespace) -> None:
    """ValueError for what ``--window`` cannot time: a type without windows (naming
    those with them), an exported engine, a precision other than fp32, a compiled
    network, a batch of windows."""
    spec = get_spec(args.model_type)
    if not spec.windows:
        raise ValueError(
            f"--window needs a model type with windows of views, one of: "
            f"{', '.join(window_model_names())}; {args.model_type} sees one image at a time"
        )
    if args.backend not in ("auto", "torch") or args.engine:
        raise ValueError(
            f"--window runs the window forward in PyTorch: use --backend torch (or auto), "
            f"without --engine (got --backend {args.backend})"
        )
    if args.precision not in ("auto", "fp32"):
        raise ValueError(
            f"--window compares in fp32, the reference's precision: leave --precision at "
            f"auto or fp32 (got {args.precision})"
        )
    if getattr(args, "compile", "none") != "none":
        raise ValueError(
            f"--window times the window forward uncompiled, as the reference runs: leave "
            f"--compile at none (got {args.compile})"
        )
    if args.batch != 1:
        raise ValueError(
            f"--window times one window per forward: leave --batch at 1 (got {args.batch})"
        )


# --------------------------------------------------------------------------- forwards


def _network_input(predictor: Predictor, views: int, width: int, height: int) -> torch.Tensor:
    """(1, N, 3, h, w) float32: N random camera images preprocessed as ``infer_window``
    prepares them (the family's preprocessing), on the predictor's device."""
    frames = np.random.default_rng(0).integers(0, 256, (views, height, width, 3), dtype=np.uint8)
    x = predictor.preprocess(predictor.upload(frames))
    return x.to(predictor.device).float().contiguous()[None]


# --------------------------------------------------------------------------- run


def run_window(args: argparse.Namespace) -> dict[str, object]:
    """Times ours and the reference in turns; returns the figures."""

    check_window_args(args)
    width, height = camera_size(args)
    options = options_from_flags(args, args.model_type, random_weights=True)
    options = options.with_(backend="torch", precision="fp32")
    predictor = Predictor(options.validated(), progress=False)
    spec = predictor.spec
    device = predictor.device
    network = predictor.runtime.model
    assert network is not None  # backend torch
    x = _network_input(predictor, args.window, width, height)
    results: dict[str, object] = {
        "model_type": args.model_type,
        "device": str(device),
        "precision": "float32",
        "window": args.window,
        "image": f"{width}x{height}",
        "network_input": f"{x.shape[-1]}x{x.shape[-2]}",
        "iters": args.iters,
        "torch": torch.__version__,
        "machine": machine(device),
        "timed": TIMED,
    }
    ours = spec.family.window_forward(spec, network)
    forwards: dict[str, Callable[[], object]] = {}
    results["reference"], reference = spec.family.window_reference(spec)
    if reference is not None:
        reference = reference.to(device)
        forwards["reference_float32"] = _no_grad(reference, x)
    forwards["ours_float32"] = _no_grad(ours, x)
    for fn in forwards.values():
        time_calls(fn, device, 0, args.warmup)
    times: dict[str, list[float]] = {key: [] for key in forwards}
    for _ in range(args.iters):  # in turns, one forward each
        for key, fn in forwards.items():
            times[key] += time_calls(fn, device, 1, 0)
    medians = {key: statistics.median(values) for key, values in times.items()}
    for key, value in medians.items():
        results[f"{key}_ms_median"] = value
    results["ours_float32_ms_per_view"] = medians["ours_float32"] / args.window
    if "reference_float32" in medians:
        results["speedup_vs_reference_float32"] = (
            medians["reference_float32"] / medians["ours_float32"]
        )
    if device.type == "cuda":
        results["ours_forward_peak_mb"] = _cuda_forward_peak_mb(forwards["ours_float32"], device)
        if reference is not None:
            results["reference_forward_peak_mb"] = _cuda_forward_peak_mb(
                forwards["reference_float32"], device
            )
    else:
        del predictor, network, ours, reference, forwards  # the children need the memory
        gc.collect()  # the predictor's reference cycles too
        results.update(
            _cpu_memory(args.model_type, x, reference_imports="reference_float32" in medians)
        )
    return results


def _no_grad(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Callable[[], object]:
    def forward() -> object:
        with torch.inference_mode():
            return fn(x)

    return forward


def _cuda_forward_peak_mb(forward: Callable[[], object], device: torch.device) -> float:
    """CUDA: the allocator's peak during one forward over what was held before it."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    forward()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


# --------------------------------------------------------------------------- CPU memory


def _cpu_memory(model_type: str, x: torch.Tensor, reference_imports: bool) -> dict[str, object]:
    """Each side's peak host memory in a child process (:func:`memory_child`)."""
    out: dict[str, object] = {}
    sides = ("ours", "reference") if reference_imports else ("ours",)
    with tempfile.TemporaryDirectory(prefix="dpt_ros_bench_") as tmp:
        path = Path(tmp) / "window.pt"
        torch.save(x.cpu(), path)
        for side in sides:
            figures = _run_child(side, model_type, path)
            for key, value in figures.items():
                out[f"{side}_{key}"] = value
    return out


def _run_child(side: str, model_type: str, path: Path) -> dict[str, object]:
    root = str(Path(__file__).resolve().parents[2])  # this dpt_ros, not another install
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    code = (
        "import sys; from dpt_ros.cli.bench_window import memory_child; memory_child(sys.argv[1:])"
    )
    argv = [side, model_type, str(path), str(torch.get_num_threads())]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"memory": f"not measured: the child process failed ({tail})"}
    return json.loads(lines[-1])


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_child(argv: list[str]) -> None:
    """In a child process: builds one side's network (``ours`` or ``reference``) with
    random weights, runs one view (warm-up), resets the peak resident size, runs the
    window saved at ``path``; prints one JSON line of MiB figures."""
    side, model_type, path, threads = argv
    torch.set_num_threads(int(threads))
    x = torch.load(path)
    spec = get_spec(model_type)
    family = spec.family
    if side == "ours":
        forward = family.window_forward(spec, family.build(spec).eval())
    else:
        _, reference = family.window_reference(spec)
        if reference is None:
            raise SystemExit(f"the {family.name} reference does not import")
        forward = reference
    with torch.inference_mode():
        forward(x[:, :1])  # allocator and thread pools
    figures: dict[str, float] = {}
    built = _status_kib("VmHWM")  # the peak of building the network and the warm-up
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM
        reset = True
    except OSError:
        reset = False
    before = _status_kib("VmRSS")
    with torch.inference_mode():
        forward(x)
    peak = _status_kib("VmHWM")
    if reset and built is not None and before is not None and peak is not None:
        figures["forward_extra_mb"] = (peak - before) / 1024
        figures["process_peak_rss_mb"] = max(built, peak) / 1024
    else:  # not Linux: the whole process's peak (a forked child's counts its parent's)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures["process_peak_rss_mb"] = maxrss / (1024 if sys.platform != "darwin" else 2**20)
    print(json.dumps(figures))
