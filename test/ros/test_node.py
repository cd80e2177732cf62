"""dpt_node over real rclpy pub/sub, in one process (tf2_ros_py style)."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from helpers import (
    FAST,
    Probe,
    camera_info,
    rgb_msg,
    small_image,
    spin_until,
    start_node,
    wait_for_subscribers,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from dpt_ros.models import Predictor
from dpt_ros.node.latest_frame import LatestFrame
from dpt_ros.node.node import DptNode
from dpt_ros.node.params import PARAM_DEFS, declare
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays


class ForwardSpy:
    """Records the batch size of every forward pass of a predictor's network. While
    ``go`` is clear the worker waits at the start of its forward pass, so frames
    published meanwhile wait in their slots for the next cycle."""

    def __init__(self, predictor) -> None:
        self.batch_sizes: list[int] = []
        self.go = threading.Event()
        self.go.set()
        predictor.model.register_forward_pre_hook(self._before_forward)

    def _before_forward(self, module, args) -> None:
        self.batch_sizes.append(int(args[0].shape[0]))
        self.go.wait(30)


def test_relative_depth_matches_golden(ros, det_checkpoint, scene_a_rgb, golden):
    """depth/relative of dpt_hybrid with the fixture weights equals the original's output."""
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=[
                Parameter("device", value="cpu"),
                Parameter("backend", value="torch"),
                Parameter("precision", value="fp32"),
                Parameter("depth.weights", value=str(det_checkpoint("dpt_hybrid"))),
            ]
        )
    )
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    probe.info_pub.publish(camera_info(640, 480))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    msg = rgb_msg(scene_a_rgb, 7, encoding="bgr8")
    probe.image_pub.publish(msg)
    assert spin_until(
        executor,
        lambda: (
            probe.got["depth/relative"]
            and probe.got["depth/colored"]
            and probe.got["depth/camera_info"]
        ),
    )
    out = probe.got["depth/relative"][0]
    assert out.encoding == "32FC1" and (out.height, out.width) == (480, 640)
    assert out.header.stamp.sec == 7 and out.header.stamp.nanosec == 250
    assert out.header.frame_id == "camera_optical_frame"
    assert golden("dpt_hybrid").relative_error("final", image_msg_to_array(out)) <= 1e-4
    colored = probe.got["depth/colored"][0]
    assert colored.encoding == "rgb8" and colored.header.stamp.sec == 7
    # A relative model without calibration never publishes metric depth or points.
    assert not probe.got["depth/image"] and not probe.got["points"]
    assert "depth/image" not in node.pipeline.topics()


@pytest.mark.smoke  # the fast tier's representative of its folder
def test_metric_depth_cloud_and_labels(ros):
    """Calibrated relative depth + segmentation: every topic, one stamp, REP-118 and REP-103."""
    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.random_weights", value=True),
        Parameter("segmentation.model_type", value="dpt_hybrid_ade20k"),
        Parameter("segmentation.random_weights", value=True),
        Parameter("relative_depth.scale", value=0.5),
        Parameter("relative_depth.shift", value=0.2),
        Parameter("cloud.stride", value=2),
    )
    wait_for_subscribers(executor, probe)
    rgb = small_image(48, 64)
    probe.info_pub.publish(camera_info(64, 48))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(rgb, 11))
    assert spin_until(
        executor,
        lambda: (
            all(probe.got[t] for t in Probe.TOPICS if t != "depth/relative")
            and probe.got["depth/relative"]
        ),
    )
    assert not probe.got["depth/confidence"] and not probe.got["depth/sky"]  # DA3's only
    for topic in Probe.TOPICS:
        msgs = probe.got[topic]
        assert msgs[0].header.stamp.sec == 11, topic
        assert msgs[0].header.frame_id == "camera_optical_frame", topic
    relative = image_msg_to_array(probe.got["depth/relative"][0])
    depth = image_msg_to_array(probe.got["depth/image"][0])
    assert probe.got["depth/image"][0].encoding == "32FC1"
    # The same calibration; depth is upsampled bilinearly in inverse depth from the
    # network's resolution, depth/relative bicubically: they differ by the interpolation.
    np.testing.assert_allclose(depth, 1.0 / (0.5 * relative + 0.2), rtol=0.02)
    labels = image_msg_to_array(probe.got["segmentation/labels"][0])
    assert probe.got["segmentation/labels"][0].encoding == "mono8"
    assert labels.shape == (48, 64) and labels.min() >= 1 and labels.max() <= 150
    info = probe.got["depth/camera_info"][0]
    assert (info.width, info.height) == (64, 48)

    cloud = probe.got["points"][0]
    assert (cloud.height, cloud.width) == (24, 32) and not cloud.is_dense
    fields = pointcloud2_to_arrays(cloud)
    assert {"x", "y", "z", "rgb", "label"} <= set(fields)
    fx = 0.8 * 64
    cx, cy = 31.5, 23.5
    for i, j in [(0, 0), (5, 7), (23, 31)]:
        v, u = 2 * i, 2 * j
        z = depth[v, u]
        np.testing.assert_allclose(fields["z"][i, j], z, rtol=1e-6)
        np.testing.assert_allclose(fields["x"][i, j], (u - cx) * z / fx, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fields["y"][i, j], (v - cy) * z / fx, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fields["label"], labels[::2, ::2])


