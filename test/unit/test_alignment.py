"""Tests for dpt_ros.alignment on synthetic scenes of known geometry.

The scene (also used by ``scripts/alignment_report.py``): a camera ``CAMERA_HEIGHT`` m
above a ground plane, level or pitched down, looking at two boxes, a wall on the left
and a far wall. The true depth is ray-cast analytically from the intrinsics; the
relative map is ``(inverse_depth * (1 + noise) - SHIFT0) / SCALE0``, so the calibration
to recover is ``(SCALE0, SHIFT0)``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from alignment_scenes import (
    CAMERA_HEIGHT,
    HEIGHT,
    SCALE0,
    SHIFT0,
    WIDTH,
    make_reference,
    make_relative,
    make_scene,
    median_error,
    normal_angle_deg,
    oracle,
)

from dpt_ros.alignment.fit import Alignment, fit_ground_plane, fit_to_reference

# ------------------------------------------------------------------ the scene itself


def test_scene_is_what_it_claims() -> None:
    scene = make_scene(10.0)
    ground = scene.ground
    assert 0.2 < ground.mean() < 0.7 and scene.boxes.mean() > 0.03
    # Every ground pixel's depth satisfies 1/z = -(n . r)/h.
    v, u = np.nonzero(ground)
    intr = scene.intrinsics
    rays = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones(u.size)], 1)
    np.testing.assert_allclose(1.0 / scene.depth[v, u], -(rays @ scene.normal) / CAMERA_HEIGHT)


# ------------------------------------------------------------------ fit_to_reference


def test_reference_exact_recovery() -> None:
    scene = make_scene()
    fit = fit_to_reference(make_relative(scene), make_reference(scene))
    assert fit.scale == pytest.approx(SCALE0, rel=1e-5)
    assert fit.shift == pytest.approx(SHIFT0, rel=1e-4)
    assert fit.inliers == fit.samples and fit.inlier_fraction == 1.0
    assert fit.quality_problems() == []
    assert median_error(fit.depth(make_relative(scene)), scene.depth) < 1e-5


@pytest.mark.parametrize("noise", [0.0, 0.01, 0.05])
@pytest.mark.parametrize("outliers", [0.0, 0.3, 0.5])
def test_reference_noise_and_outliers(noise: float, outliers: float) -> None:
    scene = make_scene(5.0)
    rng = np.random.default_rng(7)
    rel = make_relative(scene, noise, rng=rng)
    density = 0.02 if outliers < 0.5 else 0.05
    fit = fit_to_reference(rel, make_reference(scene, density, outliers, rng=rng))
    assert fit.quality_problems() == []
    # The fit against the true calibration on the same noisy map: the alignment's own error.
    assert median_error(fit.depth(rel), oracle().depth(rel)) < 1e-5 + 0.15 * noise
    # Against the truth the error is the model noise plus that.
    floor = median_error(oracle().depth(rel), scene.depth)
    assert median_error(fit.depth(rel), scene.depth) < floor + 1e-5 + 0.15 * noise
    assert fit.inlier_fraction == pytest.approx(1.0 - outliers, abs=0.08)


def test_reference_plain_least_squares_would_fail() -> None:
    """The outliers used above do break a non-robust fit (so the test above means something)."""
    scene = make_scene()
    rel = make_relative(scene)
    ref = make_reference(scene, 0.03, 0.3)
    keep = np.isfinite(ref)
    a = np.stack([rel[keep], np.ones(int(keep.sum()))], 1)
    scale, shift = np.linalg.lstsq(a, 1.0 / ref[keep], rcond=None)[0]
    assert median_error(oracle(scale, shift).depth(rel), scene.depth) > 0.05


def test_reference_is_deterministic_and_uses_rng() -> None:
    scene = make_scene()
    rel = make_relative(scene, 0.05)
    ref = make_reference(scene, 0.03, 0.4)
    assert fit_to_reference(rel, ref) == fit_to_reference(rel, ref)
    assert fit_to_reference(rel, ref, rng=3) == fit_to_reference(
        rel, ref, rng=np.random.default_rng(3)
    )


def test_reference_valid_mask_and_zero_means_unknown() -> None:
    scene = make_scene()
    rel = make_relative(scene)
    ref = make_reference(scene, 0.05)
    ref[np.isnan(ref)] = 0.0  # 0 = unknown too
    poisoned = ref.copy()
    poisoned[:, : WIDTH // 2] = np.where(ref[:, : WIDTH // 2] > 0, 0.5, 0.0)  # all wrong, 0.5 m
    valid = np.zeros(ref.shape, bool)
    valid[:, WIDTH // 2 :] = True
    fit = fit_to_reference(rel, poisoned, valid)
    assert fit.samples == int((ref[:, WIDTH // 2 :] > 0).sum())
    assert fit.scale == pytest.approx(SCALE0, rel=1e-5) and fit.quality_problems() == []
    assert fit_to_reference(rel, poisoned, valid.astype(np.uint8) * 255) == fit


def test_reference_all_wrong_fails_quality() -> None:
    scene = make_scene()
    rel = make_relative(scene)
    rng = np.random.default_rng(5)
    ref = np.where(rng.random(rel.shape) < 0.03, rng.uniform(0.3, 15.0, rel.shape), np.nan)
    problems = fit_to_reference(rel, ref).quality_problems()
    assert any("inlier fraction" in p for p in problems), problems


@pytest.mark.parametrize(
    ("relative", "reference", "valid", "message"),
    [
        (np.ones((4, 5), np.float32), np.ones((4, 6)), None, "shape"),
        (np.ones((4, 5, 1), np.float32), np.ones((4, 5, 1)), None, "2-D"),
        (np.ones((4, 5), np.int32), np.ones((4, 5)), None, "floating"),
        (np.ones((4, 5), np.float32), np.ones((4, 5)), np.ones((5, 4), bool), "valid has shape"),
        (np.ones((4, 5), np.float32), np.ones((4, 5)), np.ones((4, 5)), "bool"),
        (np.ones((4, 5), np.float32), np.full((4, 5), np.nan), None, "only 0 pixels"),
        (np.ones((4, 5), np.float32), np.zeros((4, 5)), None, "only 0 pixels"),
        (np.ones((4, 5), np.float32), np.ones((4, 5)), None, "degenerate"),
    ],
)
def test_reference_bad_inputs(relative, reference, valid, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit_to_reference(relative, reference, valid)


def test_reference_too_few_samples_and_bad_options() -> None:
    scene = make_scene()
    rel = make_relative(scene)
    ref = np.full(rel.shape, np.nan)
    ref[50, :9] = scene.depth[50, :9]
    with pytest.raises(ValueError, match="only 9 pixels.*at least 10"):
        fit_to_reference(rel, ref)
    assert fit_to_reference(rel, ref, min_samples=9).quality_problems(min_inliers=5) == []
    bad_options: list[tuple[dict[str, Any], str]] = [
        ({"iterations": 0}, "iterations"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": float("inf")}, "threshold"),
        ({"min_samples": 2}, "min_samples"),
        ({"max_samples": 9}, "max_samples"),
    ]
    for options, message in bad_options:
        with pytest.raises(ValueError, match=message):
            fit_to_reference(rel, make_reference(scene), **options)


def test_max_samples_takes_a_random_subset() -> None:
    scene = make_scene()
    rel = make_relative(scene, 0.01)
    ref = make_reference(scene, 0.05, 0.3)
    fit = fit_to_reference(rel, ref, max_samples=300)
    assert fit.samples == 300 and fit.quality_problems() == []
    assert median_error(fit.depth(rel), oracle().depth(rel)) < 0.003
    ground = fit_ground_plane(
        rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground, scene.normal, max_samples=300
    )
    assert ground.samples == 300 and ground.quality_problems() == []


# ------------------------------------------------------------------ fit_ground_plane


@pytest.mark.parametrize("pitch", [0.0, 12.0])
def test_ground_exact_recovery(pitch: float) -> None:
    scene = make_scene(pitch)
    rel = make_relative(scene)
    fit = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground, scene.normal)
    assert (fit.scale, fit.shift) == (
        pytest.approx(SCALE0, rel=1e-5),
        pytest.approx(SHIFT0, rel=1e-4),
    )
    assert fit.normal == pytest.approx(tuple(scene.normal)) and fit.quality_problems() == []
    free = fit_ground_plane(
        make_relative(scene, shift=0.0), scene.intrinsics, CAMERA_HEIGHT, scene.ground
    )
    assert free.scale == pytest.approx(SCALE0, rel=1e-5) and free.shift == 0.0
    assert normal_angle_deg(free.normal, scene.normal) < 0.01 and free.quality_problems() == []


@pytest.mark.parametrize("pitch", [0.0, 12.0])
@pytest.mark.parametrize("noise", [0.01, 0.05])
def test_ground_noise_and_wrong_mask(pitch: float, noise: float) -> None:
    """Noisy relative map, and a mask that also covers the boxes (segmentation bleeding)."""
    scene = make_scene(pitch)
    mask = scene.ground | scene.boxes
    assert scene.boxes.sum() > 0.15 * mask.sum()
    for shift in (SHIFT0, 0.0):
        rel = make_relative(scene, noise, shift=shift, rng=np.random.default_rng(3))
        normal = scene.normal if shift else None
        fit = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, mask, normal)
        assert fit.quality_problems() == []
        truth = oracle(shift=shift).depth(rel)
        assert median_error(fit.depth(rel), truth) < 2e-4 + 0.15 * noise
        assert normal_angle_deg(fit.normal, scene.normal) < 0.05 + 2 * noise


def test_ground_free_normal_cannot_see_a_shift() -> None:
    """The documented open degree of freedom: with a shift the free fit is consistent
    (every ground pixel an inlier) yet its normal is tilted by atan(shift * h) and its
    depths wrong."""
    scene = make_scene()
    rel = make_relative(scene)  # SHIFT0 != 0
    fit = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground)
    assert fit.inlier_fraction == 1.0 and fit.relative_residual < 1e-6
    tilt = np.degrees(np.arctan(SHIFT0 * CAMERA_HEIGHT))
    assert normal_angle_deg(fit.normal, scene.normal) == pytest.approx(tilt, abs=0.01)
    assert median_error(fit.depth(rel), scene.depth) > 0.1


def test_ground_normal_is_normalised_and_horizon_pixels_dropped() -> None:
    scene = make_scene()
    rel = make_relative(scene)
    fit = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground, 3 * scene.normal)
    assert fit.normal == pytest.approx(tuple(scene.normal))
    # Mask rows above the horizon: they are not samples.
    above = np.arange(HEIGHT)[:, None] < scene.intrinsics.cy
    fit_sky = fit_ground_plane(
        rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground | above, scene.normal
    )
    assert fit_sky.samples == int(scene.ground.sum())
    assert fit_sky.scale == pytest.approx(SCALE0, rel=1e-5)


def test_ground_mask_of_everything_below_the_horizon() -> None:
    """40 % of the mask is walls and boxes, some of them (their feet) close to the ground."""
    scene = make_scene()
    rel = make_relative(scene)
    below = np.broadcast_to(np.arange(HEIGHT)[:, None] > scene.intrinsics.cy, rel.shape)
    assert 0.55 < scene.ground[below].mean() < 0.65
    fit = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, below, scene.normal)
    assert fit.scale == pytest.approx(SCALE0, rel=2e-4) and fit.quality_problems() == []
    free = fit_ground_plane(make_relative(scene, shift=0.0), scene.intrinsics, CAMERA_HEIGHT, below)
    assert free.scale == pytest.approx(SCALE0, rel=2e-4) and free.quality_problems() == []


def test_ground_bad_inputs() -> None:
    scene = make_scene()
    rel = make_relative(scene)
    intr, mask = scene.intrinsics, scene.ground
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((rel, intr, CAMERA_HEIGHT, mask[:, 1:]), "mask has shape"),
        ((rel[:, 1:], intr, CAMERA_HEIGHT, mask[:, 1:]), "rescale them"),
        ((rel, intr, 0.0, mask), "camera_height"),
        ((rel, intr, float("nan"), mask), "camera_height"),
        ((rel, intr, CAMERA_HEIGHT, mask, (0.0, 0.0, 0.0)), "non-zero 3-vector"),
        ((rel, intr, CAMERA_HEIGHT, mask, (0.0, -1.0)), "3-vector"),
        ((rel, intr, CAMERA_HEIGHT, np.zeros_like(mask)), "only 0 ground pixels"),
        ((-rel, intr, CAMERA_HEIGHT, mask), "only 0 ground pixels with a positive"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            fit_ground_plane(*args)


# ------------------------------------------------------------------ Alignment


def test_depth_nan_where_denominator_not_positive() -> None:
    fit = oracle(scale=0.5, shift=-1.0)
    got = fit.depth(np.array([[4.0, 2.0, 1.0, np.nan, np.inf]], np.float32))
    assert got.dtype == np.float32 and got.shape == (1, 5)
    np.testing.assert_array_equal(np.isnan(got), [[False, True, True, True, True]])
    assert got[0, 0] == pytest.approx(1.0)


def test_quality_problems_name_each_failure() -> None:
    good = Alignment(0.01, 0.0, 100, 0.9, 0.001, 0.01, 111)
    assert good.quality_problems() == []
    cases = [
        (Alignment(-0.01, 0.0, 100, 0.9, 0.001, 0.01, 111), "scale"),
        (Alignment(float("nan"), 0.0, 100, 0.9, 0.001, 0.01, 111), "not finite"),
        (Alignment(0.01, 0.0, 10, 0.9, 0.001, 0.01, 11), "only 10 inliers"),
        (Alignment(0.01, 0.0, 100, 0.2, 0.001, 0.01, 500), "inlier fraction 0.20"),
        (Alignment(0.01, 0.0, 100, 0.9, 0.001, 0.08, 111), "relative residual"),
    ]
    for fit, message in cases:
        problems = fit.quality_problems()
        assert len(problems) == 1 and message in problems[0], problems
    assert good.quality_problems(max_residual=0.0005)[0].startswith("inverse-depth residual")
    assert good.quality_problems(min_inliers=101, min_inlier_fraction=0.95) != []


def test_module_needs_neither_ros_nor_torch() -> None:
    code = (
        "import sys\n"
        "for name in ('rclpy', 'sensor_msgs', 'torch', 'cv2'):\n"
        "    sys.modules[name] = None\n"
        "import dpt_ros.alignment.fit\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ground_normal_of_either_sign_gives_the_same_fit() -> None:
    """A downward normal failed with 'only 0 ground pixels below the horizon'."""
    scene = make_scene(12.0)
    rel = make_relative(scene)
    up = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground, scene.normal)
    down = fit_ground_plane(rel, scene.intrinsics, CAMERA_HEIGHT, scene.ground, -scene.normal)
    assert (down.scale, down.shift) == pytest.approx((up.scale, up.shift))
    assert down.normal == pytest.approx(up.normal)


def test_online_alignment_starts_again_when_stamps_go_back() -> None:
    """A bag loop or a clock reset: the fit from before the jump is not held (its age
    would be negative, so it was held forever), and the camera starts from no fit."""
    from dpt_ros.alignment.online import AlignmentOptions, OnlineAligner

    rng = np.random.default_rng(0)
    relative = rng.uniform(50.0, 250.0, (HEIGHT, WIDTH))
    reference = 1.0 / (SCALE0 * relative + SHIFT0)
    aligner = OnlineAligner(AlignmentOptions(method="reference_depth", max_fit_age=2.0))
    s = 1_000_000_000
    aligner.add_reference("cam", 100 * s, reference)
    assert aligner.calibration("cam", 100 * s) is None
    assert aligner.update("cam", 100 * s, relative, None) is not None
    assert aligner.status("cam")["alignment.state"] == "ok"
    # 1 s later, no reference: the good fit is held.
    assert aligner.calibration("cam", 101 * s) is not None
    aligner.update("cam", 101 * s, relative, None)
    assert aligner.status("cam")["alignment.state"].startswith("holding the fit of 1.0 s ago")
    # 51 s back: no metres from the old fit, and the status says why.
    assert aligner.calibration("cam", 50 * s) is None
    state = aligner.status("cam")["alignment.state"]
    assert "image stamps went back by 51.0 s" in state, state
    assert aligner.status("cam")["alignment.restarts"] == "1"
    assert "alignment.scale" not in aligner.status("cam")
    aligner.update("cam", 50 * s, relative, None)  # no reference near 50 s: kept none
    state = aligner.status("cam")["alignment.state"]
    assert state.startswith("no metric output: no reference within"), state
    assert "(0 kept)" in state  # the references of the time before the jump are dropped
    assert aligner.calibration("cam", 51 * s) is None
    # A new reference in the new stretch of time fits again.
    aligner.add_reference("cam", 52 * s, reference)
    assert aligner.calibration("cam", 52 * s) is None
    aligner.update("cam", 52 * s, relative, None)
    scale, shift = aligner.calibration("cam", 53 * s)
    assert scale == pytest.approx(SCALE0, rel=1e-3) and shift == pytest.approx(SHIFT0, abs=1e-4)
    assert aligner.fit_age("cam", 53 * s) == pytest.approx(1.0)
    # Another camera is not touched by this camera's jump.
    other = OnlineAligner(AlignmentOptions(method="reference_depth"))
    other.add_reference("a", 10 * s, reference)
    other.update("a", 10 * s, relative, None)
    other.calibration("b", 20 * s)
    other.calibration("b", 5 * s)
    assert other.calibration("a", 11 * s) is not None
