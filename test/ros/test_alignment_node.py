"""Online alignment (``relative_depth.alignment``) through the real node over rclpy, and
through ``dpt-ros bag``.

The depth model has the fixtures' deterministic weights at a 64x64 network: its relative
output on a test image is known by running the same Predictor here. The references are
made from it with a known calibration, ``depth = 1 / (S0 * relative + T0)``, sparse, at
another resolution and with wrong values mixed in; the node must publish exactly those
metres from the second frame on, and stop publishing metres when the fits go bad.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import rgb_msg, small_image, spin_until
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.node.node import DptNode
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import make_pointcloud2

S0, T0 = 0.5, 0.2
H, W = 48, 64
FRAME = "camera_optical_frame"


def base_parameters(weights, method: str) -> list[Parameter]:
    return [
        Parameter("device", value="cpu"),
        Parameter("backend", value="torch"),
        Parameter("network_width", value=64),
        Parameter("network_height", value=64),
        Parameter("depth.weights", value=str(weights)),
        Parameter("relative_depth.alignment", value=method),
        Parameter("warmup_width", value=0),
        Parameter("warmup_height", value=0),
    ]


@pytest.fixture(scope="module")
def predictor(det_checkpoint):
    return Predictor(
        "dpt_hybrid",
        weights=det_checkpoint("dpt_hybrid"),
        device="cpu",
        backend="torch",
        network_size=(64, 64),
    )


@pytest.fixture(scope="module")
def relative(predictor):
    """The node's relative output on the test image, computed here."""
    return predictor.predict(small_image(H, W))


@pytest.fixture(scope="module")
def fitted(predictor):
    """The node's depth/image under the calibration (S0, T0): metres at the network's
    resolution, upsampled bilinearly in inverse depth."""
    import torch

    from dpt_ros.models.geometry import relative_to_metric, upsample_depth

    with torch.inference_mode():
        low = predictor.infer_on_device(torch.from_numpy(small_image(H, W))[None]).inverse_depth
        return upsample_depth(relative_to_metric(low, S0, T0), (H, W))[0].numpy()


