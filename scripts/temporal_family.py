#!/usr/bin/env python3
"""Prints how much dpt_ros.alignment.temporal steadies depth over a family of sequences.

``scripts/temporal_stability.py`` measures one scene under one jitter law; this script
draws many (seeded) sequences and prints the distribution of the gain, so that the
stabiliser is not judged on the scene it was tuned on.

The family
----------
Geometry: the closed room of ``temporal_stability.py`` (ray-cast, every pixel has a
depth), seen from a random place and heading, its depths multiplied by a random scene
factor (0.3: a desk, 1: a room, 4: a hall), plus "unseen" scenes that are not the room
at all (the floor-like gradient with texture of ``test/unit/test_temporal.py``, with a new
random phase and depth range). Per sequence, drawn at random:

* camera: ``still``; ``crossing`` (still, a box crossing 2.5 m away, scaled with the
  scene); ``forward`` (travelling 1 to 4 m, scaled with the scene, over the sequence,
  down a lane free of boxes); ``turning`` (15 to 60 deg/s);
* frame rate: 2, 5, 10, 15 or 30 Hz; 40 frames;
* per-frame jitter law: ``uniform``, ``gaussian`` (same standard deviation), ``laplace``
  (heavy tails, same standard deviation) or ``two-level`` (+- the size, at random);
  size of the scale jitter 2, 5, 10 or 20 %, of the shift jitter 0, 5 or 10 % of the
  first frame's median true inverse depth;
* form of the "network output": ``affine`` (``a * y * (1 + n) + b`` of the true inverse
  depth ``y``, a relative model) or, in mode ``scale``, either ``scale``
  (``a * z * (1 + n)`` of the true depth ``z``, a metric model) or ``affine-depth``
  (``1 / (a * y + b) * (1 + n)``: a metric model whose error is a shift of inverse
  depth, which a scale cannot model);
* pixel noise ``n``: Gaussian, 0, 1, 2 or 5 %.

Plus the issue's "unseen" sequences: a still camera, 40 frames at 10 Hz, scale +-10 %
and shift +-0.02 (absolute, in 1/m) uniform, 2 % noise, on unseen scenes (in mode
``scale`` the output is ``affine-depth``).

The measure
-----------
For each frame ``t`` the output ``o`` (raw or stabilised) is fitted to the truth by
least squares with the mode's model on relative residuals (the residual over the true
value, ~ relative depth error; plain least squares would weigh the farthest pixels
(depth) or the nearest (inverse depth) most): ``o ~ k_t * y + c_t`` minimising
``sum(((o - k_t * y - c_t) / y) ** 2)`` in mode affine, ``o ~ k_t * z`` minimising
``sum(((o - k_t * z) / z) ** 2)`` in mode scale; on the moving box's pixels left out.
The fitted map is evaluated at the 9 deciles ``y_tq`` of the frame's own true inverse
depth: ``m_t(q) = k_t * y_tq + c_t`` (``k_t`` in mode scale). One map ``M(y) = K * y +
C`` is fitted to all of them together (in mode scale, where they are constants, their
mean), frames from the 5th on
(``t >= 4``), by least squares on ``m_t(q) / M(y_tq) - 1``. The **spread** is the RMS of
``m_t(q) / M(y_tq) - 1`` over those frames and deciles: how much the output's relation
to the truth moves from frame to frame, in % of depth (for a still camera, the
standard deviation over the frames of the fitted map). The **gain** is the raw
frames' spread over the stabilised frames' spread. The goal: gain >= 5 on a still
camera (``still`` and ``unseen``), >= 1 (never worse than raw) under motion
(``forward``, ``turning``); ``crossing`` is reported beside them.

    python scripts/temporal_family.py [--sequences 120] [--size 48x64] [--seed 0]
    python scripts/temporal_family.py --seed 1 --mode affine --case 111  # one, per frame
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from temporal_stability import Pose, render  # noqa: E402

from dpt_ros.alignment.temporal import TemporalStabilizer  # noqa: E402

FRAMES = 40
FIRST = 4  # the spread is measured from the 5th frame on
RATES = (2.0, 5.0, 10.0, 15.0, 30.0)
LAWS = ("uniform", "gaussian", "laplace", "two-level")
SCALE_SIZES = (0.02, 0.05, 0.10, 0.20)
SHIFT_SIZES = (0.0, 0.05, 0.10)
NOISES = (0.0, 0.01, 0.02, 0.05)
SCENE_FACTORS = (0.3, 1.0, 4.0)
CAMERAS = ("still", "still", "crossing", "forward", "turning")
GOALS = {"still": 5.0, "unseen": 5.0, "forward": 1.0, "turning": 1.0, "crossing": None}


@dataclass(frozen=True)
class Spec:
    """One sequence of the family."""

    index: int
    camera: str  # still, crossing, forward, turning, unseen
    scene: str  # room or unseen
    factor: float  # scene depths x this
    rate: float  # Hz
    law: str
    scale_size: float
    shift_size: float  # of the first frame's median true inverse depth (unseen: 1/m)
    noise: float
    form: str  # affine, scale, affine-depth
    speed: float  # scene-units/s (forward) or deg/s (turning)
    pose: Pose
    seed: int

    def describe(self) -> str:
        motion = ""
        if self.camera == "forward":
            motion = f" {self.speed:.2f}m/s"
        elif self.camera == "turning":
            motion = f" {self.speed:.0f}deg/s"
        shift = (
            f"{self.shift_size:.2f}/m" if self.camera == "unseen" else f"{100 * self.shift_size:g}%"
        )
        return (
            f"{self.camera}{motion} {self.scene}x{self.factor:g} {self.rate:g}Hz {self.law} "
            f"a{100 * self.scale_size:g}% b{shift} n{100 * self.noise:g}% {self.form}"
        )


def unseen_scene(height: int, width: int, seed: int) -> np.ndarray:
    """(H, W) depth in metres of a scene that is not the room: a floor-like gradient of
    inverse depth with texture, a random phase and range (about 1.5 to 12 m)."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height)[:, None]
    cols = np.linspace(0.0, 1.0, width)[None, :]
    near = rng.uniform(0.45, 0.65)
    inverse = (
        0.08 + near * rows + 0.1 * np.sin(rng.uniform(10, 30) * cols + rng.uniform(0, 6)) * rows
    )
    inverse = inverse + 0.02 * rng.random((height, width))
    return 1.0 / inverse


