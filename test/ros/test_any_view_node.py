"""Windows of views in dpt_node (any_view.*) over real rclpy, with Depth Anything 3
small at random weights on a 56-pixel network (the plumbing, not the numbers): the
window's topics, frames and stamps; keyframes by time and by motion; a jump back in
stamps restarting the window; a model without windows refused at start."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import camera_info, rgb_msg, small_image, spin_until, start_node, wait_for_subscribers

from dpt_ros.models.registry import window_model_names
from dpt_ros.ros.pointcloud import cloud_points

SMALL = "depth_anything_3_small"
H, W = 42, 56


def _params(*more):
    from rclpy.parameter import Parameter

    return [
        Parameter("depth.model_type", value=SMALL),
        Parameter("depth.random_weights", value=True),
        Parameter("network_width", value=56),
        Parameter("network_height", value=56),
        Parameter("warmup_width", value=0),
        Parameter("warmup_height", value=0),
        Parameter("any_view.window", value=3),
        *more,
    ]


def _listen(probe):
    from geometry_msgs.msg import PoseArray
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import PointCloud2

    got: dict[str, list] = {"poses": [], "odometry": [], "points": []}
    probe.node.create_subscription(PointCloud2, "any_view/points", got["points"].append, 10)
    probe.node.create_subscription(PoseArray, "any_view/poses", got["poses"].append, 10)
    probe.node.create_subscription(Odometry, "any_view/odometry", got["odometry"].append, 10)
    return got


def _wait_for_listeners(executor, node, *topics: str) -> None:
    """Until the node's publishers of ``topics`` see the probe's subscriptions: the node
    builds its outputs only for subscribers."""
    pubs = node.cameras[0].publishers
    assert spin_until(
        executor, lambda: all(pubs[t].get_subscription_count() > 0 for t in topics), 10
    )


def _odometry(sec: float, x: float, frame: str = "odom"):
    from nav_msgs.msg import Odometry

    msg = Odometry()
    msg.header.stamp.sec = int(sec)
    msg.header.stamp.nanosec = int(round((sec - int(sec)) * 1e9))
    msg.header.frame_id = frame
    msg.child_frame_id = "base_link"
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 1.0
    return msg


def _frame(executor, probe, got, i: int, sec: int, nanosec: int = 250) -> None:
    """Publishes frame ``i`` at ``sec`` and waits until its window is published."""
    before = len(got["poses"])
    msg = rgb_msg(small_image(H, W, seed=i), sec)
    msg.header.stamp.nanosec = nanosec
    probe.image_pub.publish(msg)
    assert spin_until(executor, lambda: len(got["poses"]) > before, 120), f"frame {i}"


def _diagnostic(probe, key: str) -> str | None:
    for array in reversed(probe.diagnostics):
        for status in array.status:
            for kv in status.values:
                if kv.key == key:
                    return kv.value
    return None


def test_model_without_windows_refused_at_start_naming_those_with(ros):
    from rclpy.parameter import Parameter

    _, add = ros
    with pytest.raises(ValueError) as info:
        start_node(
            add,
            Parameter("depth.model_type", value="dpt_hybrid"),
            Parameter("any_view.window", value=4),
            Parameter("any_view.camera_in_base", value="0 0 0 0 0 0 3"),
            probe=False,
        )
    text = str(info.value)
    assert "any_view.window=4 needs a model with windows; dpt_hybrid" in text
    for name in window_model_names():
        assert name in text
    assert "any_view.camera_in_base" in text  # every problem in the one line


def test_poses_and_depth_with_the_input_header_and_keyframes_by_time(ros):
    """Each frame: any_view/poses (one pose per view, the current one the identity) and
    depth/relative with the image's header, no metric depth/image and no odometry (the
    scale is unknown, /diagnostics says why); keyframes every second of stamps."""
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(add, *_params(Parameter("any_view.keyframe_period", value=1.0)))
    got = _listen(probe)
    wait_for_subscribers(executor, probe)
    _wait_for_listeners(executor, node, "any_view/poses", "depth/relative")
    probe.info_pub.publish(camera_info(W, H))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    for i, (sec, nanosec) in enumerate([(10, 0), (10, 500_000_000), (11, 0), (11, 400_000_000)]):
        _frame(executor, probe, got, i, sec, nanosec)
    sizes = [len(p.poses) for p in got["poses"]]
    assert sizes == [1, 2, 2, 3]  # keyframes at 10.0 and 11.0 (window 3 holds 2)
    last = got["poses"][-1]
    assert last.header.frame_id == "camera_optical_frame"
    assert (last.header.stamp.sec, last.header.stamp.nanosec) == (11, 400_000_000)
    current = last.poses[-1]
    assert current.orientation.w == pytest.approx(1.0, abs=1e-5)
    assert abs(current.position.x) + abs(current.position.y) + abs(current.position.z) < 1e-4
    state = node.any_view.states[""]
    assert [k.stamp_ns for k in state.keyframes] == [10 * 10**9, 11 * 10**9]
    assert [k.reason for k in state.keyframes] == ["first", "time"]
    # the keyframes' per-view blocks were kept: 10.0 came back 3 times, 11.0 once
    cache = node.any_view.predictor.view_cache
    assert (cache.hits, cache.misses) == (4, 4)
    assert spin_until(executor, lambda: len(probe.got["depth/relative"]) >= 4, 10)
    relative = probe.got["depth/relative"][-1]
    assert (relative.header.stamp.sec, relative.header.stamp.nanosec) == (11, 400_000_000)
    assert (relative.height, relative.width) == (H, W)
    assert not probe.got["depth/image"] and not got["odometry"]
    assert spin_until(executor, lambda: _diagnostic(probe, "any_view keyframes held") == "2", 10)
    assert _diagnostic(probe, "any_view odometry").startswith("not published: scale unknown")
    assert _diagnostic(probe, "any_view chain length") is not None


def test_keyframes_by_motion_and_stamp_jump_back_restarts(ros):
    """With odometry, a frame 0.5 m on from the last keyframe becomes one (period 100 s:
    never by time); a frame stamped before the last restarts the window."""
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(
        add,
        *_params(
            Parameter("any_view.keyframe_period", value=100.0),
            Parameter("any_view.keyframe_translation", value=0.3),
            Parameter("any_view.odometry_topic", value="odom"),
        ),
    )
    got = _listen(probe)
    odom_pub = probe.node.create_publisher(type(_odometry(0, 0)), "odom", 10)
    wait_for_subscribers(executor, probe)
    _wait_for_listeners(executor, node, "any_view/poses")
    assert spin_until(executor, lambda: odom_pub.get_subscription_count() > 0, 10)
    for sec, x in [(20, 0.0), (21, 0.1), (22, 0.6), (23, 0.7)]:
        odom_pub.publish(_odometry(sec + 250e-9, x))
    odometry = node.any_view.odometry
    assert spin_until(executor, lambda: len(odometry) == 4, 10)
    # Odometry in another frame than declared is refused with its reason.
    odom_pub.publish(_odometry(24, 0.0, frame="map"))
    assert spin_until(executor, lambda: odometry.refused == 1, 10)
    assert "frame 'map', declared 'odom'" in odometry.last_refusal
    for i, sec in enumerate([20, 21, 22]):
        _frame(executor, probe, got, i, sec)
    state = node.any_view.states[""]
    assert [k.reason for k in state.keyframes] == ["first", "translation"]
    assert [k.stamp_ns // 10**9 for k in state.keyframes] == [20, 22]
    _frame(executor, probe, got, 3, 15)  # back in time
    assert state.restarts == 1 and state.last_restart.startswith("image stamps went back")
    assert len(got["poses"][-1].poses) == 1  # the window starts again from this frame
    assert [k.stamp_ns // 10**9 for k in state.keyframes] == [15]
    assert not got["odometry"]  # no conditioning: the scale is unknown


def _conditioned_run(executor, probe, got, odom_pub, start: int, metres_per_frame: float):
    """Frames ``start`` .. ``start + 2`` (the same three images every run) with odometry
    moving ``metres_per_frame`` along x from one to the next; returns the last depth."""
    from dpt_ros.ros.image_codec import image_msg_to_array

    for k in range(3):
        odom_pub.publish(_odometry(start + k + 250e-9, k * metres_per_frame))
    before = len(probe.got["depth/image"])
    for k in range(3):
        _frame(executor, probe, got, k, start + k)
    # the last frame's depth, not just a new one (a loaded machine delivers it later)
    last = start + 2
    assert spin_until(
        executor,
        lambda: (
            len(probe.got["depth/image"]) > before
            and probe.got["depth/image"][-1].header.stamp.sec == last
        ),
        60,
    )
    return image_msg_to_array(probe.got["depth/image"][-1])


def test_conditioning_on_odometry_gives_its_unit_and_stops_when_stale(ros, capfd):
    """Conditioned on odometry (window 3): any_view/odometry in the odom frame for the
    camera's optical frame with the image stamp, and depth/image in the odometry's
    unit: the same frames with the odometry scaled by 2 give twice the depth (window 3:
    the reference's normalisation of the cameras takes the lower median of their
    distances, 0 for two views, clamped to 0.1, so a window of 2 is not scale-free). Stale
    odometry stops conditioning, said once in the log and in /diagnostics."""
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(
        add,
        *_params(
            Parameter("any_view.window", value=3),
            Parameter("any_view.keyframe_period", value=0.5),
            Parameter("any_view.odometry_topic", value="odom"),
            Parameter("any_view.condition_on_odometry", value=True),
            Parameter("any_view.odometry_max_age", value=0.1),
        ),
    )
    got = _listen(probe)
    odom_pub = probe.node.create_publisher(type(_odometry(0, 0)), "odom", 10)
    wait_for_subscribers(executor, probe)
    assert spin_until(executor, lambda: odom_pub.get_subscription_count() > 0, 10)
    _wait_for_listeners(
        executor, node, "any_view/poses", "any_view/odometry", "any_view/points", "depth/image"
    )
    probe.info_pub.publish(camera_info(W, H))
    assert spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    depth_1 = _conditioned_run(executor, probe, got, odom_pub, 30, 0.5)
    # the last frame's odometry may arrive after its depth
    assert spin_until(
        executor, lambda: got["odometry"] and got["odometry"][-1].header.stamp.sec == 32, 60
    )
    odometry = got["odometry"][-1]
    assert odometry.header.frame_id == "odom" and odometry.child_frame_id == "camera_optical_frame"
    assert (odometry.header.stamp.sec, odometry.header.stamp.nanosec) == (32, 250)
    # camera_in_base's default: the optical frame at the base's origin, so the camera is
    # where the odometry puts the base, and looks along its x axis.
    assert odometry.pose.pose.position.x == pytest.approx(1.0, abs=1e-6)
    q = odometry.pose.pose.orientation
    assert [q.x, q.y, q.z, q.w] == pytest.approx([-0.5, 0.5, -0.5, 0.5], abs=1e-6)
    state = node.any_view.states[""]
    assert state.scale_source == "odometry conditioning"
    assert spin_until(executor, lambda: got["points"], 10)
    cloud = got["points"][-1]
    assert cloud.header.frame_id == "camera_optical_frame" and cloud.header.stamp.sec == 32
    xyz = cloud_points(cloud)
    assert len(xyz) > 0 and np.isfinite(xyz).all()
    # The same images with the odometry twice as long (after a jump back: a new window).
    depth_2 = _conditioned_run(executor, probe, got, odom_pub, 10, 1.0)
    assert state.restarts == 1
    finite = np.isfinite(depth_1) & (depth_1 > 0)
    np.testing.assert_allclose(depth_2[finite], 2 * depth_1[finite], rtol=1e-3)
    # Two frames far from any odometry: conditioning stops, said once.
    assert "conditioning on odometry stopped" not in capfd.readouterr().err
    _frame(executor, probe, got, 5, 40)
    _frame(executor, probe, got, 6, 41)
    assert state.conditioning.startswith("no odometry at the image: stale")
    assert spin_until(
        executor,
        lambda: (_diagnostic(probe, "any_view conditioning") or "").startswith("no odometry"),
        10,
    )
    err = capfd.readouterr().err
    assert err.count("conditioning on odometry stopped") == 1