def scene_camera_info() -> CameraInfo:
    info = CameraInfo()
    info.header.frame_id = FRAME
    info.width, info.height = W, H
    info.k = [50.0, 0.0, W / 2 - 0.5, 0.0, 50.0, H / 2 - 0.5, 0.0, 0.0, 1.0]
    info.p = [50.0, 0.0, W / 2 - 0.5, 0.0, 0.0, 50.0, H / 2 - 0.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def reference_depth(relative: np.ndarray, seed: int = 0) -> np.ndarray:
    """Known metres at 40 % of the pixels, 25 % of those wrong, NaN elsewhere."""
    rng = np.random.default_rng(seed)
    depth = (1.0 / (S0 * relative + T0)).astype(np.float32)
    keep = rng.random(depth.shape) < 0.4
    wrong = keep & (rng.random(depth.shape) < 0.25)
    depth[wrong] *= rng.uniform(1.5, 3.0, int(wrong.sum())).astype(np.float32)
    depth[~keep] = np.nan
    return depth


def depth_msg(depth: np.ndarray, sec: int, encoding: str = "32FC1") -> Image:
    """``depth`` (H, W) metres, upsampled 2x (references may have any resolution)."""
    big = np.repeat(np.repeat(depth, 2, axis=0), 2, axis=1)
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = sec, 250, FRAME
    msg.height, msg.width, msg.encoding = big.shape[0], big.shape[1], encoding
    if encoding == "16UC1":
        data = np.nan_to_num(big * 1000.0, nan=0.0).round().astype("<u2")
        msg.step = big.shape[1] * 2
    else:
        data = big.astype("<f4")
        msg.step = big.shape[1] * 4
    msg.data = data.tobytes()
    return msg


class Probe:
    def __init__(self, add) -> None:
        self.node = add(Node("alignment_probe"))
        self.depth: list[Image] = []
        self.points: list[PointCloud2] = []
        self.node.create_subscription(Image, "depth/image", self.depth.append, 10)
        self.node.create_subscription(PointCloud2, "points", self.points.append, 10)
        self.image_pub = self.node.create_publisher(Image, "image", 10)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", 10)
        self.ref_depth = self.node.create_publisher(Image, "alignment/depth", 10)
        self.ref_points = self.node.create_publisher(PointCloud2, "alignment/points", 10)


def start(ros, weights, method: str, extra=()) -> tuple:
    executor, add = ros
    node = add(DptNode(parameter_overrides=base_parameters(weights, method) + list(extra)))
    probe = Probe(add)
    assert spin_until(
        executor,
        lambda: (
            probe.image_pub.get_subscription_count() > 0
            and probe.info_pub.get_subscription_count() > 0
        ),
        10,
    )
    probe.info_pub.publish(scene_camera_info())
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    return executor, node, probe


def send_frame(executor, node, probe, sec: int) -> None:
    done = node.cameras[0].processed
    probe.image_pub.publish(rgb_msg(small_image(H, W), sec, frame_id=FRAME))
    assert spin_until(executor, lambda: node.cameras[0].processed > done)


def wait_for_reference(executor, node, count: int) -> None:
    refs = node._alignment.aligner._camera("").references
    assert spin_until(executor, lambda: len(refs) >= count, 10)


def test_reference_depth_publishes_the_fitted_metres(ros, det_checkpoint, relative, fitted):
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "reference_depth")
    want = fitted
    for i, sec in enumerate((10, 11)):
        probe.ref_depth.publish(depth_msg(reference_depth(relative, seed=i), sec))
        wait_for_reference(executor, node, i + 1)
        send_frame(executor, node, probe, sec)
    # Frame 1 had no fit yet: no metres. Frame 2 uses frame 1's fit.
    assert spin_until(executor, lambda: probe.depth and probe.points, 10)
    assert len(probe.depth) == 1 and probe.depth[0].header.stamp.sec == 11
    got = image_msg_to_array(probe.depth[0])
    np.testing.assert_allclose(got, want, rtol=2e-3)
    status = node.status()
    assert status["alignment.state"] == "ok"
    assert abs(float(status["alignment.scale"]) - S0) < 1e-3 * S0
    assert abs(float(status["alignment.shift"]) - T0) < 1e-3
    assert int(status["alignment.inliers"]) > 100 and float(status["alignment.age_s"]) == 0.0

    # No more references: the fit is held for max_fit_age (2 s), then metres stop.
    send_frame(executor, node, probe, 12)
    assert spin_until(executor, lambda: len(probe.depth) == 2, 10)
    assert node.status()["alignment.state"].startswith("holding the fit of 1.0 s ago")
    send_frame(executor, node, probe, 14)
    spin_until(executor, lambda: False, 0.5)
    assert len(probe.depth) == 2
    state = node.status()["alignment.state"]
    assert state.startswith("stopped: no good fit for") and "no reference within" in state
    assert node.diagnostics.alignment_warn


def test_stamps_going_back_start_the_alignment_again(ros, det_checkpoint, relative):
    """A bag loop: frames stamped 51 s before the last one get no metres from the fit of
    before the jump; /diagnostics says why, and a reference after the jump fits again."""
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "reference_depth")
    probe.ref_depth.publish(depth_msg(reference_depth(relative), 100))
    wait_for_reference(executor, node, 1)
    send_frame(executor, node, probe, 100)
    send_frame(executor, node, probe, 101)  # metres from the fit of frame 100
    assert spin_until(executor, lambda: len(probe.depth) == 1, 10)
    probe.ref_depth.publish(depth_msg(reference_depth(relative), 50))
    wait_for_reference(executor, node, 2)
    send_frame(executor, node, probe, 50)  # back 51 s: not from the fit of frame 100
    state = node.status()["alignment.state"]
    assert state == "ok", state  # frame 50's own fit, with its reference
    assert node.status()["alignment.restarts"] == "1"
    send_frame(executor, node, probe, 51)  # metres from the fit of frame 50
    assert spin_until(executor, lambda: len(probe.depth) == 2, 10)
    assert [m.header.stamp.sec for m in probe.depth] == [101, 51]
    assert float(node.status()["alignment.age_s"]) == 1.0