def draw(index: int, mode: str, rng: np.random.Generator) -> Spec:
    """A random member of the family for ``mode``."""
    camera = str(rng.choice(CAMERAS))
    form = "affine" if mode == "affine" else str(rng.choice(("scale", "scale", "affine-depth")))
    speed = 0.0
    rate = float(rng.choice(RATES))
    if camera == "forward":
        speed = float(rng.uniform(1.0, 4.0)) * rate / FRAMES  # 1 to 4 m in the sequence
    elif camera == "turning":
        speed = float(rng.uniform(15.0, 60.0))
    scene = "room" if camera != "still" or rng.random() < 0.7 else "unseen"
    pose = Pose(float(rng.uniform(-2.0, 2.0)), float(rng.uniform(-4.0, 0.0)), 0.0)
    if camera in ("still", "turning"):
        pose = Pose(pose.x, pose.z, float(rng.uniform(-180.0, 180.0)))
    elif camera == "forward":  # the lane between the boxes, heading +z
        pose = Pose(float(rng.uniform(-0.4, 0.8)), pose.z, 0.0)
    return Spec(
        index=index,
        camera=camera,
        scene=scene,
        factor=float(rng.choice(SCENE_FACTORS)),
        rate=rate,
        law=str(rng.choice(LAWS)),
        scale_size=float(rng.choice(SCALE_SIZES)),
        shift_size=0.0 if form == "scale" else float(rng.choice(SHIFT_SIZES)),
        noise=float(rng.choice(NOISES)),
        form=form,
        speed=speed,
        pose=pose,
        seed=int(rng.integers(2**31)),
    )