def test_bad_messages_are_survived(ros):
    """Malformed images and a camera_info of another size are rejected; the node keeps going."""
    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.random_weights", value=True),
        Parameter("relative_depth.scale", value=1.0),
        Parameter("relative_depth.shift", value=0.5),
    )
    wait_for_subscribers(executor, probe)
    probe.info_pub.publish(camera_info(640, 480))  # another resolution than the images
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)

    bad_step = rgb_msg(small_image(), 1)
    bad_step.step = 10
    unknown = rgb_msg(small_image(), 2)
    unknown.encoding = "weird16"
    empty = Image(encoding="rgb8")
    for msg in (bad_step, unknown, empty):
        probe.image_pub.publish(msg)
        assert spin_until(
            executor,
            lambda n=msg: node.status()["rejected"] != "0" and not node.cameras[0].frame_waiting,
            10,
        )
        time.sleep(0.2)
        executor.spin_once(timeout_sec=0.05)
    assert int(node.status()["rejected"]) == 3
    assert "rgb8" in node.status()["last_error"] or "step" in node.status()["last_error"]

    probe.image_pub.publish(rgb_msg(small_image(), 3))
    assert spin_until(executor, lambda: probe.got["depth/image"])
    assert probe.got["depth/image"][0].header.stamp.sec == 3
    # camera_info of another resolution: no cloud, no rescaled camera_info, a warning.
    spin_until(executor, lambda: False, 0.5)
    assert not probe.got["points"] and not probe.got["depth/camera_info"]
    assert "camera_info" in node.status()["last_error"]


def test_thin_frames_are_rejected_before_inference(ros):
    """A 4000x100 frame would be a 2560x64 network input for a 64x64 network (40:1): it
    is rejected with the reason and counted, the model never sees it, and the node goes
    on with the next frame."""
    executor, add = ros
    node = add(DptNode(parameter_overrides=FAST + [Parameter("depth.random_weights", value=True)]))
    spy = ForwardSpy(node.pipeline.depth)
    warmed_up = len(spy.batch_sizes)
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    probe.image_pub.publish(rgb_msg(small_image(100, 4000), 1))
    assert spin_until(executor, lambda: node.status()["rejected"] == "1", 20)
    assert "2560x64 network input, 40.0:1" in node.status()["last_error"]
    assert len(spy.batch_sizes) == warmed_up  # no forward pass for it
    probe.image_pub.publish(rgb_msg(small_image(), 2))
    assert spin_until(executor, lambda: probe.got["depth/relative"])
    assert probe.got["depth/relative"][0].header.stamp.sec == 2


def test_compressed_input(ros):
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + [
                Parameter("depth.random_weights", value=True),
                Parameter("input_transport", value="compressed"),
            ]
        )
    )
    probe = Probe(add, compressed=True)
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() > 0, 10)
    rgb = small_image()
    msg = CompressedImage(format="png")
    msg.header.stamp.sec = 21
    msg.data = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()
    probe.image_pub.publish(msg)
    assert spin_until(executor, lambda: probe.got["depth/relative"])
    assert probe.got["depth/relative"][0].header.stamp.sec == 21
    # Published after the good frame was processed, so the one-slot queue cannot drop it.
    probe.image_pub.publish(CompressedImage(format="jpeg", data=b"\xff\xd8garbage"))
    assert spin_until(executor, lambda: node.status()["rejected"] == "1", 10)


