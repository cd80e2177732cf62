"""``dpt-ros reconstruct`` on a bag: frames in bag order with their header stamps (in
trajectory.tum and cameras.json), the camera's latest camera_info beside each frame,
corrupt messages skipped and counted."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import H, W, write_bag, write_ros1_bag

from dpt_ros.cli import reconstruct as cli
from dpt_ros.cli.main import main
from dpt_ros.reconstruct.frames import FrameSkips, bag_frames


@dataclass(frozen=True)
class _Cameras:
    camera_from_world: np.ndarray
    intrinsics: np.ndarray
    reference_view: int = 0


@dataclass(frozen=True)
class _Prediction:
    depth: np.ndarray
    confidence: np.ndarray
    cameras: _Cameras


class _SlidingCamera:
    """A camera sliding along x in front of a wall 3 units away: every window agrees."""

    def __init__(self) -> None:
        self.seen = 0

    def infer_window(self, images, reference_view="saddle_balanced", **known):
        n = len(images)
        start = self.seen - (1 if self.seen else 0)  # --overlap 1
        self.seen = start + n
        cfw = np.zeros((n, 3, 4))
        cfw[:, :, :3] = np.eye(3)
        cfw[:, 0, 3] = -0.1 * np.arange(start, start + n)  # centre x = 0.1 * index
        k = np.array([[40.0, 0, (W - 1) / 2], [0, 40.0, (H - 1) / 2], [0, 0, 1]])
        return _Prediction(
            np.full((n, H, W), 3.0, np.float32),
            np.ones((n, H, W), np.float32),
            _Cameras(cfw, np.repeat(k[None], n, 0)),
        )


@pytest.mark.parametrize(("storage", "compressed"), [("sqlite3", False), ("mcap", True)])
def test_bag_frames_carry_stamps_and_camera_info(tmp_path, storage, compressed):
    bag = tmp_path / "bag"
    topic = write_bag(bag, storage, compressed=compressed, broken_frame=1)
    skips = FrameSkips()
    frames = list(bag_frames(bag, topic, 0, skips))
    assert [f.stamp_ns for f in frames] == [500 * 10**9, 502 * 10**9 + 2000, 503 * 10**9 + 3000]
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].rgb.shape == (H, W, 3)
    assert frames[0].name == f"{topic}@{500 * 10**9}"
    assert len(skips.images) == 1 and skips.camera_info == 0
    assert frames[0].camera_info[0, 0] == 50.0 and frames[2].camera_info[0, 0] == 80.0


def test_a_ros1_bags_camera_info_is_read(tmp_path):
    """ROS 1's CameraInfo names its matrices ``K``, ``P``, ``D``, ``R``: each frame still
    gets the latest calibration (it was ignored: no intrinsics at all)."""
    bag = tmp_path / "in.bag"
    write_ros1_bag(bag, focal_lengths=(50.0, 80.0))
    skips = FrameSkips()
    frames = list(bag_frames(bag, "/cam/image_raw", 0, skips))
    assert [f.stamp_ns for f in frames] == [500 * 10**9, 501 * 10**9]
    assert [f.camera_info[0, 0] for f in frames] == [50.0, 80.0]
    assert frames[1].camera_info[0, 2] == W / 2 and not skips.images and not skips.camera_info


def test_a_topic_that_is_not_an_image_topic_is_refused(tmp_path):
    bag = tmp_path / "bag"
    write_bag(bag)
    with pytest.raises(ValueError, match="/chatter is not an image topic"):
        list(bag_frames(bag, "/chatter", 0, FrameSkips()))


def test_reconstruct_a_bag_end_to_end(tmp_path, capsys, monkeypatch):
    bag = tmp_path / "bag"
    topic = write_bag(bag, broken_frame=1, frames=5)
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: _SlidingCamera())
    out = tmp_path / "out"
    argv = ["reconstruct", str(bag), "-o", str(out), "--model-type", "depth_anything_3_small"]
    assert main([*argv, "--image-topic", topic, "--window", "3", "--overlap", "1"]) == 0
    captured = capsys.readouterr()
    assert "4 frame(s) in 2 window(s), chained" in captured.out
    assert "skipped 1 unreadable image(s)" in captured.err
    lines = [ln.split() for ln in (out / "trajectory.tum").read_text().splitlines()]
    lines = [ln for ln in lines if ln[0] != "#"]
    assert [ln[0] for ln in lines] == [
        "500.000000000",
        "502.000002000",
        "503.000003000",
        "504.000004000",
    ]
    np.testing.assert_allclose([float(ln[1]) for ln in lines], [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["skipped"] == {"images": 1, "camera_info": 0}
    assert doc["frames"][0]["stamp_ns"] == 500 * 10**9
    assert doc["frames"][0]["camera_info_intrinsics"][0][0] == 50.0
    assert sorted(p.name for p in (out / "depth").iterdir()) == [
        "000000.npy", "000001.npy", "000002.npy", "000003.npy"
    ]  # fmt: skip


@dataclass(frozen=True)
class _Metric:
    depth: np.ndarray
    sky: np.ndarray


class _WallInMetres:
    """The metric model: the wall 7.5 m away, no sky; records the intrinsics given."""

    def __init__(self) -> None:
        self.focals: list[float] = []

    def infer(self, images, intrinsics=None, output_hw=None, fill_sky=False):
        self.focals += [float(k[0, 0]) for k in intrinsics]
        shape = (len(images), *output_hw)
        return _Metric(np.full(shape, 7.5, np.float32), np.zeros(shape, np.float32))


def test_a_bag_with_camera_info_is_reconstructed_in_metres(tmp_path, capsys, monkeypatch):
    bag = tmp_path / "bag"
    topic = write_bag(bag, broken_frame=1, frames=5)
    metric = _WallInMetres()
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: _SlidingCamera())
    monkeypatch.setattr(cli, "_load_metric_predictor", lambda args: metric)
    out = tmp_path / "out"
    argv = ["reconstruct", str(bag), "-o", str(out), "--model-type", "depth_anything_3_small"]
    argv += ["--image-topic", topic, "--window", "3", "--overlap", "1"]
    argv += ["--metric-model", "depth_anything_3_metric_large"]
    assert main(argv) == 0, capsys.readouterr().err
    # the bag's camera_info (fx 50, then 80 from its later message) for each frame
    assert metric.focals[0] == 50.0 and metric.focals[-1] == 80.0
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["unit"] == "metres"
    assert [w["metric_scale"]["scale"] for w in doc["windows"]] == pytest.approx([2.5, 2.5])
    lines = [ln.split() for ln in (out / "trajectory.tum").read_text().splitlines()]
    xs = [float(ln[1]) for ln in lines if ln[0] != "#"]
    np.testing.assert_allclose(xs, [0.0, 0.25, 0.5, 0.75], atol=1e-6)  # 0.1 unit = 0.25 m
    np.testing.assert_allclose(np.load(out / "depth" / "000003.npy"), 7.5, rtol=1e-6)
