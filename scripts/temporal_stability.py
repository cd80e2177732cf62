#!/usr/bin/env python3
"""Prints how much dpt_ros.alignment.temporal steadies per-frame depth, and what it costs.

Synthetic sequences with known depth, ray-cast here: a camera 1.2 m above the floor of a
closed room (10 x 3 x 16 m, pitched 10 degrees down) with boxes and spheres in it, at
10 Hz. The room is closed so that every pixel has a depth and so that turning changes
the depth under each pixel (walls), not only the objects'.

* ``static``: a still camera; ``forward``: moving forward at 0.5 m/s; ``turning``:
  turning at 30 deg/s; ``crossing``: a still camera and a 1.2 x 2 m box crossing the
  view at 1 m/s, 2.5 m away; ``cut``: a still camera that jumps to another place and
  heading at frame 30.
* "Network output" per frame: the truth under a random per-frame map with 2 % Gaussian
  pixel noise: ``a * y * (1 + n) + b`` of the true inverse depth ``y`` (mode
  ``affine``, a relative model) or ``a * z * (1 + n)`` of the true depth ``z`` (mode
  ``scale``, a metric model), with ``a`` uniform in 1 +- 10 % and ``b`` uniform in
  +- 10 % of the sequence's median inverse depth.
* Flicker: each frame's output is fitted to the truth by least squares (``k * y + c``
  for affine, ``k * z`` for scale; for ``crossing`` on the background only, the pixels
  the moving box does not cover); flicker is the RMS over the frames of the relative
  change of ``k`` from one frame to the next, in %. "ratio" is raw / stabilised.
  "level" is the mean ``k`` of the stabilised (and of the naive) output over the raw
  frames' mean ``k``, minus 1, in %: a bias would show there (e.g. a lag while the
  camera moves).
* "naive": an exponential filter (weight 0.1) of chained frame-to-frame least-squares
  fits on all pixels, each frame locked to the previous output and pulled 10 % towards
  itself; what the issue warns about.
* Cost: median and 90th percentile of ``update`` per frame at 518 x 686 (H x W) over
  frames of the static sequence, on whatever else this machine is doing at the time.

    python scripts/temporal_stability.py [--size 518x686] [--frames 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dpt_ros.alignment.temporal import TemporalStabilizer

FPS = 10.0
PIXEL_NOISE = 0.02
SCALE_JITTER = 0.10
SHIFT_JITTER = 0.10  # of the sequence's median inverse depth
PITCH_DEG = 10.0
CAMERA_Y = 1.2
ROOM = ((-5.0, 0.0, -6.0), (5.0, 3.0, 10.0))  # axis-aligned, world X right, Y up, Z forward
BOXES = (
    ((-1.6, 0.0, 4.6), (-0.6, 1.0, 5.6)),
    ((1.0, 0.0, 7.0), (2.2, 1.6, 8.2)),
    ((-4.0, 0.0, 1.0), (-3.0, 2.6, 2.2)),
    ((3.0, 0.0, -4.0), (4.5, 1.2, -2.5)),
    ((-2.5, 0.0, -5.0), (-0.5, 2.0, -4.0)),
    ((3.5, 0.0, 2.0), (4.6, 0.8, 3.4)),
)
SPHERES = (((0.35, 0.5, 3.0), 0.5), ((-0.9, 0.35, 7.2), 0.35), ((2.6, 0.8, 5.4), 0.8))
MOVER_SIZE = (1.2, 2.0, 0.4)  # the crossing box, metres
MOVER_Z = 0.5  # 2.5 m in front of the still camera
CUT_AT = 30


@dataclass(frozen=True)
class Pose:
    """Camera position (world, metres) and heading (degrees, + = to the right)."""

    x: float
    z: float
    yaw_deg: float


def _rays(pose: Pose, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera position (3,) and world ray directions (H, W, 3) whose optical z is 1."""
    f = 0.5 * width / math.tan(math.radians(62.0) / 2)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    cam = np.stack([(u - (width - 1) / 2) / f, (v - (height - 1) / 2) / f, np.ones_like(u)], -1)
    p, y = math.radians(PITCH_DEG), math.radians(pose.yaw_deg)
    flip = np.diag([1.0, -1.0, 1.0])  # optical (y down) -> world (Y up)
    tilt = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    turn = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    return np.array([pose.x, CAMERA_Y, pose.z]), cam @ (turn @ tilt @ flip).T


