"""Windows in the live node, without a model (dpt_ros.anyview): the options' checks,
keyframes by time and by motion, the odometry buffer, and the window state's restarts,
conditioning and chain on a synthetic trajectory with a known truth."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from reconstruct_scenes import as_seen_by, random_sim3, rotation, trajectory, true_window

from dpt_ros.anyview import (
    AnyViewOptions,
    KeyframeSelector,
    OdometryBuffer,
    OdometrySample,
    Pose,
    WindowState,
)
from dpt_ros.anyview.options import OPTICAL_IN_BODY, parse_pose
from dpt_ros.anyview.window import pose_of
from dpt_ros.models.registry import window_model_names
from dpt_ros.options import add_flags, from_flags
from dpt_ros.reconstruct.sim3 import rotation_to_quaternion

S = 1_000_000_000  # ns per second
DA3 = "depth_anything_3_small"


def _sample(t: float, xyz=(0.0, 0.0, 0.0), q=(0.0, 0.0, 0.0, 1.0), frame="odom", child="base"):
    return OdometrySample(int(t * S), frame, child, np.array(xyz, float), np.array(q, float))


# -- options ------------------------------------------------------------------------------
def test_defaults_are_valid_and_off():
    options = AnyViewOptions()
    assert not options.enabled
    assert options.problems() == []
    assert AnyViewOptions(window=3, model_type=DA3).problems() == []


def test_every_problem_at_once_named_by_parameter():
    options = AnyViewOptions(
        window=1,
        model_type="dpt_hybrid",
        condition_on_odometry=True,
        camera_in_base="0 0 0 0 0 0 2",
    )
    problems = options.problems()
    text = "; ".join(problems)
    assert "any_view.window=1" in text
    assert "dpt_hybrid sees one image at a time" in text
    for name in window_model_names():
        assert name in text
    assert "any_view.camera_in_base" in text and "length 2" in text
    assert "any_view.condition_on_odometry needs any_view.odometry_topic" in text
    assert "needs a Depth Anything 3 type" in text
    assert len(problems) == 5


def test_conditioning_refused_for_vggt():
    options = AnyViewOptions(
        window=2, model_type="vggt_1b", condition_on_odometry=True, odometry_topic="odom"
    )
    assert options.problems() == [
        "any_view.condition_on_odometry needs a Depth Anything 3 type (its camera encoder); "
        "vggt_1b takes no cameras"
    ]


def test_range_and_choice_problems():
    problems = AnyViewOptions(window=9, reference_view="last").problems()
    assert any("any_view.window=9 is outside 0..8" in p for p in problems)
    assert any("any_view.reference_view='last'" in p for p in problems)


def test_no_keyframes_at_all_is_refused():
    problems = AnyViewOptions(window=2, keyframe_period=0.0).problems()
    assert problems and "would never fill" in problems[0]


def test_flags_come_from_the_declarations():
    parser = argparse.ArgumentParser()
    add_flags(parser, AnyViewOptions)
    args = parser.parse_args(
        [
            "--any-view-window",
            "3",
            "--any-view-odometry-topic",
            "/odom",
            "--any-view-camera-in-base",
            "0.1 0 0.5 -0.5 0.5 -0.5 0.5",
            "--any-view-condition-on-odometry",
        ]
    )
    options = from_flags(AnyViewOptions, args, model_type=DA3)
    assert options.window == 3 and options.condition_on_odometry
    assert np.allclose(options.camera_pose().translation, [0.1, 0, 0.5])
    bad = parser.parse_args(["--any-view-window", "1"])
    with pytest.raises(ValueError, match="--any-view-window=1"):
        from_flags(AnyViewOptions, bad, model_type=DA3)


def test_camera_in_base_default_is_the_optical_frame():
    pose, problem = parse_pose(OPTICAL_IN_BODY)
    assert problem is None and pose is not None
    # The optical z axis (forward) is the body's x; optical x (right) is body -y.
    assert np.allclose(pose.rotation @ [0, 0, 1], [1, 0, 0])
    assert np.allclose(pose.rotation @ [1, 0, 0], [0, -1, 0])
    assert parse_pose("1 2 3")[1] is not None
    assert "not 7 finite" in parse_pose("0 0 0 0 0 0 nan")[1]


# -- keyframes ----------------------------------------------------------------------------
def test_keyframes_by_time():
    selector = KeyframeSelector(period=1.0)
    assert selector.why(0) == "first"
    selector.taken(0)
    assert selector.why(int(0.9 * S)) is None
    assert selector.why(int(1.0 * S)) == "time"


def test_keyframes_by_translation_and_rotation():
    selector = KeyframeSelector(period=10.0, translation=0.3, rotation_deg=15.0)
    selector.taken(0, Pose.identity())
    near = Pose(np.eye(3), np.array([0.2, 0, 0]))
    far = Pose(np.eye(3), np.array([0.31, 0, 0]))
    turned = Pose(rotation([0, 0, 1], np.radians(16)), np.zeros(3))
    assert selector.why(S // 10, near) is None
    assert selector.why(S // 10, far) == "translation"
    assert selector.why(S // 10, turned) == "rotation"
    assert selector.why(S // 10, None) is None


# -- odometry -----------------------------------------------------------------------------
def test_odometry_interpolates_between_samples():
    buffer = OdometryBuffer("odom", max_age=0.5)
    q_turn = rotation_to_quaternion(rotation([0, 0, 1], np.pi / 2))
    assert buffer.add(_sample(1.0, (0, 0, 0))) is None
    assert buffer.add(_sample(2.0, (2, 0, 0), q_turn)) is None
    at = buffer.pose_at(int(1.5 * S))
    assert at.pose is not None
    assert np.allclose(at.pose.translation, [1, 0, 0])
    assert np.allclose(at.pose.rotation, rotation([0, 0, 1], np.pi / 4))
    assert np.allclose(buffer.pose_at(2 * S).pose.translation, [2, 0, 0])


def test_odometry_stale_and_absent():
    buffer = OdometryBuffer("odom", max_age=0.2)
    assert buffer.pose_at(S).reason.startswith("absent")
    buffer.add(_sample(1.0))
    at = buffer.pose_at(int(1.5 * S))
    assert at.pose is None and at.reason.startswith("stale") and at.gap_s == pytest.approx(0.5)


@pytest.mark.parametrize(
    "sample, words",
    [
        (_sample(1.0, q=(0, 0, 0, 2)), "length 2"),
        (_sample(1.0, q=(0, 0, float("nan"), 1)), "not 4 finite"),
        (_sample(1.0, xyz=(0, float("nan"), 0)), "position"),
        (_sample(1.0, frame="map"), "frame 'map', declared 'odom'"),
        (_sample(1.0, child="wheel"), "child frame 'wheel', declared 'base'"),
    ],
)
def test_odometry_refused_with_a_reason(sample, words):
    buffer = OdometryBuffer("odom", "base")
    reason = buffer.add(sample)
    assert reason is not None and words in reason
    assert len(buffer) == 0 and buffer.refused == 1 and buffer.last_refusal == reason


# -- the window state ---------------------------------------------------------------------
def _rgb(h: int = 60, w: int = 80) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def _finish_plain(state: WindowState, stamp: float, rng, k=None):
    plan = state.plan(_rgb(), int(stamp * S), k)
    n = len(plan)
    poses = trajectory(n)
    out = state.finish(plan, as_seen_by(true_window(range(n), poses), random_sim3(rng)), False)
    return plan, out


def test_keyframes_held_and_restart_on_stamp_jump_back():
    rng = np.random.default_rng(0)
    state = WindowState(AnyViewOptions(window=3, keyframe_period=1.0))
    for t in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        plan, out = _finish_plain(state, t, rng)
    assert len(state.keyframes) == 2  # window - 1
    assert [k.stamp_ns for k in state.keyframes] == [2 * S, 3 * S]
    assert len(plan) == 3 and not out.scale_known
    plan = state.plan(_rgb(), int(1.0 * S))
    assert plan.restarted.startswith("image stamps went back by 2.000 s")
    assert len(plan) == 1 and state.restarts == 1


def test_restart_on_camera_change():
    rng = np.random.default_rng(1)
    state = WindowState(AnyViewOptions(window=2))
    k = np.array([[50.0, 0, 40], [0, 50, 30], [0, 0, 1]])
    _finish_plain(state, 0.0, rng, k)
    k2 = k.copy()
    k2[0, 0] = 60
    plan = state.plan(_rgb(), 2 * S, k2)
    assert plan.restarted == "the camera changed (camera_info or image size)"
    assert len(plan) == 1


def test_conditioning_needs_odometry_at_every_view():
    odometry = OdometryBuffer("odom", max_age=0.2)
    options = AnyViewOptions(
        window=2, condition_on_odometry=True, odometry_topic="odom", model_type=DA3
    )
    state = WindowState(options, odometry)
    k = np.array([[50.0, 0, 40], [0, 50, 30], [0, 0, 1]])
    plan = state.plan(_rgb(), 0, k)
    assert plan.extrinsics is None and plan.conditioning.startswith("no odometry at the image")
    odometry.add(_sample(0.0))
    odometry.add(_sample(1.0, (1, 0, 0)))
    plan = state.plan(_rgb(), 0, None)
    assert plan.conditioning.startswith("no camera_info")


def test_chain_from_an_anchor_keeps_metres_and_grows_the_covariance():
    """A conditioned window anchors the chain in the odometry's world; the following
    windows, each in a world and unit of its own, are chained back onto it through the
    keyframes they share and give the true camera positions in metres."""
    rng = np.random.default_rng(2)
    poses = trajectory(8)
    state = WindowState(AnyViewOptions(window=3, keyframe_period=0.5))
    kept: list[int] = []
    outs = []
    for i in range(8):
        plan = state.plan(_rgb(), i * S // 2)
        frames = kept + [i]
        assert plan.stamps == [f * S // 2 for f in frames]
        truth = true_window(frames, poses)
        conditioned = i == 1
        window = truth if conditioned else as_seen_by(truth, random_sim3(rng))
        outs.append(state.finish(plan, window, conditioned))
        kept = (kept + [i])[-2:]
    assert not outs[0].scale_known and outs[0].scale_source.startswith("none")
    assert outs[1].scale_source == "odometry conditioning" and outs[1].chain_length == 0
    for i in range(2, 8):
        out = outs[i]
        assert out.scale_known and out.chain_length == i - 1
        assert out.scale_source == f"chained from odometry ({i - 1} windows)"
        truth = pose_of(poses[i]).translation
        assert np.allclose(out.world_from_current.translation, truth, atol=1e-6)
        assert np.allclose(out.current_from_views[-1], np.eye(3, 4), atol=1e-9)
    variances = [outs[i].covariance[0, 0] for i in range(1, 8)]
    assert variances[0] == 0 and all(b > a for a, b in zip(variances, variances[1:]))
    assert outs[7].covariance[3, 3] == pytest.approx(6 * np.radians(0.5) ** 2)


def test_poses_in_the_current_optical_frame():
    poses = trajectory(2)
    state = WindowState(AnyViewOptions(window=2))
    state.finish(state.plan(_rgb(), 0), true_window([0], poses), False)
    out = state.finish(state.plan(_rgb(), S), true_window([0, 1], poses), False)
    current_from_world = poses[1]
    expected = pose_of(current_from_world).inverse().compose(pose_of(poses[0]))
    assert np.allclose(out.current_from_views[0], expected.matrix(), atol=1e-9)


def test_conditioning_needs_motion_between_the_cameras():
    """A robot standing still gives cameras at one centre: no scale to align to, so the
    window is not conditioned, and says why."""
    odometry = OdometryBuffer("odom", max_age=0.2)
    options = AnyViewOptions(
        window=2, condition_on_odometry=True, odometry_topic="odom", model_type=DA3
    )
    state = WindowState(options, odometry)
    k = np.array([[50.0, 0, 40], [0, 50, 30], [0, 0, 1]])
    for t in (0.0, 1.0, 2.0):
        odometry.add(_sample(t, (0.001 * t, 0, 0)))
    poses = trajectory(2)
    plan = state.plan(_rgb(), 0, k)
    assert plan.conditioning.startswith("a window of one view")
    state.finish(plan, true_window([0], poses), False)
    plan = state.plan(_rgb(), S, k)
    assert plan.extrinsics is None and "no motion to take the scale from" in plan.conditioning
    odometry.add(_sample(3.0, (1.0, 0, 0)))  # the robot moved
    plan = state.plan(_rgb(), 3 * S, k)
    assert plan.conditioning == "" and plan.extrinsics is not None
    assert plan.extrinsics.shape == (2, 3, 4) and plan.intrinsics.shape == (2, 3, 3)
