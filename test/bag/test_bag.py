"""``dpt-ros bag`` on small bags written here with rosbags: outputs, timing, errors,
interrupted runs. Models use random weights and a 64x64 network (fidelity is tested
elsewhere); each model is built once for the module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    N_FRAMES,
    NET,
    PERIOD,
    T0,
    TIE_FRAME,
    H,
    W,
    check_copied,
    frame_rgb,
    image_msg,
    one_error_line,
    read_bag,
    run_bag,
    tree_hash,
    write_bag,
    write_ros1_bag,
)
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from dpt_ros.cli.bag import job as bag_tool
from dpt_ros.models.geometry import relative_to_metric, upsample_depth
from dpt_ros.models.options import PredictorOptions
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

_PREDICTORS: dict[tuple, object] = {}


@pytest.fixture(autouse=True)
def shared_predictors(monkeypatch):
    """Builds each (model, options) Predictor once for this module."""
    original = bag_tool.make_predictor

    def cached(*args):
        if args not in _PREDICTORS:
            _PREDICTORS[args] = original(*args)
        return _PREDICTORS[args]

    monkeypatch.setattr(bag_tool, "make_predictor", cached)


@pytest.mark.smoke  # the fast tier's representative of its folder
def test_sqlite3_depth_outputs(tmp_path, capsys):
    inp, outp = tmp_path / "in", tmp_path / "out"
    topic = write_bag(inp)
    before = tree_hash(inp)
    scale, shift = 0.5, 0.2
    code = run_bag(
        str(inp),
        "-o",
        str(outp),
        "--image-topic",
        topic,
        "--batch",
        "2",
        "--relative-depth-scale",
        str(scale),
        "--relative-depth-shift",
        str(shift),
        *NET,
    )
    assert code == 0, capsys.readouterr().err
    assert tree_hash(inp) == before
    assert list(outp.glob("*.db3")) and not list(outp.glob("*.mcap"))
    out = read_bag(outp)
    check_copied(inp, out)
    assert set(out) == {
        "/cam/camera_info",
        "/cam/image_raw",
        "/chatter",
        "/cam/depth/relative",
        "/cam/depth/image",
        "/cam/depth/colored",
        "/cam/depth/camera_info",
        "/cam/points",
    }
    image_times = [t for t, _, _ in out["/cam/image_raw"]]
    predictor = _PREDICTORS[
        (
            PredictorOptions(
                "dpt_hybrid",
                backend="torch",
                random_weights=True,
                network_size=(64, 64),
                engine_build="eager",  # the bag tool's: a whole bag is worth a build
            ),
        )
    ]
    types = {
        "/cam/depth/relative": "sensor_msgs/msg/Image",
        "/cam/points": "sensor_msgs/msg/PointCloud2",
        "/cam/depth/camera_info": "sensor_msgs/msg/CameraInfo",
    }
    for name, msgtype in types.items():
        assert [t for t, _, _ in out[name]] == image_times
        assert {m for _, m, _ in out[name]} == {msgtype}
    for i in range(N_FRAMES):
        header = image_msg(i).header
        rel = deserialize_message(out["/cam/depth/relative"][i][2], Image)
        metric = deserialize_message(out["/cam/depth/image"][i][2], Image)
        colored = deserialize_message(out["/cam/depth/colored"][i][2], Image)
        info = deserialize_message(out["/cam/depth/camera_info"][i][2], CameraInfo)
        cloud = deserialize_message(out["/cam/points"][i][2], PointCloud2)
        for msg in (rel, metric, colored, info, cloud):
            assert msg.header.stamp.sec == header.stamp.sec
            assert msg.header.stamp.nanosec == header.stamp.nanosec
            assert msg.header.frame_id == "cam_optical"
        assert (rel.encoding, metric.encoding, colored.encoding) == ("32FC1", "32FC1", "rgb8")
        for msg in (rel, metric, colored):
            assert (msg.height, msg.width) == (H, W)
        depth = image_msg_to_array(rel)
        if i in (0, N_FRAMES - 1):  # first and last batch: the model on that frame alone
            np.testing.assert_allclose(depth, predictor.predict(frame_rgb(i)), rtol=1e-4, atol=1e-5)
        # The calibration at the network's resolution, upsampled in inverse depth.
        with torch.inference_mode():
            low = predictor.infer_on_device(torch.from_numpy(frame_rgb(i))[None]).inverse_depth
            want = upsample_depth(relative_to_metric(low, scale, shift), (H, W))[0].numpy()
        np.testing.assert_allclose(image_msg_to_array(metric), want, rtol=1e-4)
        # The latest camera_info at or before the image (a tie counts as before).
        assert info.k[0] == (80.0 if i >= TIE_FRAME else 50.0)
        arrays = pointcloud2_to_arrays(cloud)
        assert (cloud.height, cloud.width) == (H, W)
        # The points are the published depth, less the flying pixels (cloud.edge_filter).
        z, metric_m = arrays["z"], image_msg_to_array(metric)
        kept = np.isfinite(z)
        assert kept.mean() > 0.5
        np.testing.assert_allclose(z[kept], metric_m[kept], rtol=1e-5)
    assert f"{N_FRAMES} frame(s)" in capsys.readouterr().out


def test_mcap_compressed_namespace_and_broken_frame(tmp_path, capsys):
    inp, outp = tmp_path / "in", tmp_path / "out"
    topic = write_bag(inp, storage="mcap", compressed=True, broken_frame=1)
    before = tree_hash(inp)
    code = run_bag(str(inp), "-o", str(outp), "--image-topic", topic, "--batch", "3", *NET)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "skipped 1 undecodable frame" in err
    assert tree_hash(inp) == before
    assert list(outp.glob("*.mcap"))  # storage follows the input
    out = read_bag(outp)
    check_copied(inp, out)
    outputs = {t for t in out if t not in read_bag(inp)}
    assert outputs == {"/cam/depth/relative", "/cam/depth/colored", "/cam/depth/camera_info"}
    frames = [i for i in range(N_FRAMES) if i != 1]
    image_times = [t for t, _, _ in out[topic]]
    assert [t for t, _, _ in out["/cam/depth/relative"]] == [image_times[i] for i in frames]
    predictor = _PREDICTORS[
        (
            PredictorOptions(
                "dpt_hybrid",
                backend="torch",
                random_weights=True,
                network_size=(64, 64),
                engine_build="eager",  # the bag tool's: a whole bag is worth a build
            ),
        )
    ]
    for k, i in enumerate(frames):
        rel = deserialize_message(out["/cam/depth/relative"][k][2], Image)
        assert rel.header.stamp.sec == 500 + i
        assert (rel.height, rel.width, rel.encoding) == (H, W, "32FC1")
    # PNG is lossless: the decoded frame is the original.
    rel = deserialize_message(out["/cam/depth/relative"][-1][2], Image)
    np.testing.assert_allclose(
        image_msg_to_array(rel), predictor.predict(frame_rgb(frames[-1])), rtol=1e-4, atol=1e-5
    )

    # --output-namespace and an explicit --storage.
    out2 = tmp_path / "out2"
    assert (
        run_bag(
            str(inp),
            "-o",
            str(out2),
            "--image-topic",
            topic,
            "--storage",
            "sqlite3",
            "--output-namespace",
            "dpt",
            "--no-cloud",
            "--batch",
            "8",
            *NET,
        )
        == 0
    )
    assert list(out2.glob("*.db3"))
    assert {"/dpt/depth/relative", "/dpt/depth/colored"} <= set(read_bag(out2))


def test_ros1_bag_input(tmp_path, capsys):
    inp = tmp_path / "in.bag"
    write_ros1_bag(inp)
    outp = tmp_path / "out"
    assert (
        run_bag(str(inp), "-o", str(outp), "--image-topic", "/cam/image_raw", "--batch", "2", *NET)
        == 0
    )
    assert list(outp.glob("*.db3"))
    out = read_bag(outp)
    assert [t for t, _, _ in out["/cam/depth/relative"]] == [T0, T0 + PERIOD]
    copied = deserialize_message(out["/cam/image_raw"][1][2], Image)
    assert copied.header.stamp.sec == 501 and copied.header.frame_id == "cam_optical"
    np.testing.assert_array_equal(
        np.frombuffer(bytes(copied.data), np.uint8).reshape(H, W, 3), frame_rgb(1)
    )
    rel = deserialize_message(out["/cam/depth/relative"][1][2], Image)
    assert rel.header.stamp.sec == 501


def test_interrupted_run_leaves_readable_partial_bag(tmp_path, monkeypatch, capsys):
    inp = tmp_path / "in"
    topic = write_bag(inp)
    before = tree_hash(inp)
    original = FramePipeline.process_batch
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise (KeyboardInterrupt() if stop is KeyboardInterrupt else RuntimeError("boom"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FramePipeline, "process_batch", flaky)
    for k, stop in enumerate((KeyboardInterrupt, RuntimeError)):
        calls.clear()
        outp = tmp_path / f"out{k}"
        storage = "sqlite3" if stop is KeyboardInterrupt else "mcap"
        argv = [
            str(inp),
            "-o",
            str(outp),
            "--image-topic",
            topic,
            "--batch",
            "2",
            "--storage",
            storage,
            *NET,
        ]
        if stop is KeyboardInterrupt:
            assert run_bag(*argv) == 130
        else:
            with pytest.raises(RuntimeError, match="boom"):
                run_bag(*argv)
        assert "valid bag" in capsys.readouterr().err
        assert list(outp.glob(f"*.{'db3' if storage == 'sqlite3' else 'mcap'}"))
        out = read_bag(outp)  # metadata.yaml written: it opens
        assert len(out["/cam/depth/relative"]) == 2
        assert len(out[topic]) == 2
        assert [t for t, _, _ in out["/cam/depth/relative"]] == [T0, T0 + PERIOD]
        assert tree_hash(inp) == before


def test_errors_are_one_line(tmp_path, capsys):
    inp = tmp_path / "in"
    write_bag(inp)

    def error(*argv: str) -> str:
        return one_error_line(run_bag(*argv), capsys.readouterr().err)

    out = str(tmp_path / "out")
    line = error(str(inp), "-o", out, "--image-topic", "/camera/image", *NET)
    assert "/camera/image is not in the bag" in line
    assert "/cam/image_raw (sensor_msgs/msg/Image)" in line
    line = error(str(inp), "-o", out, "--image-topic", "/chatter", *NET)
    assert "std_msgs/msg/String" in line and "/cam/image_raw" in line
    assert "does not exist" in error(str(tmp_path / "nope"), "-o", out, "--image-topic", "/x")
    (tmp_path / "exists").mkdir()
    assert "already exists" in error(
        str(inp), "-o", str(tmp_path / "exists"), "--image-topic", "/cam/image_raw"
    )
    line = error(str(inp), "-o", out, "--image-topic", "/cam/image_raw", "--depth-model", "dpt_xl")
    assert "unknown depth model type 'dpt_xl'" in line and "dpt_hybrid" in line
    assert "segmentation" in error(
        str(inp), "-o", out, "--image-topic", "/cam/image_raw", "--segmentation-model", "dpt_hybrid"
    )
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    assert "bad.pt" in error(
        str(inp), "-o", out, "--image-topic", "/cam/image_raw", "--depth-weights", str(bad)
    )
    assert "not found" in error(
        str(inp),
        "-o",
        out,
        "--image-topic",
        "/cam/image_raw",
        "--depth-weights",
        str(tmp_path / "missing.pt"),
    )
    assert not Path(out).exists()  # no output bag is started before everything checks out


def test_segmentation_writes_label_info_and_confidence(tmp_path, capsys):
    """LabelInfo once, first, latched, with the 150 names and the camera's frame; confidence beside each label
    image with its header; both readable by rosbags."""
    from rosbags.rosbag2 import Reader

    from dpt_ros.ros.bagio import output_typestore
    from dpt_ros.ros.label_info import LABEL_INFO_TYPE, register_label_info
    from dpt_ros.viz.ade20k import CLASS_NAMES

    inp, outp = tmp_path / "in", tmp_path / "out"
    topic = write_bag(inp)
    code = run_bag(
        str(inp),
        "-o",
        str(outp),
        "--image-topic",
        topic,
        "--depth-model",
        "",
        "--segmentation-model",
        "dpt_hybrid_ade20k",
        *NET,
    )
    assert code == 0, capsys.readouterr().err
    out = read_bag(outp)
    infos = out["/cam/segmentation/label_info"]
    assert len(infos) == 1 and infos[0][1] == LABEL_INFO_TYPE
    assert infos[0][0] == min(t for msgs in out.values() for t, _, _ in msgs)
    store = output_typestore()
    register_label_info(store)
    msg = store.deserialize_cdr(infos[0][2], LABEL_INFO_TYPE)
    names = [(c.class_id, c.class_name) for c in msg.class_map]
    assert names == [(i + 1, n) for i, n in enumerate(CLASS_NAMES)]  # 255 = UNLABELED
    assert msg.header.frame_id == "cam_optical"  # the camera's, as the labels'
    with Reader(outp) as reader:
        conn = next(c for c in reader.connections if c.topic == "/cam/segmentation/label_info")
        qos = conn.ext.offered_qos_profiles[0]
        assert (qos.durability.name, qos.reliability.name) == ("TRANSIENT_LOCAL", "RELIABLE")

    labels = out["/cam/segmentation/labels"]
    confidence = out["/cam/segmentation/confidence"]
    assert len(labels) == len(confidence) == N_FRAMES
    for (t_l, _, raw_l), (t_c, _, raw_c) in zip(labels, confidence):
        lab, con = deserialize_message(raw_l, Image), deserialize_message(raw_c, Image)
        assert t_l == t_c and lab.header == con.header
        assert (con.encoding, con.height, con.width) == ("mono8", lab.height, lab.width)
        values = image_msg_to_array(con)
        # Random weights: probabilities between uniform (1/150) and certain.
        assert values.min() >= round(255 / 150) and values.max() <= 255