def test_newest_frame_wins_and_diagnostics(ros):
    """Frames arriving while the model is busy are dropped; the newest one is processed."""
    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.random_weights", value=True),
        Parameter("max_rate", value=2.0),
        Parameter("diagnostics_period", value=0.5),
    )
    wait_for_subscribers(executor, probe)
    for sec in range(1, 9):
        probe.image_pub.publish(rgb_msg(small_image(seed=sec), sec))
        executor.spin_once(timeout_sec=0.01)
    assert spin_until(
        executor, lambda: any(m.header.stamp.sec == 8 for m in probe.got["depth/relative"]), 20
    )
    spin_until(executor, lambda: False, 0.7)
    stamps = [m.header.stamp.sec for m in probe.got["depth/relative"]]
    status = node.status()
    assert int(status["received"]) == 8
    assert len(stamps) < 8 and stamps[-1] == 8 and stamps == sorted(stamps)
    assert int(status["dropped"]) == 8 - len(stamps)
    assert spin_until(executor, lambda: probe.diagnostics, 5)
    keys = {kv.key for kv in probe.diagnostics[-1].status[0].values}
    assert {
        "input_rate_hz",
        "processed_rate_hz",
        "dropped",
        "latency_ms_median",
        "device",
        "models",
    } <= keys


def test_cameras_publish_in_their_own_namespace_with_their_own_header(ros):
    """Two cameras of different sizes: each one's outputs go to its namespace with its
    header and size; a corrupt frame of one camera does not hold up the other's."""
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + [
                Parameter("depth.random_weights", value=True),
                Parameter("cameras", value=["front", "/rear_cam/"]),
            ]
        )
    )
    front, rear = Probe(add, namespace="/front"), Probe(add, namespace="/rear_cam")
    for probe in (front, rear):
        wait_for_subscribers(executor, probe)
    front.info_pub.publish(camera_info(64, 48, "front_optical"))
    rear.info_pub.publish(camera_info(40, 32, "rear_optical"))
    assert spin_until(executor, lambda: all(c.camera_info for c in node.cameras), 5)
    spy = ForwardSpy(node.pipeline.depth)
    spy.go.clear()
    try:
        front.image_pub.publish(rgb_msg(small_image(48, 64), 1, "front_optical"))
        assert spin_until(executor, lambda: spy.batch_sizes, 10)
        # The worker is busy with front's first frame: a corrupt front frame and a
        # good rear frame wait for the same cycle.
        corrupt = rgb_msg(small_image(48, 64), 2, "front_optical")
        corrupt.encoding = "weird16"
        front.image_pub.publish(corrupt)
        rear.image_pub.publish(rgb_msg(small_image(32, 40, seed=1), 3, "rear_optical"))
        assert spin_until(
            executor,
            lambda: (
                node.status()["front.received"] == "2"
                and node.status()["/rear_cam.received"] == "1"
            ),
            10,
        )
    finally:
        spy.go.set()
    topics = ("depth/relative", "depth/colored", "depth/camera_info")
    assert spin_until(executor, lambda: all(p.got[t] for p in (front, rear) for t in topics))
    for probe, sec, frame_id, (h, w) in (
        (front, 1, "front_optical", (48, 64)),
        (rear, 3, "rear_optical", (32, 40)),
    ):
        for topic in topics:
            msg = probe.got[topic][0]
            assert (msg.header.stamp.sec, msg.header.frame_id) == (sec, frame_id), topic
            assert (msg.height, msg.width) == (h, w), topic
    status = node.status()
    assert spy.batch_sizes == [1, 1]  # the corrupt frame never reached the model
    assert (status["front.rejected"], status["front.processed"]) == ("1", "1")
    assert (status["/rear_cam.rejected"], status["/rear_cam.processed"]) == ("0", "1")
    assert status["rejected"] == "1" and "front: image rejected" in status["last_error"]
    outputs = {p.topic_name for p in node.publishers if "/depth/" in p.topic_name}
    assert outputs and all(t.startswith(("/front/depth/", "/rear_cam/depth/")) for t in outputs)


