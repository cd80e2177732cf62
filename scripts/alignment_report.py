#!/usr/bin/env python3
"""Prints how well dpt_ros.alignment recovers metric depth on synthetic scenes.

The scenes are those of ``test/unit/test_alignment.py``: a camera 1.2 m above a ground plane
(level, or pitched down) looking at two boxes, a side wall and a far wall, with depth
ray-cast analytically. The relative map is ``(inverse_depth * (1 + noise) - shift) /
scale`` with Gaussian ``noise`` per pixel. Every figure is the median relative depth
error over all pixels of the image, in per cent, averaged over ``--seeds`` scenes:

* ``floor``: the true calibration applied to the noisy map (the model's own error);
* ``fit``: the fitted calibration, against the true depth;
* ``align``: the fitted calibration against the true one on the same map (the error
  the alignment adds);
* ``LS``: plain least squares in inverse depth on all reference pixels (no RANSAC).

    python scripts/alignment_report.py [--seeds 5] [--density 0.02]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TEST_DIR = Path(__file__).resolve().parents[1] / "test" / "support"
sys.path.insert(0, str(TEST_DIR))

from alignment_scenes import (  # noqa: E402  (the tests' synthetic scenes)
    CAMERA_HEIGHT,
    SHIFT0,
    make_reference,
    make_relative,
    make_scene,
    median_error,
    normal_angle_deg,
    oracle,
)

from dpt_ros.alignment.fit import fit_ground_plane, fit_to_reference  # noqa: E402

NOISES = (0.0, 0.01, 0.05)
OUTLIERS = (0.0, 0.3, 0.5)
PITCH_DEG = 10.0


def _pct(values: list[float]) -> str:
    return f"{100.0 * float(np.mean(values)):.2f}"


def _least_squares(rel: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    keep = np.isfinite(ref)
    a = np.stack([rel[keep], np.ones(int(keep.sum()))], axis=1)
    scale, shift = np.linalg.lstsq(a, 1.0 / ref[keep], rcond=None)[0]
    return float(scale), float(shift)


def reference_row(noise: float, outliers: float, density: float, seeds: int) -> str:
    """One table row of :func:`fit_to_reference` on the 5 degree pitched scene."""
    scene = make_scene(5.0)
    cols: dict[str, list[float]] = {k: [] for k in ("floor", "fit", "align", "ls", "inl", "ms")}
    failed = 0
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        rel = make_relative(scene, noise, rng=rng)
        ref = make_reference(scene, density, outliers, rng=rng)
        start = time.perf_counter()
        fit = fit_to_reference(rel, ref, rng=seed)
        cols["ms"].append(1e3 * (time.perf_counter() - start))
        failed += bool(fit.quality_problems())
        truth = oracle().depth(rel)
        cols["floor"].append(median_error(truth, scene.depth))
        cols["fit"].append(median_error(fit.depth(rel), scene.depth))
        cols["align"].append(median_error(fit.depth(rel), truth))
        cols["ls"].append(median_error(oracle(*_least_squares(rel, ref)).depth(rel), scene.depth))
        cols["inl"].append(fit.inlier_fraction)
    return (
        f"| {100 * noise:4.0f} | {100 * outliers:4.0f} | {_pct(cols['floor']):>6} "
        f"| {_pct(cols['fit']):>6} | {_pct(cols['align']):>6} | {_pct(cols['ls']):>7} "
        f"| {_pct(cols['inl']):>6} | {failed:>6} | {np.mean(cols['ms']):5.1f} |"
    )


def ground_row(pitch: float, with_normal: bool, noise: float, seeds: int) -> str:
    """One table row of :func:`fit_ground_plane`, exact mask and mask bleeding onto objects."""
    scene = make_scene(pitch)
    shift = SHIFT0 if with_normal else 0.0
    masks = {"exact": scene.ground, "bleed": scene.ground | scene.boxes}
    floor: list[float] = []
    err: dict[str, list[float]] = {k: [] for k in masks}
    angle: dict[str, list[float]] = {k: [] for k in masks}
    failed = 0
    for seed in range(seeds):
        rel = make_relative(scene, noise, shift=shift, rng=np.random.default_rng(200 + seed))
        floor.append(median_error(oracle(shift=shift).depth(rel), scene.depth))
        normal = scene.normal if with_normal else None
        for name, mask in masks.items():
            fit = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, mask, normal, rng=seed)
            failed += bool(fit.quality_problems())
            err[name].append(median_error(fit.depth(rel), scene.depth))
            angle[name].append(normal_angle_deg(fit.normal, scene.normal))
    pose = "level" if pitch == 0.0 else f"pitch {pitch:.0f}°"
    angles = (
        "-" if with_normal else f"{np.mean(angle['exact']):.2f} / {np.mean(angle['bleed']):.2f}"
    )
    return (
        f"| {pose:<9} | {'given' if with_normal else 'fitted':<6} | {100 * noise:4.0f} "
        f"| {_pct(floor):>6} | {_pct(err['exact']):>6} | {_pct(err['bleed']):>6} "
        f"| {angles:>11} | {failed:>6} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="scenes averaged per row")
    parser.add_argument("--density", type=float, default=0.02, help="share of reference pixels")
    args = parser.parse_args(argv)

    print(
        f"fit_to_reference: 160x120, camera pitched 5°, {100 * args.density:.0f} % of the "
        f"pixels with a reference, median relative depth error (%), mean of {args.seeds} seeds\n"
    )
    print("| noise % | outliers % | floor | fit | align | LS | inliers % | failed | ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for noise in NOISES:
        for outliers in OUTLIERS:
            print(reference_row(noise, outliers, args.density, args.seeds))

    print(
        f"\nfit_ground_plane: camera {CAMERA_HEIGHT} m above the ground; median relative "
        "depth error (%) over the whole image; mask exact / bleeding onto the boxes; "
        "without the normal the model's shift is 0\n"
    )
    print("| camera | normal | noise % | floor | exact | bleed | normal err ° | failed |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for pitch in (0.0, PITCH_DEG):
        for with_normal in (True, False):
            for noise in NOISES:
                print(ground_row(pitch, with_normal, noise, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