def test_millimetre_reference_and_bad_encoding(ros, det_checkpoint, relative, fitted):
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "reference_depth")
    bad = depth_msg(reference_depth(relative), 20)
    bad.encoding = "rgb8"
    probe.ref_depth.publish(bad)
    assert spin_until(
        executor, lambda: "reference rejected" in node.status()["alignment.state"], 10
    )
    assert "32FC1 (metres) or 16UC1 (millimetres)" in node.status()["alignment.state"]
    for sec in (21, 22):
        probe.ref_depth.publish(depth_msg(reference_depth(relative), sec, "16UC1"))
        wait_for_reference(executor, node, sec - 20)
        send_frame(executor, node, probe, sec)
    assert spin_until(executor, lambda: probe.depth, 10)
    # Millimetres are rounded: the fit is as good as they are.
    np.testing.assert_allclose(image_msg_to_array(probe.depth[0]), fitted, rtol=2e-2)


def test_reference_rejections_are_throttled_per_reason_and_kept(ros, det_checkpoint, capfd):
    """Two kinds of bad reference within 5 s: both are logged (rclpy's throttle of one
    call site let one line through for every camera and reason), and /diagnostics keeps
    the last reason and the count after the next frame's state replaces it."""
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "reference_depth")
    depth = np.full((H, W), 2.0, np.float32)
    wrong_encoding = depth_msg(depth, 30)
    wrong_encoding.encoding = "rgb8"
    wrong_size = depth_msg(depth, 31)
    wrong_size.step = 4  # shorter than a row
    for i, msg in enumerate((wrong_encoding, wrong_encoding, wrong_size), 1):
        probe.ref_depth.publish(msg)
        assert spin_until(
            executor,
            lambda n=i: node.status().get("alignment.references_rejected") == str(n),
            10,
        )
    send_frame(executor, node, probe, 32)  # its state: no reference for the frame
    status = node.status()
    assert status["alignment.state"].startswith("no metric output: no reference"), status
    assert status["alignment.references_rejected"] == "3"
    assert "step" in status["alignment.last_rejection"], status
    err = capfd.readouterr().err
    assert err.count("alignment reference rejected: a depth image must be") == 1, err
    assert err.count("alignment reference rejected:") == 2, err  # one per reason


def cloud_msg(relative: np.ndarray, sec: int, frame: str = FRAME) -> PointCloud2:
    depth = reference_depth(relative)
    intr = Intrinsics.from_camera_info(scene_camera_info())
    v, u = np.mgrid[0:H, 0:W]
    xyz = np.stack(
        [(u - intr.cx) / intr.fx * depth, (v - intr.cy) / intr.fy * depth, depth], axis=-1
    )
    header = Header(frame_id=frame)
    header.stamp.sec, header.stamp.nanosec = sec, 250
    return make_pointcloud2(header, xyz.astype(np.float32))


def test_reference_points_in_the_camera_frame(ros, det_checkpoint, relative, fitted):
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "reference_points")
    send_frame(executor, node, probe, 30)  # the node learns the camera's frame
    for sec in (31, 32):
        probe.ref_points.publish(cloud_msg(relative, sec))
        wait_for_reference(executor, node, sec - 30)
        send_frame(executor, node, probe, sec)
    assert spin_until(executor, lambda: probe.depth, 10)
    np.testing.assert_allclose(image_msg_to_array(probe.depth[-1]), fitted, rtol=2e-3)


def test_reference_points_in_another_frame_without_a_transform_say_why(
    ros, det_checkpoint, relative
):
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "reference_points")
    send_frame(executor, node, probe, 40)
    probe.ref_points.publish(cloud_msg(relative, 41, frame="lidar"))
    assert spin_until(executor, lambda: "lidar" in node.status()["alignment.state"], 10)
    state = node.status()["alignment.state"]
    if node._alignment._tf_buffer is None:  # no tf2_ros (PyPI wheels): refused, saying why
        assert "tf2_ros cannot be imported" in state and FRAME in state
    else:  # tf2_ros but no transform published: refused, naming both frames
        assert "no transform from 'lidar'" in state and FRAME in state