def test_same_size_cameras_share_one_forward_pass(ros):
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + [
                Parameter("depth.random_weights", value=True),
                Parameter("cameras", value=["left", "right"]),
            ]
        )
    )
    left, right = Probe(add, namespace="/left"), Probe(add, namespace="/right")
    for probe in (left, right):
        wait_for_subscribers(executor, probe)
    left_rgb, right_rgb = small_image(seed=1), small_image(seed=2)
    spy = ForwardSpy(node.pipeline.depth)
    spy.go.clear()
    try:
        left.image_pub.publish(rgb_msg(left_rgb, 1, "left_optical"))
        assert spin_until(executor, lambda: spy.batch_sizes == [1], 10)
        # While the worker is busy, one frame of each camera arrives.
        left.image_pub.publish(rgb_msg(left_rgb, 2, "left_optical"))
        right.image_pub.publish(rgb_msg(right_rgb, 3, "right_optical"))
        assert spin_until(
            executor,
            lambda: (
                node.status()["left.received"] == "2" and node.status()["right.received"] == "1"
            ),
            10,
        )
    finally:
        spy.go.set()
    assert spin_until(
        executor, lambda: len(left.got["depth/relative"]) == 2 and right.got["depth/relative"]
    )
    assert spy.batch_sizes == [1, 2]
    # Each camera got its own frame's result back from the shared batch.
    for probe, rgb, sec in ((left, left_rgb, 2), (right, right_rgb, 3)):
        msg = probe.got["depth/relative"][-1]
        assert msg.header.stamp.sec == sec
        alone = node.pipeline.depth.predict(rgb)
        np.testing.assert_allclose(image_msg_to_array(msg), alone, atol=1e-4 * np.abs(alone).max())


def test_runtime_parameter_validation(ros):
    executor, add = ros
    node = add(DptNode(parameter_overrides=FAST + [Parameter("depth.random_weights", value=True)]))
    ok = node.set_parameters([Parameter("cloud.stride", value=4)])[0]
    assert ok.successful and node.pipeline.options.cloud_stride == 4
    bad = node.set_parameters([Parameter("output_size", value="huge")])[0]
    assert not bad.successful and "output_size" in bad.reason
    ro = node.set_parameters([Parameter("device", value="cuda")])[0]
    assert not ro.successful  # read-only: needs a model reload


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ([Parameter("depth.model_type", value="dpt_nope")], "dpt_hybrid_nyu"),
        (
            [
                Parameter("depth.model_type", value=""),
                Parameter("segmentation.model_type", value=""),
            ],
            "nothing to run",
        ),
        (
            [Parameter("network_width", value=100)],
            "network_width=100: dpt_hybrid needs positive multiples of 32",
        ),
        ([Parameter("depth.model_type", value="dpt_hybrid_ade20k")], "not a depth model"),
        (
            [Parameter("cameras", value=["front", "front/"])],
            r"cameras\[1\]='front/' repeats cameras\[0\]='front'",
        ),
        ([Parameter("cameras", value=["front", ""])], r"cameras\[1\]='' names no camera namespace"),
        (
            [Parameter("cameras", value=["front", "/front"])],
            "'front' and '/front' are the same camera",
        ),
        ([Parameter("cameras", value=["2nd_camera"])], "not a valid ROS namespace"),
        ([Parameter("cameras", value="front")], "invalid parameters: cameras"),
        (
            [Parameter("backend", value="auto"), Parameter("depth.engine", value="x.onnx")],
            r"depth\.engine 'x\.onnx' needs backend onnxruntime or tensorrt, not auto",
        ),
        ([Parameter("engine_build", value="soon")], "engine_build='soon' is not one of"),
        (
            [
                Parameter("backend", value="onnxruntime"),
                Parameter("compile", value="default"),
                Parameter("depth.engine", value="x.onnx"),
            ],
            "applies to backend torch only",
        ),
        ([Parameter("compile", value="fast")], "compile='fast' is not one of"),
        ([Parameter("warmup_width", value=0)], "warmup_width and warmup_height"),
    ],
)
def test_invalid_parameters_are_fatal_with_a_clear_message(ros, overrides, needle):
    with pytest.raises(ValueError, match=needle):
        DptNode(
            parameter_overrides=FAST + [Parameter("depth.random_weights", value=True)] + overrides
        )


