"""Sim(3) estimation and window chaining (dpt_ros.reconstruct.sim3, .chain) on synthetic
geometry with a known trajectory: every window in a world and unit of its own."""

from __future__ import annotations

import numpy as np
import pytest
from reconstruct_scenes import (
    as_seen_by,
    random_sim3,
    rotation,
    trajectory,
    true_window,
    window_frames,
)

from dpt_ros.reconstruct.chain import WindowChain, WindowResult, back_project, camera_centres
from dpt_ros.reconstruct.sim3 import (
    Sim3,
    fit_sim3,
    quaternion_to_rotation,
    rotation_to_quaternion,
    umeyama,
)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _chain(frames: int, size: int, overlap: int, seed: int, corrupt=None):
    """The chained poses of every frame (first window each) and window 0's Sim(3)."""
    rng = np.random.default_rng(seed)
    poses = trajectory(frames)
    chain = WindowChain(overlap)
    first_sim3 = None
    found: dict[int, np.ndarray] = {}
    depth: dict[int, np.ndarray] = {}
    for k, ids in enumerate(window_frames(frames, size, overlap)):
        sim3 = random_sim3(rng)
        first_sim3 = first_sim3 or sim3
        window = as_seen_by(true_window(ids, poses), sim3)
        if corrupt is not None and k > 0:
            window = corrupt(window, rng)
        aligned = chain.add(ids, window)
        for j, f in enumerate(ids):
            found.setdefault(f, aligned.window.camera_from_world[j])
            depth.setdefault(f, aligned.window.depth[j])
    got = np.stack([found[i] for i in range(frames)])
    return got, first_sim3, poses, depth


@pytest.mark.parametrize(
    ("frames", "size", "overlap", "seed"),
    [(10, 4, 2, 0), (10, 4, 1, 1), (10, 3, 2, 2), (10, 5, 3, 3), (10, 4, 2, 4)],
)
def test_the_chain_recovers_the_trajectory_to_1e_6(frames, size, overlap, seed):
    got, g0, poses, _ = _chain(frames, size, overlap, seed)
    # One global Sim(3) (window 0's) between the truth and the chain, nothing else.
    want = g0.transform_camera_from_world(poses)
    assert _relative(got[:, :, :3], want[:, :, :3]) < 1e-6
    assert _relative(got[:, :, 3], want[:, :, 3]) < 1e-6
    # The trajectory up to one scale: relative camera motions and centre distances.
    centres, true_centres = camera_centres(got), camera_centres(poses)
    d_got = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    d_true = np.linalg.norm(np.diff(true_centres, axis=0), axis=1)
    assert _relative(d_got / g0.scale, d_true) < 1e-6


def test_chained_depth_is_in_the_first_windows_unit():
    got, g0, poses, depth = _chain(10, 4, 2, seed=5)
    truth = true_window(range(10), poses)
    for f in range(10):
        np.testing.assert_allclose(depth[f], truth.depth[f] * g0.scale, rtol=1e-5)


def _outlier_depth(window: WindowResult, rng: np.random.Generator) -> WindowResult:
    """A fifth of every frame's pixels given a wrong depth (x 0.3 .. 3)."""
    depth = window.depth.copy()
    bad = rng.random(depth.shape) < 0.2
    depth[bad] *= rng.uniform(0.3, 3.0, size=int(bad.sum()))
    return WindowResult(depth, window.confidence, window.camera_from_world, window.intrinsics)


def test_the_chain_ignores_outlier_depth_points():
    got, g0, poses, _ = _chain(10, 4, 2, seed=6, corrupt=_outlier_depth)
    want = g0.transform_camera_from_world(poses)
    assert _relative(got, want) < 1e-6


def test_without_overlap_windows_keep_their_own_worlds():
    rng = np.random.default_rng(7)
    poses = trajectory(8)
    chain = WindowChain(0)
    for ids in window_frames(8, 4, 0):
        sim3 = random_sim3(rng)
        aligned = chain.add(ids, as_seen_by(true_window(ids, poses), sim3))
        assert aligned.fit is None and aligned.sim3.scale == 1.0
        np.testing.assert_allclose(
            aligned.window.camera_from_world, sim3.transform_camera_from_world(poses[ids])
        )


def test_umeyama_is_exact_on_exact_points():
    rng = np.random.default_rng(8)
    src = rng.normal(size=(50, 3))
    sim3 = random_sim3(rng)
    found = umeyama(src, sim3.apply(src))
    assert abs(found.scale - sim3.scale) < 1e-12 * sim3.scale
    np.testing.assert_allclose(found.rotation, sim3.rotation, atol=1e-12)
    np.testing.assert_allclose(found.translation, sim3.translation, atol=1e-10)


