"""Whether building an engine pays off over a job of known length (``dpt-ros predict``).

A one-shot command knows how many frames it runs. An engine build costs its wall time
once and saves, on each frame, part of PyTorch's time; it pays off only when

    build seconds < frames x PyTorch seconds a frame x the share an engine saves.

PyTorch's time a frame is measured on the job's own input (the first image). The build
time and the share saved come from the engine cache's records (``key.json`` of earlier
builds, :func:`~dpt_ros.runtime.engine_cache.engine_records`) where there are any for
the same model type and backend, else from the estimates below. Pure functions on
numbers and dicts: no torch, no files.

The build-time estimate. A build loads the model, exports it (``torch.export``, ONNX
optimisation, writing the file), runs PyTorch and the engine once for the export's check
and :data:`BUILD_FORWARDS` times for its timing. So a build takes a fixed part that
grows with the model's size plus :data:`BUILD_FORWARDS` runs of the network at the
job's shape. A record of the same model type and backend gives the fixed part
(its build time less its own runs); without one the fixed part is
:data:`BUILD_SECONDS_PER_MPARAM` a million parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Seconds of an onnxruntime engine build a million parameters, besides its runs of the
#: network. Measured: dpt_hybrid (123 M parameters) at 64x64, where its runs are
#: negligible, built in 40 to 60 s on a shared 2-core x86 CPU; TensorRT builds (kernel
#: autotuning) take several times longer (minutes on a Jetson Orin).
BUILD_SECONDS_PER_MPARAM = {"onnxruntime": 0.4, "tensorrt": 2.0}
#: Runs of the network in a build, each about PyTorch's time a frame: the export's
#: check (PyTorch and the engine once each) and the timing (each once untimed and twice
#: timed: :data:`dpt_ros.runtime.engine_build.TIMED_RUNS`), plus the load of the copy
#: that is timed.
BUILD_FORWARDS = 8
#: Share of PyTorch's time a frame an engine saves, where no build of this model type
#: and backend measured it. onnxruntime on a CPU: measured within +-6 % of PyTorch for
#: dpt_hybrid at 384x384, so little; TensorRT on a GPU: typically half.
ASSUMED_SAVED_SHARE = {"onnxruntime": 0.1, "tensorrt": 0.5}


@dataclass(frozen=True)
class BuildChoice:
    """The decision and its figures.

    Attributes:
        build: build the engine now.
        build_s: the build's expected wall time (seconds).
        saved_s: the time the engine is expected to save over the job (seconds).
        frames: frames of the job.
        torch_s: PyTorch's time a frame (seconds).
        saved_share: share of ``torch_s`` an engine saves a frame.
        measured: whether ``build_s`` and ``saved_share`` come from earlier builds.
    """

    build: bool
    build_s: float
    saved_s: float
    frames: int
    torch_s: float
    saved_share: float
    measured: bool

    def reason(self, backend: str, unit: str = "frame") -> str:
        """Why, in the words of the one line a command prints; ``unit``: what the job
        runs one at a time (a frame, a window)."""
        source = "" if self.measured else " (estimated)"
        per = f"{self.frames} more {unit}{'s' if self.frames != 1 else ''} x {self.torch_s:.2f} s"
        saved = f"{self.saved_share:.0%} of {per}"
        if self.build:
            return (
                f"building the {backend} engine takes ~{self.build_s:.0f} s{source}, less than "
                f"the ~{self.saved_s:.0f} s it saves ({saved})"
            )
        return (
            f"building the {backend} engine would take ~{self.build_s:.0f} s{source}, more than "
            f"the ~{self.saved_s:.0f} s it would save ({saved})"
        )


def _pixels(record: Mapping[str, Any]) -> int:
    """B x H x W of a (B, 3, H, W) engine, N x H x W of a (1, N, 3, H, W) window engine."""
    shape = record["input_shape"]
    if len(shape) == 5:
        return int(shape[1]) * int(shape[3]) * int(shape[4])
    b, _, h, w = shape
    return int(b) * int(h) * int(w)


def _usable(
    records: Iterable[Mapping[str, Any]], model_type: str, backend: str, window: bool = False
) -> list:
    usable = []
    for r in records:
        try:
            if r["model_type"] != model_type or r["backend"] != backend:
                continue
            if ("window" in r) != window:  # windows and single images apart
                continue
            float(r["build_s"]), float(r["torch_ms"]), float(r[f"{backend}_ms"]), _pixels(r)
        except (KeyError, TypeError, ValueError):
            continue
        usable.append(r)
    return usable


def estimate_build(
    model_type: str,
    backend: str,
    params_m: float,
    torch_s: float,
    pixels: int,
    records: Iterable[Mapping[str, Any]] = (),
    window: bool = False,
) -> tuple[float, float, bool]:
    """(build seconds, share of PyTorch's time a frame the engine saves, measured).

    Args:
        model_type, backend: the engine to build.
        params_m: the model's parameters, in millions.
        torch_s: PyTorch's time a frame at the job's shape (seconds).
        pixels: B x H x W of the job's network input (a window: N x H x W).
        records: key files of earlier builds (other shapes, weights or versions).
        window: the engine is a window engine: only records of window engines count
            (and ``torch_s`` is PyTorch's time a window).

    Returns:
        From the record of the same model type and backend nearest in pixels where
        there is one (``measured`` True), else from :data:`BUILD_SECONDS_PER_MPARAM`
        and :data:`ASSUMED_SAVED_SHARE`.
    """
    usable = _usable(records, model_type, backend, window)
    runs_s = BUILD_FORWARDS * torch_s
    if not usable:
        fixed = BUILD_SECONDS_PER_MPARAM.get(backend, max(BUILD_SECONDS_PER_MPARAM.values()))
        return fixed * params_m + runs_s, ASSUMED_SAVED_SHARE.get(backend, 0.1), False
    nearest = min(usable, key=lambda r: abs(_pixels(r) - pixels))
    torch_ms, engine_ms = float(nearest["torch_ms"]), float(nearest[f"{backend}_ms"])
    fixed = max(0.0, float(nearest["build_s"]) - BUILD_FORWARDS * torch_ms / 1e3)
    share = (torch_ms - engine_ms) / torch_ms if torch_ms > 0 else 0.0
    return fixed + runs_s, share, True


def choose_build(
    frames: int, torch_s: float, build_s: float, saved_share: float, measured: bool = False
) -> BuildChoice:
    """Build when the build's time is less than what the engine saves over ``frames``.

    Args:
        frames: frames the job still runs at this shape (the one PyTorch's time was
            measured on is done).
        torch_s: PyTorch's time a frame (seconds).
        build_s: the build's expected wall time (seconds).
        saved_share: share of ``torch_s`` the engine saves a frame (0 or less: the
            engine is not faster, and never pays off).
        measured: whether the figures come from earlier builds (for the reason).
    """
    frames = max(0, int(frames))
    saved_s = frames * torch_s * max(0.0, saved_share)
    return BuildChoice(
        build=saved_s > build_s,
        build_s=build_s,
        saved_s=saved_s,
        frames=frames,
        torch_s=torch_s,
        saved_share=saved_share,
        measured=measured,
    )