@pytest.mark.parametrize(
    "yaml_value, expected",
    [
        (None, ()),
        ("[]", ()),
        ('["front", "/robot/rear_camera"]', ["front", "/robot/rear_camera"]),
    ],
)
def test_cameras_from_a_params_file(tmp_path, yaml_value, expected):
    """The string list is declared by type: unset or [] is the default (no cameras), and a
    list of strings from a params file is accepted (an empty-list default would not)."""
    args = []
    if yaml_value is not None:
        path = tmp_path / "params.yaml"
        path.write_text(f"/**:\n  ros__parameters:\n    cameras: {yaml_value}\n")
        args = ["--ros-args", "--params-file", str(path)]
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    try:
        node = Node("dpt_node", context=context)
        try:
            assert declare(node, PARAM_DEFS["cameras"]) == expected
            assert node.describe_parameter("cameras").type == Parameter.Type.STRING_ARRAY.value
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_latest_frame_queue():
    q = LatestFrame()
    assert q.get(timeout=0.0) is None
    for i in range(3):
        q.put(i)
    assert q.get(timeout=0.0) == 2 and q.dropped == 2
    q.close()
    assert q.get(timeout=1.0) is None

    wakeup = threading.Condition()
    a, b = LatestFrame(wakeup), LatestFrame(wakeup)
    assert LatestFrame.take_any([a, b], timeout=0.0) == [None, None]
    b.put("b1")
    b.put("b2")
    assert LatestFrame.take_any([a, b], timeout=1.0) == [None, "b2"] and b.dropped == 1
    with pytest.raises(ValueError, match="shared condition"):
        LatestFrame.take_any([a, LatestFrame()], timeout=0.0)


def test_onnxruntime_backend_through_the_node(ros, tmp_path, det_checkpoint):
    """backend: onnxruntime with depth.engine: the node runs the exported file and its
    depth matches the torch predictor resized to the engine's input."""
    from dpt_ros.runtime.export import export_onnx

    weights = det_checkpoint("dpt_hybrid")
    engine = export_onnx(
        "dpt_hybrid", tmp_path / "h.onnx", weights=weights, width=64, height=64, check=False
    ).path
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=[
                Parameter("device", value="cpu"),
                Parameter("backend", value="onnxruntime"),
                Parameter("depth.engine", value=str(engine)),
                Parameter("warmup_width", value=64),
                Parameter("warmup_height", value=48),
            ]
        )
    )
    assert node.pipeline.depth.backend == "onnxruntime" and node.pipeline.depth.model is None
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    rgb = small_image()
    probe.image_pub.publish(rgb_msg(rgb, 31))
    assert spin_until(executor, lambda: probe.got["depth/relative"])
    got = image_msg_to_array(probe.got["depth/relative"][0])
    want = Predictor(
        "dpt_hybrid",
        weights=weights,
        device="cpu",
        backend="torch",
        network_size=(64, 64),
        keep_aspect_ratio=False,
    ).predict(rgb)
    assert got.shape == (48, 64)
    assert np.abs(got - want).max() <= 5e-4 * np.abs(want).max()


