"""Depth Anything 3's outputs through the frame pipeline, the node and the bag tool:
``depth/confidence``, ``depth/sky``, metres from camera_info, the cloud's confidence
field and ``cloud.min_confidence``, against the reference's goldens (made by
``scripts/make_da3_goldens.py``) on the network's grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from goldens import FIXTURES, Golden
from helpers import (
    camera_info,
    rgb_msg,
    small_image,
    spin_until,
    start_node,
    wait_for_subscribers,
)
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

SMALL = "depth_anything_3_small"
METRIC = "depth_anything_3_metric_large"
#: End to end against the goldens, relative to the golden's maximum (the issue's bound).
RTOL = 1e-3
#: The camera of the metric golden (its ``intrinsics_image``), for scene_a's 640x480.
FX, FY, CX, CY = 600.0, 580.0, 319.5, 239.5


def da3_golden(model_type: str, process_res: int) -> Golden:
    return Golden.load(
        FIXTURES / "compact" / "da3" / f"{model_type}_{process_res}_scene_a.compact.npz"
    )


def hub_file(detweights, fixtures_dir, model_type: str, folder) -> str:
    """``model_type``'s deterministic weights as the hub's model.safetensors."""
    from safetensors.torch import save_file

    layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{model_type}.json")
    state = detweights.deterministic_state_dict(layout)
    path = folder / "model.safetensors"
    save_file({HUB_PREFIX + k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def small_file(module_tmp, detweights, fixtures_dir):
    return hub_file(detweights, fixtures_dir, SMALL, module_tmp("da3_small"))


def scene_camera_info(p_and_k: bool = True) -> CameraInfo:
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    if p_and_k:
        info.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
        info.p = [FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def tiny(model_type: str) -> Predictor:
    """Random weights at a 56-pixel network: the plumbing, not the numbers."""
    return Predictor(
        model_type,
        device="cpu",
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(56, 56),
    )


def arrays(out) -> dict[str, np.ndarray]:
    return {
        topic: image_msg_to_array(msg)
        for topic, msg in out.messages.items()
        if topic.startswith("depth/") and topic not in ("depth/camera_info", "depth/colored")
    }


def check_small(golden: Golden, relative: np.ndarray, confidence: np.ndarray) -> None:
    """depth/relative is the inverse of the reference's depth; depth/confidence is its
    confidence, both on its grid."""
    assert golden.relative_error("depth", 1.0 / relative) <= RTOL
    assert golden.relative_error("confidence", confidence) <= RTOL
    assert confidence.min() >= 1.0


# --------------------------------------------------------------------------- pipeline


@pytest.mark.fidelity
@pytest.mark.parametrize("res", (280, 504))
def test_pipeline_matches_the_small_goldens(small_file, scene_a_rgb, res):
    predictor = Predictor(
        SMALL, device="cpu", weights=small_file, backend="torch", network_size=(res, res)
    )
    pipeline = FramePipeline(predictor, None, PipelineOptions(output_size="network"))
    assert "depth/confidence" in pipeline.topics() and "depth/sky" not in pipeline.topics()
    header = Header(frame_id="cam_optical")
    header.stamp.sec = 7
    out = pipeline.process(scene_a_rgb, header, scene_camera_info())
    got = arrays(out)
    assert set(got) == {"depth/relative", "depth/confidence", "depth/confidence_mono8"}
    check_small(da3_golden(SMALL, res), got["depth/relative"], got["depth/confidence"])
    msg = out.messages["depth/confidence"]
    assert msg.encoding == "32FC1" and msg.header == header
    info = out.messages["depth/camera_info"]
    assert (info.height, info.width) == got["depth/relative"].shape


@pytest.mark.fidelity
@pytest.mark.slow
def test_pipeline_metric_matches_the_golden_and_needs_camera_info(
    detweights, fixtures_dir, scene_a_rgb, tmp_path
):
    """The full ViT-L at 280 (210x280, not square): metres from the camera_info's P,
    sky +Inf (REP-118 "too far") where the golden fills it; no camera_info, or one with
    P and K zero: no metres, the reason given, the sky still published."""
    weights = hub_file(detweights, fixtures_dir, METRIC, tmp_path)
    predictor = Predictor(
        METRIC, device="cpu", weights=weights, backend="torch", network_size=(280, 280)
    )
    pipeline = FramePipeline(predictor, None, PipelineOptions(output_size="network"))
    golden = da3_golden(METRIC, 280)
    out = pipeline.process(scene_a_rgb, Header(frame_id="cam"), scene_camera_info())
    assert out.no_metres == "" and not out.warnings
    got = arrays(out)
    assert set(got) == {"depth/image", "depth/sky"}
    metres, sky = got["depth/image"], got["depth/sky"]
    index, want_sky = golden.samples("sky")
    is_sky = want_sky >= 0.3
    clear = np.abs(want_sky - 0.3) > 1e-3  # the threshold's own neighbourhood aside
    assert 0.2 < is_sky.mean() < 0.8
    np.testing.assert_array_equal(sky[index][clear], np.where(is_sky, 255, 0)[clear])
    # Metres where our sky mask (equal to the reference's, above) says ground; the
    # golden's sky holds its filled quantile where ours is +Inf.
    index, want_metres = golden.samples("metric_depth")
    ground = sky[index] == 0
    assert 0.2 < ground.mean() < 0.8
    error = np.abs(metres[index][ground] - want_metres[ground]).max()
    assert error / np.abs(want_metres).max() <= RTOL
    assert np.all(np.isposinf(metres[index][~ground]))
    # The cloud drops the sky (too far), keeps the rest.
    assert "points" in out.messages

    for info, why in (
        (None, "no camera_info"),
        (scene_camera_info(False), "camera_info rejected: camera_info K is all zero"),
    ):
        out = pipeline.process(scene_a_rgb, Header(frame_id="cam"), info)
        assert why in out.no_metres and "no metres" in out.no_metres
        assert set(arrays(out)) == {"depth/sky"} and "points" not in out.messages
        np.testing.assert_array_equal(arrays(out)["depth/sky"], sky)


def test_metric_frames_with_and_without_camera_info_share_a_batch_call():
    """Frames with intrinsics and without are run apart (metres per frame), each
    getting its own outputs, in order."""
    pipeline = FramePipeline(tiny(METRIC), None)
    rgbs = [small_image(48, 64, seed) for seed in range(3)]
    infos = [camera_info(64, 48), None, camera_info(64, 48)]
    outs = pipeline.process_batch(rgbs, [Header(frame_id="c")] * 3, infos)
    assert ["depth/image" in o.messages for o in outs] == [True, False, True]
    assert [bool(o.no_metres) for o in outs] == [False, True, False]
    alone = pipeline.process(rgbs[2], Header(frame_id="c"), infos[2])
    np.testing.assert_allclose(
        arrays(outs[2])["depth/image"], arrays(alone)["depth/image"], rtol=1e-5
    )


def test_the_cloud_carries_confidence_and_drops_unsure_points():
    options = PipelineOptions(relative_depth_scale=1.0, cloud_stride=2)
    pipeline = FramePipeline(tiny(SMALL), None, options)
    rgb, info = small_image(48, 64), camera_info(64, 48)
    out = pipeline.process(rgb, Header(frame_id="c"), info)
    confidence = arrays(out)["depth/confidence"]
    fields = pointcloud2_to_arrays(out.messages["points"])
    assert [f.name for f in out.messages["points"].fields] == ["x", "y", "z", "rgb", "confidence"]
    np.testing.assert_array_equal(fields["confidence"], confidence[::2, ::2])
    assert np.isfinite(fields["z"]).all()
    threshold = float(np.median(confidence[::2, ::2]))
    pipeline.options = PipelineOptions(
        relative_depth_scale=1.0, cloud_stride=2, cloud_min_confidence=threshold
    )
    fields = pointcloud2_to_arrays(pipeline.process(rgb, Header(), info).messages["points"])
    unsure = fields["confidence"] < threshold
    assert 0 < unsure.sum() < unsure.size
    assert np.isnan(fields["z"][unsure]).all() and np.isfinite(fields["z"][~unsure]).all()


@pytest.mark.parametrize("value", (float("nan"), -0.5))
def test_a_nan_or_negative_confidence_threshold_is_refused(value):
    from dpt_ros.node.params import validate

    assert any(
        "cloud_min_confidence" in p for p in PipelineOptions(cloud_min_confidence=value).problems()
    )
    assert any("cloud.min_confidence" in p for p in validate({"cloud.min_confidence": value}))


def test_mono_sky_is_infinitely_far_in_relative_depth():
    """The mono type's sky is inverse depth 0 in depth/relative (the reference fills it
    with a quantile; dpt-ros predict keeps that, the pipeline does not)."""
    predictor = tiny("depth_anything_3_mono_large")
    pipeline = FramePipeline(predictor, None)
    assert "depth/sky" in pipeline.topics() and "depth/relative" in pipeline.topics()
    out = pipeline.process(small_image(48, 64), Header(), None)
    got = arrays(out)
    # Random weights may give no sky: force the check where there is some.
    sky = got["depth/sky"] == 255
    assert set(np.unique(got["depth/sky"])) <= {0, 255}
    if sky.any():
        assert (got["depth/relative"][sky] < got["depth/relative"][~sky].min()).all()


# --------------------------------------------------------------------------- node


@pytest.mark.fidelity
def test_node_publishes_the_small_goldens(ros, small_file, scene_a_rgb):
    """dpt_node over rclpy at 280 on scene_a: depth/relative and depth/confidence on
    the network's grid within 1e-3 of the reference, and a cloud with a confidence
    field, all with the image's header."""
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.model_type", value=SMALL),
        Parameter("depth.weights", value=small_file),
        Parameter("network_width", value=280),
        Parameter("network_height", value=280),
        Parameter("output_size", value="network"),
        Parameter("relative_depth.scale", value=1.0),
        Parameter("cloud.min_confidence", value=1.5),
    )
    wait_for_subscribers(executor, probe)
    probe.info_pub.publish(scene_camera_info())
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(scene_a_rgb, 21))
    wanted = ("depth/relative", "depth/confidence", "points")
    assert spin_until(executor, lambda: all(probe.got[t] for t in wanted), 120)
    assert not probe.got["depth/sky"]
    for topic in wanted:
        assert probe.got[topic][0].header.stamp.sec == 21, topic
    relative = image_msg_to_array(probe.got["depth/relative"][0])
    confidence = image_msg_to_array(probe.got["depth/confidence"][0])
    check_small(da3_golden(SMALL, 280), relative, confidence)
    fields = pointcloud2_to_arrays(probe.got["points"][0])
    np.testing.assert_array_equal(fields["confidence"], confidence)
    assert np.isnan(fields["z"][confidence < 1.5]).all()