def test_failed_ground_plane_fits_publish_no_metres(ros, det_checkpoint):
    """The chaotic test network's output is no ground plane: every fit fails its quality
    checks, and no metres are ever published."""
    extra = [Parameter("relative_depth.camera_height", value=1.2)]
    executor, node, probe = start(ros, det_checkpoint("dpt_hybrid"), "ground_plane", extra)
    for sec in (50, 51, 52):
        send_frame(executor, node, probe, sec)
    spin_until(executor, lambda: False, 0.3)
    assert not probe.depth and not probe.points
    state = node.status()["alignment.state"]
    assert state.startswith("no metric output:") and node.diagnostics.alignment_warn


def test_metric_models_ignore_alignment(ros):
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=[
                Parameter("device", value="cpu"),
                Parameter("backend", value="torch"),
                Parameter("network_width", value=64),
                Parameter("network_height", value=64),
                Parameter("depth.model_type", value="dpt_hybrid_nyu"),
                Parameter("depth.random_weights", value=True),
                Parameter("relative_depth.alignment", value="reference_depth"),
                Parameter("warmup_width", value=0),
                Parameter("warmup_height", value=0),
            ]
        )
    )
    assert node._alignment is None and "alignment.state" not in node.status()


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ([("relative_depth.alignment", "ground_plane")], "needs relative_depth.camera_height"),
        ([("relative_depth.ground_normal", [0.0, 0.0])], "ground_normal must be empty or 3"),
        ([("relative_depth.alignment", "lidar")], "is not one of"),
    ],
)
def test_invalid_alignment_parameters(ros, overrides, needle):
    params = [
        Parameter("device", value="cpu"),
        Parameter("backend", value="torch"),
        Parameter("depth.random_weights", value=True),
    ] + [Parameter(name, value=value) for name, value in overrides]
    with pytest.raises(ValueError, match=needle):
        DptNode(parameter_overrides=params)


def test_bag_aligns_offline_as_live(tmp_path, capsys, det_checkpoint, relative, fitted):
    """dpt-ros bag --alignment reference_depth with the reference read from the bag: the
    second frame on is published in the fitted metres."""
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from dpt_ros.cli.main import main

    store = get_typestore(Stores.ROS2_HUMBLE)
    inp, outp = tmp_path / "in", tmp_path / "out"
    with Writer(inp, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {
            topic: writer.add_connection(topic, f"sensor_msgs/msg/{kind}", typestore=store)
            for topic, kind in (
                ("/cam/camera_info", "CameraInfo"),
                ("/cam/image_raw", "Image"),
                ("/cam/aligned_depth", "Image"),
            )
        }
        writer.write(conns["/cam/camera_info"], 1, serialize_message(scene_camera_info()))
        for i, sec in enumerate((60, 61, 62)):
            t = sec * 10**9
            ref = depth_msg(reference_depth(relative, seed=i), sec)
            writer.write(conns["/cam/aligned_depth"], t, serialize_message(ref))
            image = rgb_msg(small_image(H, W), sec, frame_id=FRAME)
            writer.write(conns["/cam/image_raw"], t + 1, serialize_message(image))
    code = main(
        [
            "bag",
            str(inp),
            "-o",
            str(outp),
            "--image-topic",
            "/cam/image_raw",
            "--depth-weights",
            str(det_checkpoint("dpt_hybrid")),
            "--network-size",
            "64x64",
            "--alignment",
            "reference_depth",
            "--alignment-topic",
            "/cam/aligned_depth",
            "-q",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "alignment: alignment reference_depth, state ok, scale 0.5" in out.out
    with Reader(outp) as reader:
        depth = [
            deserialize_message(bytes(raw), Image)
            for conn, _, raw in reader.messages()
            if conn.topic == "/cam/depth/image"
        ]
    assert [m.header.stamp.sec for m in depth] == [61, 62]
    for m in depth:
        np.testing.assert_allclose(image_msg_to_array(m), fitted, rtol=2e-3)


def test_bag_alignment_flag_errors(tmp_path, capsys):
    from dpt_ros.cli.main import main

    code = main(
        [
            "bag",
            str(tmp_path),
            "-o",
            str(tmp_path / "o"),
            "--image-topic",
            "/x",
            "--alignment",
            "reference_depth",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--alignment reference_depth needs --alignment-topic" in err
