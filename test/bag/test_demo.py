"""``dpt-ros demo`` end to end (real DptNode over DDS, random weights, tiny network)."""

from __future__ import annotations

import json
import math
import random

import cv2
import numpy as np

from dpt_ros.cli.demo import preview, scene
from dpt_ros.cli.demo import run as demo
from dpt_ros.cli.main import main


def test_render_is_a_plausible_scene():
    rgb, depth = scene.render(0.0, 160, 120)
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    assert np.isinf(depth[0]).all()  # sky at the top
    bottom = depth[-1]
    assert np.isfinite(bottom).all() and 1.0 < bottom.min() <= bottom.max() < 10.0
    assert depth[-1, 5] < depth[-30, 5] < depth[-60, 5]  # the ground recedes upwards
    fx, fy, cx, cy = scene.camera_intrinsics(160, 120)
    assert fx == fy and math.isclose(cx, 79.5)
    assert rgb.std() > 20  # textured, not flat


def test_cloud_preview_draws_points():
    v, u = np.mgrid[0:60, 0:80].astype(np.float32)
    z = 2.0 + v / 30.0
    xyz = np.stack([(u - 40) * z / 70, (v - 30) * z / 70, z], -1)
    xyz[:5] = np.nan
    image = preview.render_cloud_preview(xyz, 240, 180)
    assert image.shape == (180, 240, 3) and image.dtype == np.uint8
    assert (image.reshape(-1, 3) != 24).any(1).mean() > 0.1
    empty = preview.render_cloud_preview(np.full((4, 4, 3), np.nan, np.float32), 240, 180)
    assert empty.shape == (180, 240, 3)


def test_find_weights_prefers_weights_dir_then_cache(tmp_path, monkeypatch):
    cache, mine = tmp_path / "cache", tmp_path / "mine"
    cache.mkdir()
    mine.mkdir()
    monkeypatch.setenv("DPT_ROS_CACHE", str(cache))
    assert demo.find_weights("dpt_hybrid", str(mine)) is None
    (cache / "dpt_hybrid-midas-501f0c75.pt").write_bytes(b"x")
    assert demo.find_weights("dpt_hybrid", str(mine)) == cache / "dpt_hybrid-midas-501f0c75.pt"
    (mine / "dpt_hybrid-midas-501f0c75.pt").write_bytes(b"x")
    assert demo.find_weights("dpt_hybrid", str(mine)) == mine / "dpt_hybrid-midas-501f0c75.pt"


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    # An empty checkpoint cache (random weights, nothing downloaded) and a private
    # DDS domain (other ROS processes on this machine stay out).
    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random.randint(100, 180)))
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--output",
            str(out),
            "--frames",
            "2",
            "--network-size",
            "64x64",
            "--device",
            "cpu",
            "--backend",
            "torch",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "RANDOM WEIGHTS" in captured.err and "dpt_hybrid-midas-501f0c75.pt" in captured.err
    assert "processed 2/2 frames" in captured.out and "median latency" in captured.out
    assert "total time" in captured.out

    for i in range(2):
        for kind in ("input", "depth_color", "labels_overlay", "cloud_preview"):
            image = cv2.imread(str(out / f"frame_{i:03d}_{kind}.png"))
            assert image is not None, kind
            if kind != "cloud_preview":
                assert image.shape == (240, 320, 3), kind
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and summary["frames_processed"] == 2
    assert summary["real_weights"] is False
    assert summary["models"]["depth"]["model"] == "dpt_hybrid"
    assert summary["models"]["depth"]["metric_from_relative"] == {
        "scale": demo.RELATIVE_SCALE,
        "shift": demo.RELATIVE_SHIFT,
    }
    assert summary["models"]["segmentation"]["model"] == "dpt_hybrid_ade20k"
    assert summary["median_latency_ms"] > 0 and summary["processed_rate_hz"] > 0
    assert summary["node_status"]["processed"] == "2"
    assert summary["node_status"]["dropped"] == "0"
    # The node's stamp-to-publish latency and the demo's publish-to-output one measure
    # one span (the node's read 110 s when frames kept the bag's stamps).
    assert float(summary["node_status"]["latency_ms_median"]) <= max(summary["latencies_ms"]) + 100

    # The input bag is a normal bag: `dpt-ros play` / `dpt-ros bag` can use it.
    from rosbags.rosbag2 import Reader

    with Reader(out / "input_bag") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts == {
        "/camera/image_raw": 2,
        "/camera/camera_info": 2,
        "/camera/ground_truth/depth": 2,
    }


def test_the_demo_builds_no_engine():
    """An engine build (about 40 s a model on a CPU) cannot pay back over a few frames;
    the first command took 4 min 13 s with two builds."""
    from dpt_ros.cli.demo.driver import node_parameters

    params = node_parameters({"depth": "dpt_hybrid", "segmentation": ""}, "cpu", {}, None, None)
    assert {p.name: p.value for p in params}["engine_build"] == "never"