def _diagnostic(probe, key: str) -> str | None:
    for array in reversed(probe.diagnostics):
        for status in array.status:
            for kv in status.values:
                if kv.key == key:
                    return kv.value
    return None


def test_node_metric_da3_without_camera_info_says_why_once(ros, capfd):
    """No camera_info: depth/sky only, one warning for the camera however many frames,
    and /diagnostics says why (WARN); with camera_info the metres come."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from rclpy.parameter import Parameter

    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.model_type", value=METRIC),
        Parameter("depth.random_weights", value=True),
        Parameter("network_width", value=56),
        Parameter("network_height", value=56),
        Parameter("diagnostics_period", value=0.2),
    )
    wait_for_subscribers(executor, probe)
    rgb = small_image(48, 64)
    for sec in range(3):
        probe.image_pub.publish(rgb_msg(rgb, sec + 1))
        assert spin_until(executor, lambda n=sec + 1: len(probe.got["depth/sky"]) >= n, 30)
    assert not probe.got["depth/image"] and not probe.got["points"]
    assert spin_until(
        executor, lambda: (_diagnostic(probe, "metric_depth") or "").startswith("none:"), 10
    )
    assert "no camera_info" in _diagnostic(probe, "metric_depth")
    (status,) = probe.diagnostics[-1].status
    assert status.level == DiagnosticStatus.WARN and "publishes no metres" in status.message
    err = capfd.readouterr().err
    assert err.count("publishes no metres") == 1, err

    probe.info_pub.publish(camera_info(64, 48))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    probe.image_pub.publish(rgb_msg(rgb, 9))
    assert spin_until(executor, lambda: bool(probe.got["depth/image"]), 30)
    depth = image_msg_to_array(probe.got["depth/image"][0])
    assert depth.dtype == np.float32 and (np.isfinite(depth) | np.isposinf(depth)).all()
    assert spin_until(executor, lambda: _diagnostic(probe, "metric_depth") == "published", 10)


# --------------------------------------------------------------------------- bag


@pytest.mark.bag
@pytest.mark.fidelity
def test_bag_writes_the_small_goldens(small_file, scene_a_rgb, tmp_path):
    """dpt-ros bag at 280 on a bag of scene_a: depth/relative and depth/confidence
    within 1e-3 of the reference, at the image's stamps."""
    from helpers import read_bag, run_bag
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import Image

    store = get_typestore(Stores.ROS2_HUMBLE)
    inp = tmp_path / "in"
    with Writer(inp, version=8) as writer:
        info_conn = writer.add_connection(
            "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        image_conn = writer.add_connection(
            "/cam/image_raw", "sensor_msgs/msg/Image", typestore=store
        )
        writer.write(info_conn, 1, serialize_message(scene_camera_info()))
        writer.write(image_conn, 2, serialize_message(rgb_msg(scene_a_rgb, 3)))
    out = tmp_path / "out"
    rc = run_bag(
        str(inp), "-o", str(out), "--image-topic", "/cam/image_raw", "--depth-model", SMALL,
        "--depth-weights", small_file, "--network-size", "280x280", "--backend", "torch",
        "--output-size", "network", "-q",
    )  # fmt: skip
    assert rc == 0
    written = read_bag(out)
    ((_, _, raw_relative),) = written["/cam/depth/relative"]
    ((_, _, raw_confidence),) = written["/cam/depth/confidence"]
    relative = image_msg_to_array(deserialize_message(raw_relative, Image))
    confidence = image_msg_to_array(deserialize_message(raw_confidence, Image))
    check_small(da3_golden(SMALL, 280), relative, confidence)
    assert not math.isnan(float(relative.mean()))