def test_missing_engine_file_is_fatal_with_its_name(ros, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        DptNode(
            parameter_overrides=[
                Parameter("device", value="cpu"),
                Parameter("backend", value="onnxruntime"),
                Parameter("depth.engine", value=str(tmp_path / "nope.onnx")),
            ]
        )


def _auto_node(add, backend: str = "auto", engine_build: str = "eager") -> DptNode:
    """A node building engines of ``backend`` (auto: the default), warmed up for 64x48
    images."""
    params = [p for p in FAST if p.name != "backend"] + [
        Parameter("backend", value=backend),
        Parameter("engine_build", value=engine_build),
        Parameter("depth.random_weights", value=True),
        Parameter("warmup_width", value=64),
        Parameter("warmup_height", value=48),
        Parameter("diagnostics_period", value=0.2),
    ]
    return add(DptNode(parameter_overrides=params))


def test_eager_build_makes_the_engine_at_start_and_says_so(ros, tmp_path, monkeypatch):
    """engine_build: eager: the warm-up builds the engine for the warm-up size,
    /diagnostics names it, and frames of that size run on it with the torch
    predictor's result. (onnxruntime by name: auto keeps PyTorch where the build
    measured it faster, which on this CPU it may be.)"""
    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path))
    executor, add = ros
    node = _auto_node(add, backend="onnxruntime")
    depth = node.pipeline.depth
    assert depth.backend == "onnxruntime" and depth.engine_cached is False
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    rgb = small_image()
    probe.image_pub.publish(rgb_msg(rgb, 5))
    assert spin_until(executor, lambda: probe.got["depth/relative"] and probe.diagnostics)
    values = {kv.key: kv.value for kv in probe.diagnostics[-1].status[0].values}
    assert values["backend"] == "dpt_hybrid onnxruntime (engine built this start)"
    got = image_msg_to_array(probe.got["depth/relative"][0])
    want = Predictor(
        "dpt_hybrid", device="cpu", backend="torch", random_weights=True, network_size=(64, 64)
    ).predict(rgb)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_lazy_build_serves_torch_at_once_then_switches(ros, tmp_path, monkeypatch, caplog):
    """engine_build: lazy (the default): the node starts without waiting for its engine
    build, PyTorch serves the first frames, and the engine takes over when built; the
    switch is logged and /diagnostics' backend says what runs at each moment. (A start
    that built its engine eagerly kept dpt_hybrid from publishing for minutes.)"""
    from dpt_ros.runtime import engine_cache

    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path))
    release = threading.Event()
    real_build = engine_cache.run_build

    def held_build(request):  # the build starts once the test has seen PyTorch serve
        assert release.wait(300)
        real_build(request)

    monkeypatch.setattr(engine_cache, "run_build", held_build)
    executor, add = ros
    params = [p for p in FAST if p.name != "backend"] + [
        Parameter("backend", value="onnxruntime"),
        Parameter("depth.random_weights", value=True),
        Parameter("warmup_width", value=64),
        Parameter("warmup_height", value=48),
        Parameter("diagnostics_period", value=0.2),
    ]
    node = add(DptNode(parameter_overrides=params))  # default engine_build: lazy
    depth = node.pipeline.depth
    assert node.config.depth.engine_build == "lazy"
    assert depth.backend == "torch"
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    rgb = small_image()

    def backend_after(sec: int) -> str:
        probe.got["depth/relative"].clear()
        probe.diagnostics.clear()
        probe.image_pub.publish(rgb_msg(rgb, sec))
        assert spin_until(executor, lambda: probe.got["depth/relative"])
        n = len(probe.diagnostics)
        assert spin_until(executor, lambda: len(probe.diagnostics) > n)
        return {kv.key: kv.value for kv in probe.diagnostics[-1].status[0].values}["backend"]

    assert backend_after(7) == "dpt_hybrid torch (onnxruntime engine building)"
    with caplog.at_level(logging.WARNING, logger="dpt_ros"):
        release.set()
        depth.runtime.wait()
    assert any("from PyTorch to its onnxruntime engine" in r.getMessage() for r in caplog.records)
    assert backend_after(8) == (
        "dpt_hybrid onnxruntime (engine built this start, switched from torch)"
    )
    got = image_msg_to_array(probe.got["depth/relative"][0])
    want = Predictor(
        "dpt_hybrid", device="cpu", backend="torch", random_weights=True, network_size=(64, 64)
    ).predict(rgb)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_node_starts_on_torch_when_no_engine_can_be_built(ros, tmp_path, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DPT_ROS_CACHE", str(blocked))
    executor, add = ros
    node = _auto_node(add)
    assert node.pipeline.depth.backend == "torch"
    assert "cannot build or load the onnxruntime engine" in node.pipeline.depth.runtime.failure
    assert node.status()["backend"] == "dpt_hybrid torch"
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    probe.image_pub.publish(rgb_msg(small_image(), 6))
    assert spin_until(executor, lambda: probe.got["depth/relative"])