def _slabs(
    pos: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of the rays through an axis-aligned box."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - pos) / d, (hi - pos) / d
    near = np.nan_to_num(np.minimum(t1, t2), nan=-np.inf).max(-1)
    far = np.nan_to_num(np.maximum(t1, t2), nan=np.inf).min(-1)
    return near, far


def render(
    pose: Pose, height: int, width: int, mover_x: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Depth (H, W) float64 metres along the optical axis and the moving box's mask."""
    pos, d = _rays(pose, height, width)
    depth = _slabs(pos, d, np.array(ROOM[0]), np.array(ROOM[1]))[1]  # inside the room
    boxes = [(np.array(lo), np.array(hi)) for lo, hi in BOXES]
    mover = np.zeros(depth.shape, bool)
    if mover_x is not None:
        sx, sy, sz = MOVER_SIZE
        boxes.append(
            (
                np.array([mover_x - sx / 2, 0, MOVER_Z]),
                np.array([mover_x + sx / 2, sy, MOVER_Z + sz]),
            )
        )
    for i, (lo, hi) in enumerate(boxes):
        near, far = _slabs(pos, d, lo, hi)
        hit = (near <= far) & (near > 0) & (near < depth)
        depth[hit] = near[hit]
        mover[hit] = i == len(BOXES)
        if i < len(BOXES):
            mover[hit] = False
    for center, radius in SPHERES:
        oc = pos - np.asarray(center)
        a = np.einsum("hwc,hwc->hw", d, d)
        b = 2.0 * (d @ oc)
        disc = b * b - 4 * a * (oc @ oc - radius**2)
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
        hit = (disc >= 0) & (t > 0) & (t < depth)
        depth[hit], mover[hit] = t[hit], False
    return depth, mover


def sequence(
    name: str, frames: int, height: int, width: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(depth, moving-object mask) per frame of one of the named sequences."""
    out = []
    for i in range(frames):
        t, mover = i / FPS, None
        if name == "static":
            pose = Pose(0.0, -2.0, 0.0)
        elif name == "forward":
            pose = Pose(0.0, -2.0 + 0.5 * t, 0.0)
        elif name == "turning":
            pose = Pose(0.0, 0.0, 30.0 * t)
        elif name == "crossing":
            pose, mover = Pose(0.0, -2.0, 0.0), -3.0 + 1.0 * t
        elif name == "cut":
            pose = Pose(0.0, -2.0, 0.0) if i < CUT_AT else Pose(2.0, 6.0, 160.0)
        else:
            raise ValueError(f"unknown sequence {name!r}")
        out.append(render(pose, height, width, mover))
    return out


def network_outputs(
    truth: list[tuple[np.ndarray, np.ndarray]], mode: str, rng: np.random.Generator
) -> list[np.ndarray]:
    """The per-frame "network output": truth under a random map, with pixel noise."""
    y0 = float(np.median(1.0 / truth[0][0]))
    frames = []
    for depth, _ in truth:
        noise = 1.0 + PIXEL_NOISE * rng.standard_normal(depth.shape)
        a = 1.0 + rng.uniform(-SCALE_JITTER, SCALE_JITTER)
        if mode == "affine":
            raw = a * noise / depth + SHIFT_JITTER * y0 * rng.uniform(-1.0, 1.0)
        else:
            raw = a * noise * depth
        frames.append(raw.astype(np.float32))
    return frames


def fitted_scale(out: np.ndarray, depth: np.ndarray, keep: np.ndarray, mode: str) -> float:
    """``k`` of the least-squares fit of ``out`` to the truth over ``keep``."""
    o = out[keep].astype(np.float64)
    if mode == "affine":
        y = 1.0 / depth[keep]
        return float(np.polyfit(y, o, 1)[0])
    z = depth[keep]
    return float(o @ z / (z @ z))


def flicker(ks: list[float]) -> float:
    """RMS of the frame-to-frame relative change of ``ks``, %."""
    k = np.asarray(ks)
    return 100.0 * float(np.sqrt(np.mean((k[1:] / k[:-1] - 1.0) ** 2)))


def naive(mode: str) -> Callable[[np.ndarray], np.ndarray]:
    """The naive filter: chained least-squares fits to the previous output, EMA 0.1."""
    state: dict[str, np.ndarray] = {}

    def step(x: np.ndarray) -> np.ndarray:
        prev = state.get("prev")
        if prev is None:
            state["prev"] = x.astype(np.float64)
            return x
        xf, pf = x.ravel().astype(np.float64), prev.ravel()
        if mode == "affine":
            a, b = np.polyfit(xf, pf, 1)
        else:
            a, b = float(xf @ pf / (xf @ xf)), 0.0
        a, b = 0.9 * a + 0.1, 0.9 * b
        out = a * x.astype(np.float64) + b
        state["prev"] = out
        return out.astype(np.float32)

    return step


@dataclass
class Row:
    name: str
    mode: str
    raw: float
    stab: float
    naive: float
    level: float
    naive_level: float
    resets: list[int]
    goal: str
    ok: bool


def evaluate(name: str, mode: str, truth: list[tuple[np.ndarray, np.ndarray]], seed: int) -> Row:
    """Flicker of the raw, stabilised and naive outputs of one sequence."""
    frames = network_outputs(truth, mode, np.random.default_rng(seed))
    stab = TemporalStabilizer(mode)  # type: ignore[arg-type]
    step = naive(mode)
    k_raw, k_stab, k_naive, resets = [], [], [], []
    for i, (raw, (depth, mover)) in enumerate(zip(frames, truth)):
        result = stab.update(raw, stamp=i / FPS)
        if result.reset and i > 0:
            resets.append(i)
        keep = ~mover
        k_raw.append(fitted_scale(raw, depth, keep, mode))
        k_stab.append(fitted_scale(result.output, depth, keep, mode))
        k_naive.append(fitted_scale(step(raw), depth, keep, mode))
    start = 0
    if name == "cut":  # measured from the reset that follows the cut on
        after = [i for i in resets if i >= CUT_AT]
        start = after[0] if after else len(frames) - 2
    raw_f, stab_f = flicker(k_raw[start:]), flicker(k_stab[start:])
    naive_f = flicker(k_naive[start:])
    mean_raw = float(np.mean(k_raw[start:]))
    level = 100.0 * (float(np.mean(k_stab[start:])) / mean_raw - 1.0)
    naive_level = 100.0 * (float(np.mean(k_naive[start:])) / mean_raw - 1.0)
    ratio = raw_f / stab_f
    if name in ("static", "cut"):
        goal, ok = ">= 5x", ratio >= 5.0
        if name == "cut":
            in_time = any(CUT_AT <= i <= CUT_AT + 2 for i in resets)
            goal, ok = ">= 5x, reset <= 3 fr.", ok and in_time
    elif name == "crossing":
        goal, ok = ">= 3x", ratio >= 3.0
    else:
        goal, ok = "<= 1.1 raw", stab_f <= 1.1 * raw_f
    return Row(name, mode, raw_f, stab_f, naive_f, level, naive_level, resets, goal, ok)


def cost(height: int, width: int, repeats: int, seed: int) -> dict[str, tuple[float, float]]:
    """Median and 90th percentile of ``update`` per frame (ms) in each mode."""
    truth = sequence("static", 10, height, width)
    figures = {}
    for mode in ("affine", "scale"):
        frames = network_outputs(truth, mode, np.random.default_rng(seed))
        stab = TemporalStabilizer(mode)  # type: ignore[arg-type]
        times = []
        for i in range(repeats):
            frame = frames[i % len(frames)]
            start = time.perf_counter()
            stab.update(frame, stamp=i / FPS)
            times.append(1e3 * (time.perf_counter() - start))
        t = np.asarray(times[len(frames) :])  # after the first pass (warm caches)
        figures[mode] = (float(np.median(t)), float(np.percentile(t, 90)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", default="518x686", help="H x W of the frames (default 518x686)")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=300, help="frames timed per mode")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    rows = []
    for name in ("static", "forward", "turning", "crossing", "cut"):
        frames = args.frames + (10 if name == "cut" else 0)
        truth = sequence(name, frames, height, width)
        for mode in ("affine", "scale"):
            rows.append(evaluate(name, mode, truth, args.seed))
    print(
        f"{height}x{width} (HxW), {args.frames} frames at {FPS:g} Hz, seed {args.seed}; flicker in %"
    )
    print()
    print(
        "| sequence | mode | raw | stabilised | ratio | goal | pass | resets at | level | "
        "naive | naive level |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        resets = ",".join(str(i) for i in r.resets) or "-"
        print(
            f"| {r.name} | {r.mode} | {r.raw:.2f} | {r.stab:.2f} | {r.raw / r.stab:.1f}x | "
            f"{r.goal} | {'pass' if r.ok else 'FAIL'} | {resets} | {r.level:+.1f} | "
            f"{r.naive:.2f} | {r.naive_level:+.1f} |"
        )
    print()
    for mode, (median, p90) in cost(518, 686, args.repeats, args.seed).items():
        verdict = "pass" if median <= 1.0 else "FAIL"
        print(
            f"cost {mode}: median {median:.3f} ms, p90 {p90:.3f} ms per frame at 518x686 (goal <= 1 ms: {verdict})"
        )


if __name__ == "__main__":
    main()