@pytest.mark.bag
@pytest.mark.parametrize("value", ("nan", "-1"))
def test_bag_refuses_a_bad_confidence_threshold(capsys, tmp_path, value):
    from helpers import one_error_line, run_bag, write_bag

    topic = write_bag(tmp_path / "in")
    rc = run_bag(
        str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--image-topic", topic,
        "--cloud-min-confidence", value, "--random-weights", "-q",
    )  # fmt: skip
    one_error_line(rc, capsys.readouterr().err, "--cloud-min-confidence")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- bench


def test_bench_times_da3_beside_the_reference_where_it_imports(monkeypatch, capsys):
    """``dpt-ros bench`` on a Depth Anything 3 type: the reference network beside ours
    in fp32 where ``depth_anything_3`` imports (a stand-in here: it is never installed
    with the package), and what to install where it does not."""
    import json
    import sys
    import types

    import torch

    from dpt_ros.cli.main import main

    argv = ["bench", "--model-type", SMALL, "--device", "cpu", "--camera-size", "64x48"]
    argv += ["--network-size", "56x56", "--backend", "torch", "--iters", "1", "--warmup", "0"]
    monkeypatch.setitem(sys.modules, "depth_anything_3", None)  # not installed
    assert main([*argv, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["reference"].startswith("not installed") and figures["network_input"] == "56x42"

    calls: list[tuple[int, ...]] = []

    class Reference(torch.nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape))
            return {"depth": x[:, :, 0]}

    cfg = types.ModuleType("depth_anything_3.cfg")
    cfg.load_config = lambda path: path  # type: ignore[attr-defined]
    cfg.create_object = lambda config: Reference()  # type: ignore[attr-defined]
    registry = types.ModuleType("depth_anything_3.registry")
    registry.MODEL_REGISTRY = {"da3-small": "da3-small.yaml"}  # type: ignore[attr-defined]
    for name, module in (
        ("depth_anything_3", types.ModuleType("depth_anything_3")),
        ("depth_anything_3.cfg", cfg),
        ("depth_anything_3.registry", registry),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    assert main([*argv, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "da3-small" in figures["reference"]
    assert figures["speedup_vs_reference_float32"] > 0
    assert calls and calls[0] == (1, 1, 3, 42, 56)  # (B, N views, 3, h, w)