def test_the_robust_fit_shrugs_off_a_third_of_gross_outliers():
    rng = np.random.default_rng(9)
    src = rng.normal(size=(300, 3))
    sim3 = random_sim3(rng)
    dst = sim3.apply(src)
    bad = rng.random(300) < 0.33
    dst[bad] += rng.normal(scale=5.0, size=(int(bad.sum()), 3)) * sim3.scale
    plain = umeyama(src, dst)
    fit = fit_sim3(src, dst)
    assert abs(plain.scale / sim3.scale - 1) > 1e-3  # least squares alone is pulled off
    assert abs(fit.sim3.scale / sim3.scale - 1) < 1e-6
    np.testing.assert_allclose(fit.sim3.rotation, sim3.rotation, atol=1e-6)
    assert 0.6 < fit.inlier_fraction < 0.7


def test_the_robust_fit_with_noise_beats_least_squares():
    rng = np.random.default_rng(10)
    src = rng.normal(size=(400, 3))
    sim3 = Sim3(2.0, rotation([1, 2, 3], 0.7), np.array([1.0, -2.0, 0.5]))
    dst = sim3.apply(src) + rng.normal(scale=0.01, size=(400, 3))
    bad = rng.random(400) < 0.2
    dst[bad] += rng.normal(scale=3.0, size=(int(bad.sum()), 3))
    plain, robust = umeyama(src, dst), fit_sim3(src, dst).sim3
    assert abs(robust.scale - 2.0) < 0.01 < abs(plain.scale - 2.0)


def test_orientations_alone_fix_the_rotation_from_one_camera():
    sim3 = Sim3(3.0, rotation([0, 0, 1], 1.0), np.array([1.0, 2.0, 3.0]))
    r_src = rotation([1, 0, 0], 0.3)[None]
    fit = fit_sim3(
        np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        sim3.apply(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])),
        source_rotations=r_src,
        target_rotations=sim3.rotation @ r_src,
    )
    np.testing.assert_allclose(fit.sim3.rotation, sim3.rotation, atol=1e-9)
    assert abs(fit.sim3.scale - 3.0) < 1e-9


def test_a_fit_needs_points_or_orientations():
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_sim3(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="matching"):
        umeyama(np.zeros((3, 3)), np.zeros((4, 3)))


def test_quaternions_round_trip():
    rng = np.random.default_rng(11)
    for _ in range(50):
        r = rotation(rng.normal(size=3), rng.uniform(0, np.pi))
        q = rotation_to_quaternion(r)
        assert q[3] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        np.testing.assert_allclose(quaternion_to_rotation(q), r, atol=1e-12)
    # A half turn about x: (1, 0, 0, 0) in x y z w.
    np.testing.assert_allclose(
        np.abs(rotation_to_quaternion(np.diag([1.0, -1.0, -1.0]))), [1, 0, 0, 0], atol=1e-12
    )


def test_back_projection_lands_on_the_walls():
    poses = trajectory(3)
    window = true_window([1], poses)
    points = back_project(window.depth[0], window.intrinsics[0], window.camera_from_world[0])
    # Every point lies on a wall of the room: one coordinate at +-5.
    assert np.allclose(np.abs(points).max(axis=-1), 5.0, atol=1e-9)


def test_a_window_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="camera_from_world has shape"):
        WindowResult(
            np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.zeros((3, 3, 4)), np.zeros((2, 3, 3))
        )
    chain = WindowChain(1)
    with pytest.raises(ValueError, match="2 frame indices for a window of 1"):
        chain.add([0, 1], true_window([0], trajectory(2)))


def test_windows_that_disagree_stop_with_the_window_named():
    rng = np.random.default_rng(12)
    poses = trajectory(6)
    chain = WindowChain(2)
    chain.add([0, 1, 2, 3], true_window([0, 1, 2, 3], poses))
    other = true_window([2, 3, 4, 5], poses)
    scrambled = WindowResult(
        other.depth * rng.uniform(0.3, 3.0, size=other.depth.shape),
        other.confidence,
        other.camera_from_world,
        other.intrinsics,
    )
    with pytest.raises(ValueError, match=r"window 1 \(frames 2..5\): windows do not agree"):
        chain.add([2, 3, 4, 5], scrambled)


def _noisy_outliers(window: WindowResult, rng: np.random.Generator) -> WindowResult:
    """1 % depth noise everywhere, and a fifth of the pixels wrong (x 0.3 .. 3)."""
    depth = window.depth * (1 + 0.01 * rng.normal(size=window.depth.shape))
    bad = rng.random(depth.shape) < 0.2
    depth[bad] *= rng.uniform(0.3, 3.0, size=int(bad.sum()))
    return WindowResult(depth, window.confidence, window.camera_from_world, window.intrinsics)


@pytest.mark.parametrize("seed", range(5))
def test_one_noisy_shared_frame_with_outliers_still_chains(seed):
    # One shared frame, ~50 confident pixels, a third of them wrong across both windows:
    # the IRLS starts from the median depth ratio, which they cannot pull off.
    got, g0, poses, _ = _chain(10, 4, 1, seed, corrupt=_noisy_outliers)
    assert _relative(got, g0.transform_camera_from_world(poses)) < 1e-2