def unseen(index: int, mode: str, seed: int) -> Spec:
    """The issue's sequence: still, 10 Hz, +-10 % scale, +-0.02/m shift, 2 % noise."""
    return Spec(
        index=index,
        camera="unseen",
        scene="unseen",
        factor=1.0,
        rate=10.0,
        law="uniform",
        scale_size=0.10,
        shift_size=0.02,
        noise=0.02,
        form="affine" if mode == "affine" else "affine-depth",
        speed=0.0,
        pose=Pose(0.0, 0.0, 0.0),
        seed=seed,
    )


def truth(spec: Spec, height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(true depth, moving-box mask) per frame."""
    if spec.scene == "unseen":
        depth = spec.factor * unseen_scene(height, width, spec.seed)
        return [(depth, np.zeros(depth.shape, bool))] * FRAMES
    out = []
    for i in range(FRAMES):
        t = i / spec.rate
        pose, mover = spec.pose, None
        if spec.camera == "forward":
            pose = Pose(pose.x, pose.z + spec.speed * t, pose.yaw_deg)
        elif spec.camera == "turning":
            pose = Pose(pose.x, pose.z, pose.yaw_deg + spec.speed * t)
        elif spec.camera == "crossing":
            # crossing the view in about the sequence's duration
            duration = FRAMES / spec.rate
            mover = pose.x - 3.0 + 6.0 * t / duration
        if mover is not None:
            depth, mask = _render_crossing(pose, height, width, mover)
        else:
            depth, mask = render(pose, height, width)
        out.append((spec.factor * depth, mask))
    return out


def _render_crossing(
    pose: Pose, height: int, width: int, mover_x: float
) -> tuple[np.ndarray, np.ndarray]:
    """The room with the crossing box 2.5 m in front of a camera at ``pose``."""
    import temporal_stability as ts

    shifted = Pose(pose.x, pose.z, 0.0)
    saved = ts.MOVER_Z
    ts.MOVER_Z = shifted.z + 2.5  # the box's near face 2.5 m ahead
    try:
        return render(shifted, height, width, mover_x)
    finally:
        ts.MOVER_Z = saved


def _jitter(law: str, size: float, rng: np.random.Generator) -> float:
    """One draw of a zero-mean jitter of the law; ``size`` is the uniform law's bound
    (and the two-level law's value); the others have the uniform law's std."""
    std = size / math.sqrt(3.0)
    if law == "uniform":
        return float(rng.uniform(-size, size))
    if law == "gaussian":
        return float(rng.normal(0.0, std))
    if law == "laplace":
        return float(rng.laplace(0.0, std / math.sqrt(2.0)))
    return float(size * rng.choice((-1.0, 1.0)))


def outputs(spec: Spec, frames: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The per-frame "network output" of ``spec``."""
    rng = np.random.default_rng(spec.seed + 1)
    y0 = float(np.median(1.0 / frames[0][0]))
    shift_unit = 1.0 if spec.camera == "unseen" else y0
    out = []
    for depth, _ in frames:
        a = 1.0 + _jitter(spec.law, spec.scale_size, rng)
        b = _jitter(spec.law, spec.shift_size, rng) * shift_unit
        noise = 1.0 + spec.noise * rng.standard_normal(depth.shape)
        if spec.form == "affine":
            raw = a * noise / depth + b
        elif spec.form == "scale":
            raw = a * noise * depth
        else:
            raw = noise / (a / depth + b)
        out.append(raw.astype(np.float32))
    return out


def fitted_map(
    out: np.ndarray, depth: np.ndarray, keep: np.ndarray, mode: str
) -> tuple[float, float]:
    """``(k, c)`` of the relative least-squares fit of ``out`` to the truth (c = 0 in
    mode scale)."""
    o = out[keep].astype(np.float64)
    ok = np.isfinite(o)
    o = o[ok]
    if mode == "affine":
        y = 1.0 / depth[keep][ok]
        # minimise sum(((o - k y - c) / y) ** 2): rows divided by y
        design = np.stack([np.ones_like(y), 1.0 / y], axis=1)  # k + c / y
        k, c = np.linalg.lstsq(design, o / y, rcond=None)[0]
        return float(k), float(c)
    z = depth[keep][ok]
    return float(np.mean(o / z)), 0.0


def spread(maps: list[tuple[float, float]], deciles: list[np.ndarray]) -> float:
    """RMS over the frames from FIRST on and over their deciles of the relative
    difference between each frame's fitted map and the one map fitted to all those
    frames together; %."""
    y = np.concatenate(deciles[FIRST:])
    m = np.concatenate([k * q + c for (k, c), q in zip(maps[FIRST:], deciles[FIRST:])])
    # the pooled map M(y) = K * y + C, relative least squares on the frames' values
    design = np.stack([y, np.ones_like(y)], axis=1) / m[:, None]
    (k, c), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    pooled = k * y + c
    return 100.0 * float(np.sqrt(np.mean((m / pooled - 1.0) ** 2)))


@dataclass
class Result:
    spec: Spec
    mode: str
    raw: float
    stab: float
    resets: int

    @property
    def gain(self) -> float:
        return self.raw / self.stab if self.stab > 0 else math.inf


def evaluate(spec: Spec, mode: str, height: int, width: int) -> Result:
    frames = truth(spec, height, width)
    raws = outputs(spec, frames)
    stab = TemporalStabilizer(mode)  # type: ignore[arg-type]
    raw_maps, stab_maps = [], []
    for i, (raw, (depth, mover)) in enumerate(zip(raws, frames)):
        result = stab.update(raw, stamp=i / spec.rate)
        keep = ~mover
        raw_maps.append(fitted_map(raw, depth, keep, mode))
        stab_maps.append(fitted_map(result.output, depth, keep, mode))
    deciles = [
        np.percentile(1.0 / depth[~mover], np.arange(10, 100, 10)) for depth, mover in frames
    ]
    return Result(spec, mode, spread(raw_maps, deciles), spread(stab_maps, deciles), stab.resets)


def trace(spec: Spec, mode: str, height: int, width: int) -> None:
    """Prints one sequence frame by frame: each frame's fitted map to the truth against
    the pooled one (raw and stabilised, signed RMS %), and the stabiliser's state (how
    surely it moved, its gain, the fit's inlier share, the jitter and the walk it
    measured, relative %, and why it restarted): why a sequence misses its goal."""
    frames = truth(spec, height, width)
    raws = outputs(spec, frames)
    stab = TemporalStabilizer(mode)  # type: ignore[arg-type]
    raw_maps, stab_maps, rows = [], [], []
    for i, (raw, (depth, mover)) in enumerate(zip(raws, frames)):
        r = stab.update(raw, stamp=i / spec.rate)
        raw_maps.append(fitted_map(raw, depth, ~mover, mode))
        stab_maps.append(fitted_map(r.output, depth, ~mover, mode))
        state = (stab._jitter, max(stab._walk, 0.0))  # noqa: SLF001 (a diagnostic)
        rows.append((r, state))
    deciles = [
        np.percentile(1.0 / depth[~mover], np.arange(10, 100, 10)) for depth, mover in frames
    ]

    def deviations(maps: list[tuple[float, float]]) -> list[float]:
        y = np.concatenate(deciles[FIRST:])
        m = np.concatenate([k * q + c for (k, c), q in zip(maps[FIRST:], deciles[FIRST:])])
        design = np.stack([y, np.ones_like(y)], axis=1) / m[:, None]
        (pk, pc), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
        out = []
        for (k, c), q in zip(maps, deciles):
            d = (k * q + c) / (pk * q + pc) - 1.0
            out.append(100.0 * math.copysign(float(np.sqrt(np.mean(d * d))), float(d.mean())))
        return out

    print(f"{mode} {spec.describe()}: raw spread {spread(raw_maps, deciles):.2f} %, "
          f"stabilised {spread(stab_maps, deciles):.3f} %")  # fmt: skip
    print("| frame | raw % | stabilised % | moving | gain | inliers | jitter % | walk % | reset |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, ((r, (jitter, walk)), a, b) in enumerate(
        zip(rows, deviations(raw_maps), deviations(stab_maps))
    ):
        print(
            f"| {i} | {a:+.2f} | {b:+.2f} | {r.moving:.2f} | {r.gain:.2f} | "
            f"{r.inlier_fraction:.2f} | {100 * math.sqrt(jitter):.2f} | "
            f"{100 * math.sqrt(walk):.2f} | {r.reason} |"
        )


def summary(gains: list[float]) -> str:
    g = np.asarray(gains)
    return (
        f"n {g.size:3d}  min {g.min():6.1f}x  p5 {np.percentile(g, 5):6.1f}x  "
        f"p10 {np.percentile(g, 10):6.1f}x  median {np.median(g):6.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sequences", type=int, default=120, help="drawn per mode")
    parser.add_argument("--unseen", type=int, default=10, help="issue sequences per mode")
    parser.add_argument("--size", default="48x64", help="H x W of the frames (default 48x64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no per-sequence lines")
    parser.add_argument("--case", type=int, help="print sequence # (the table's) frame by frame")
    parser.add_argument("--mode", choices=("affine", "scale"), default="affine", help="of --case")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    if args.case is not None:
        rng = np.random.default_rng([args.seed, 0 if args.mode == "affine" else 1])
        specs = [unseen(i, args.mode, 1000 + args.seed * 100 + i) for i in range(args.unseen)]
        specs += [draw(args.unseen + i, args.mode, rng) for i in range(args.sequences)]
        trace(specs[args.case], args.mode, height, width)
        return
    print(
        f"{args.sequences} drawn + {args.unseen} unseen sequences per mode, {FRAMES} frames, "
        f"{height}x{width} (HxW), seed {args.seed}; spread from frame {FIRST + 1} on, %"
    )
    failures = 0
    for mode in ("affine", "scale"):
        rng = np.random.default_rng([args.seed, 0 if mode == "affine" else 1])
        specs = [unseen(i, mode, 1000 + args.seed * 100 + i) for i in range(args.unseen)]
        specs += [draw(args.unseen + i, mode, rng) for i in range(args.sequences)]
        results = [evaluate(s, mode, height, width) for s in specs]
        if not args.quiet:
            print("\n| # | mode | sequence | raw % | stabilised % | gain | goal | resets |")
            print("|---|---|---|---|---|---|---|---|")
        for r in results:
            goal = GOALS[r.spec.camera]
            ok = goal is None or r.gain >= goal
            failures += not ok
            if not args.quiet:
                mark = "" if goal is None else (f">= {goal:g}x " + ("pass" if ok else "FAIL"))
                print(
                    f"| {r.spec.index} | {mode} | {r.spec.describe()} | {r.raw:.2f} | "
                    f"{r.stab:.3f} | {r.gain:.1f}x | {mark} | {r.resets} |"
                )
        print(f"\nmode {mode}:")
        for camera in ("unseen", "still", "crossing", "forward", "turning"):
            gains = [r.gain for r in results if r.spec.camera == camera]
            if gains:
                goal = GOALS[camera]
                print(
                    f"  {camera:9s} {summary(gains)}  goal "
                    + ("-" if goal is None else f">= {goal:g}x")
                )
        still = [r.gain for r in results if r.spec.camera in ("still", "unseen")]
        moving = [r.gain for r in results if r.spec.camera in ("forward", "turning")]
        print(f"  still+unseen {summary(still)}  below 5x: {sum(g < 5.0 for g in still)}")
        print(
            f"  moving       {summary(moving)}  worse than raw: {sum(g < 1.0 for g in moving)}"
            f" (by more than 5 %: {sum(g < 1.0 / 1.05 for g in moving)})"
        )
    print(f"\n{failures} sequences miss their goal")


if __name__ == "__main__":
    main()
