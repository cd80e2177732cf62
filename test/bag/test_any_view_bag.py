"""``dpt-ros bag --any-view-window``: the node's windows of views over a bag, with
Depth Anything 3 small at random weights on a 56-pixel network (the plumbing, not the
numbers): the window's topics at the images' stamps, keyframes by time, odometry read
from the bag for conditioning (depth/image and any_view/odometry), the flags refused in
one line before the model loads, and the fleet's flags reaching the same options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import camera_info, one_error_line, read_bag, rgb_msg, run_bag, small_image

from dpt_ros.cli.bag import job as bag_tool

SMALL = "depth_anything_3_small"
H, W = 42, 56
_PREDICTORS: dict = {}


@pytest.fixture(autouse=True)
def shared_predictors(monkeypatch):
    """Builds the model once for this module."""
    original = bag_tool.make_predictor

    def cached(*args):
        if args not in _PREDICTORS:
            _PREDICTORS[args] = original(*args)
        return _PREDICTORS[args]

    monkeypatch.setattr(bag_tool, "make_predictor", cached)


def _odometry(stamp_ns: int, x: float, frame: str = "odom"):
    from nav_msgs.msg import Odometry

    msg = Odometry()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    msg.header.frame_id = frame
    msg.child_frame_id = "base_link"
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 1.0
    return msg


def _stamp(i: int) -> int:
    """Frame ``i``'s stamp: every 0.5 s from 10 s, 250 ns past."""
    return 10 * 10**9 + i * 500_000_000 + 250


def _write(path: Path, frames: int, odometry_per_frame: float | None = None) -> None:
    """/cam/camera_info, ``frames`` images (bag time = stamp) and, with
    ``odometry_per_frame``, /odom moving that many metres along x per frame, each
    message 1 ms after its image."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=8) as writer:
        info_conn = writer.add_connection(
            "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        image_conn = writer.add_connection(
            "/cam/image_raw", "sensor_msgs/msg/Image", typestore=store
        )
        odom_conn = None
        if odometry_per_frame is not None:
            odom_conn = writer.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=store)
        writer.write(info_conn, _stamp(0) - 1000, serialize_message(camera_info(W, H)))
        for i in range(frames):
            msg = rgb_msg(small_image(H, W, seed=i), 0)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(_stamp(i), 10**9)
            writer.write(image_conn, _stamp(i), serialize_message(msg))
            if odom_conn is not None:
                odom = _odometry(_stamp(i), i * odometry_per_frame)
                writer.write(odom_conn, _stamp(i) + 1_000_000, serialize_message(odom))


def _run(inp: Path, out: Path, *more: str) -> int:
    return run_bag(
        str(inp), "-o", str(out), "--image-topic", "/cam/image_raw", "--depth-model", SMALL,
        "--random-weights", "--network-size", "56x56", "--backend", "torch", "-q", *more,
    )  # fmt: skip


def _stamps(written: dict, topic: str) -> list[int]:
    from rclpy.serialization import deserialize_message

    from dpt_ros.ros.messages import stamp_ns

    kinds = {
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/PointCloud2",
        "geometry_msgs/msg/PoseArray",
        "nav_msgs/msg/Odometry",
    }
    out = []
    for _, msgtype, raw in written[topic]:
        assert msgtype in kinds, msgtype
        module, _, name = msgtype.split("/")
        cls = getattr(__import__(f"{module}.msg", fromlist=[name]), name)
        out.append(stamp_ns(deserialize_message(raw, cls).header))
    return out


def _poses(written: dict) -> list:
    from geometry_msgs.msg import PoseArray
    from rclpy.serialization import deserialize_message

    return [deserialize_message(raw, PoseArray) for _, _, raw in written["/cam/any_view/poses"]]


def test_windows_write_the_nodes_topics_at_the_image_stamps(tmp_path, capsys):
    """Window 3, a keyframe every second, frames every 0.5 s: depth/relative,
    depth/confidence and any_view/poses for every frame at its stamp; the windows hold
    1, 2, 2, 3, 3, 3 views (keyframes at frames 0, 2 and 4); no depth/image or
    any_view/odometry (no odometry: the scale is unknown)."""
    _write(tmp_path / "in", 6)
    rc = _run(tmp_path / "in", tmp_path / "out", "--any-view-window", "3")
    assert rc == 0, capsys.readouterr().err
    written = read_bag(tmp_path / "out")
    stamps = [_stamp(i) for i in range(6)]
    for topic in ("depth/relative", "depth/confidence", "any_view/poses"):
        assert _stamps(written, f"/cam/{topic}") == stamps, topic
        assert [t for t, _, _ in written[f"/cam/{topic}"]] == stamps  # bag time too
    assert "/cam/depth/image" not in written and "/cam/any_view/odometry" not in written
    assert "/cam/any_view/points" not in written
    poses = _poses(written)
    assert [len(p.poses) for p in poses] == [1, 2, 2, 3, 3, 3]
    assert all(p.header.frame_id == "camera_optical_frame" for p in poses)
    last = poses[-1].poses[-1]  # the current camera in its own frame
    assert [last.position.x, last.position.y, last.position.z] == pytest.approx([0, 0, 0], abs=1e-5)
    assert "3 keyframe(s)" in capsys.readouterr().out
    for _, _, raw in written["/cam/image_raw"]:  # the input copied as it was
        assert raw


def test_conditioned_on_the_bags_odometry_gives_metres(tmp_path, capsys):
    """Conditioned on /odom of the bag (0.5 m per frame): depth/image and
    any_view/odometry once the window has motion (from the second frame), in the odom
    frame for the camera's optical frame, the camera where the odometry puts the base
    (camera_in_base's default: at the base's origin)."""
    from nav_msgs.msg import Odometry
    from rclpy.serialization import deserialize_message

    _write(tmp_path / "in", 4, odometry_per_frame=0.5)
    rc = _run(
        tmp_path / "in", tmp_path / "out", "--any-view-window", "3",
        "--any-view-keyframe-period", "0.5", "--any-view-odometry-topic", "/odom",
        "--any-view-condition-on-odometry", "--any-view-odometry-max-age", "0.1",
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    written = read_bag(tmp_path / "out")
    assert written["/odom"]  # copied
    stamps = [_stamp(i) for i in range(1, 4)]
    assert _stamps(written, "/cam/depth/image") == stamps
    assert _stamps(written, "/cam/any_view/odometry") == stamps
    assert _stamps(written, "/cam/any_view/points") == stamps  # as the live node's
    odometry = [
        deserialize_message(raw, Odometry) for _, _, raw in written["/cam/any_view/odometry"]
    ]
    assert all(o.header.frame_id == "odom" for o in odometry)
    assert all(o.child_frame_id == "camera_optical_frame" for o in odometry)
    xs = [o.pose.pose.position.x for o in odometry]
    assert xs == pytest.approx([0.5, 1.0, 1.5], abs=1e-3)
    from sensor_msgs.msg import Image

    from dpt_ros.ros.image_codec import image_msg_to_array

    depth = image_msg_to_array(deserialize_message(written["/cam/depth/image"][-1][2], Image))
    assert np.isfinite(depth).any()
    assert "scale source odometry conditioning" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("more", "fragments"),
    [
        (("--any-view-window", "1"), ("--any-view-window=1",)),
        (
            ("--any-view-window", "3", "--any-view-condition-on-odometry",
             "--any-view-camera-in-base", "0 0 0 0 0 0 2"),
            ("--any-view-condition-on-odometry needs --any-view-odometry-topic",
             "--any-view-camera-in-base", "has length 2"),
        ),
        (("--any-view-window", "3", "--batch", "2"), ("drop --batch",)),
        (("--any-view-window", "3", "--depth-model", "dpt_hybrid", "--network-size", "64x64"), ("needs a model with windows",)),
    ],
)  # fmt: skip
def test_bad_window_flags_are_refused_in_one_line(tmp_path, capsys, monkeypatch, more, fragments):
    """Every problem of the flags in one line, before any model loads and before the
    output exists."""

    def no_model(*args):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(bag_tool, "make_predictor", no_model)
    _write(tmp_path / "in", 1)
    rc = _run(tmp_path / "in", tmp_path / "out", *more)
    one_error_line(rc, capsys.readouterr().err, *fragments)
    assert not (tmp_path / "out").exists()


def test_an_odometry_topic_missing_from_the_bag_is_refused(tmp_path, capsys):
    _write(tmp_path / "in", 1)
    rc = _run(
        tmp_path / "in", tmp_path / "out", "--any-view-window", "2",
        "--any-view-odometry-topic", "/wheel_odom",
    )  # fmt: skip
    one_error_line(rc, capsys.readouterr().err, "/wheel_odom is not in the bag")
    assert not (tmp_path / "out").exists()


def test_the_fleet_takes_the_same_window_options():
    """Several inputs with --ray parse to the same job options as one bag: the fleet's
    workers build their jobs from the same args (process_bag)."""
    from dpt_ros.anyview import AnyViewOptions
    from dpt_ros.cli.bag import any_view as bag_any_view
    from dpt_ros.cli.main import build_parser

    flags = [
        "--image-topic", "/cam/image_raw", "--depth-model", SMALL, "--any-view-window", "4",
        "--any-view-keyframe-period", "0.25", "--any-view-odometry-topic", "/odom",
        "--any-view-camera-in-base", "0.1 0 0.2 -0.5 0.5 -0.5 0.5",
        "--any-view-condition-on-odometry", "--any-view-reference-view", "first",
    ]  # fmt: skip
    parser = build_parser(["bag"])
    one = bag_any_view.options_from_args(parser.parse_args(["bag", "a", "-o", "x", *flags]))
    fleet = bag_any_view.options_from_args(
        parser.parse_args(["bag", "a", "b", "-o", "x", "--ray", *flags])
    )
    assert one == fleet
    assert fleet == AnyViewOptions(
        window=4,
        keyframe_period=0.25,
        odometry_topic="/odom",
        camera_in_base="0.1 0 0.2 -0.5 0.5 -0.5 0.5",
        condition_on_odometry=True,
        reference_view="first",
        model_type=SMALL,
    )


def test_a_fleet_of_two_bags_runs_windows_in_each(tmp_path, capsys):
    """Two bags in one run (MCAP out, conditioned on each bag's odometry): each output
    has its own windows, starting with no keyframe (the second bag's first window is
    one view, with no depth/image), as when run alone."""
    for name in ("a", "b"):
        _write(tmp_path / name, 3, odometry_per_frame=0.5)
    rc = run_bag(
        str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out"),
        "--image-topic", "/cam/image_raw", "--depth-model", SMALL, "--random-weights",
        "--network-size", "56x56", "--backend", "torch", "-q", "--storage", "mcap",
        "--any-view-window", "3", "--any-view-keyframe-period", "0.5",
        "--any-view-odometry-topic", "/odom", "--any-view-condition-on-odometry",
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    for name in ("a", "b"):
        written = read_bag(tmp_path / "out" / name)
        assert [len(p.poses) for p in _poses(written)] == [1, 2, 3]
        assert _stamps(written, "/cam/any_view/odometry") == [_stamp(1), _stamp(2)]
        assert _stamps(written, "/cam/depth/image") == [_stamp(1), _stamp(2)]


def test_the_depth_follows_the_odometrys_unit(tmp_path, capsys):
    """The same images with the bag's odometry twice as long give twice the depth
    (window 3, as in the node's test)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from dpt_ros.ros.image_codec import image_msg_to_array

    depths = []
    for metres in (0.5, 1.0):
        inp, out = tmp_path / f"in{metres}", tmp_path / f"out{metres}"
        _write(inp, 3, odometry_per_frame=metres)
        rc = _run(
            inp, out, "--any-view-window", "3", "--any-view-keyframe-period", "0.5",
            "--any-view-odometry-topic", "/odom", "--any-view-condition-on-odometry",
        )  # fmt: skip
        assert rc == 0, capsys.readouterr().err
        raw = read_bag(out)["/cam/depth/image"][-1][2]
        depths.append(image_msg_to_array(deserialize_message(raw, Image)))
    finite = np.isfinite(depths[0]) & (depths[0] > 0)
    assert finite.any()
    np.testing.assert_allclose(depths[1][finite], 2 * depths[0][finite], rtol=1e-3)
