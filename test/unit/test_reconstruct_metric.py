"""Metric scale for ``dpt-ros reconstruct --metric-model``: the least-squares fit of a
window's depth to a metric model's metres (dpt_ros.reconstruct.metric), and the command
end to end with stand-ins for both models: unit, depth and translations in metres."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from reconstruct_scenes import FOCAL, HEIGHT, WIDTH, depth_map, intrinsics, trajectory

from dpt_ros.cli import reconstruct as cli
from dpt_ros.cli.main import main
from dpt_ros.reconstruct.chain import WindowResult
from dpt_ros.reconstruct.metric import (
    fit_metric_scale,
    sample_on_network_grid,
    scale_window,
)

# --------------------------------------------------------------------------- the fit


def _window(rng, n=3, h=12, w=16):
    depth = rng.uniform(0.5, 4.0, (n, h, w))
    confidence = rng.uniform(1.0, 3.0, (n, h, w))
    sky = np.zeros((n, h, w))
    return depth, confidence, sky


def test_a_known_multiple_gives_that_scale():
    depth, confidence, sky = _window(np.random.default_rng(0))
    fit = fit_metric_scale(depth, confidence, 2.75 * depth, sky)
    assert fit.scale == pytest.approx(2.75, rel=1e-12)
    # half the pixels are at or above the median confidence
    assert fit.pixels == pytest.approx(depth.size / 2, abs=1)


def test_sky_low_confidence_and_tiny_depth_stay_out_of_the_fit():
    rng = np.random.default_rng(1)
    depth, confidence, sky = _window(rng)
    metric = 0.4 * depth
    sky[:, :3] = 0.9  # sky: its metric depth is nonsense
    metric[:, :3] = 1e4
    depth[0, 5, 5], metric[0, 5, 5] = 1e-4, 50.0  # depth under 1e-3
    confidence[0, 5, 5] = 10.0
    metric[1, 6, 6] = np.inf  # none from the metric model
    confidence[1, 6, 6] = 10.0
    low = confidence < np.median(confidence[sky < 0.3])
    metric[low] *= 7.0  # below the median confidence: not fitted
    fit = fit_metric_scale(depth, confidence, metric, sky)
    assert fit.scale == pytest.approx(0.4, rel=1e-12)
    assert fit.median_confidence == pytest.approx(np.median(confidence[sky < 0.3]))


def test_an_all_sky_window_or_mismatched_shapes_are_refused():
    depth, confidence, sky = _window(np.random.default_rng(2))
    with pytest.raises(ValueError, match="non-sky pixel"):
        fit_metric_scale(depth, confidence, depth, np.ones_like(sky))
    with pytest.raises(ValueError, match="confident non-sky"):
        fit_metric_scale(depth, confidence, np.zeros_like(depth), sky)
    with pytest.raises(ValueError, match="shape"):
        fit_metric_scale(depth, confidence[:2], depth, sky)


def test_scaling_a_window_scales_depth_translations_and_points_only():
    rng = np.random.default_rng(3)
    depth, confidence, _ = _window(rng, n=2)
    cfw = rng.normal(size=(2, 3, 4))
    k = np.repeat(intrinsics()[None], 2, 0)
    points = rng.normal(size=(*depth.shape, 3)).astype(np.float32)
    w = WindowResult(depth.astype(np.float32), confidence.astype(np.float32), cfw, k, 1, points)
    scaled = scale_window(w, 3.0)
    np.testing.assert_allclose(scaled.depth, 3 * w.depth, rtol=1e-6)
    np.testing.assert_allclose(scaled.camera_from_world[:, :, 3], 3 * cfw[:, :, 3])
    np.testing.assert_array_equal(scaled.camera_from_world[:, :, :3], cfw[:, :, :3])
    np.testing.assert_allclose(scaled.world_points, 3 * points, rtol=1e-6)
    np.testing.assert_array_equal(scaled.intrinsics, k)
    np.testing.assert_array_equal(scaled.confidence, w.confidence)
    assert scaled.reference_view == 1


def test_sampling_the_input_grid_on_a_crop_or_a_pad():
    maps = np.arange(8 * 10, dtype=np.float32).reshape(8, 10)
    np.testing.assert_array_equal(sample_on_network_grid(maps, (8, 10), (0, 0, 10, 8), -1), maps)
    # the centre 4x4 at half resolution
    crop = sample_on_network_grid(maps, (2, 2), (3, 2, 7, 6), -1)
    np.testing.assert_array_equal(crop, [[maps[3, 4], maps[3, 6]], [maps[5, 4], maps[5, 6]]])
    # padded by one pixel's worth on each side: the border is outside
    pad = sample_on_network_grid(maps, (10, 12), (-1, -1, 11, 9), -1)
    assert (pad[0] == -1).all() and (pad[:, -1] == -1).all()
    np.testing.assert_array_equal(pad[1:-1, 1:-1], maps)


# --------------------------------------------------------------------------- end to end

#: The stand-in metric model's metres per unit of the scene.
METRES = 2.5

CAMERA_YAML = f"""\
image_width: {WIDTH}
image_height: {HEIGHT}
camera_name: synthetic
camera_matrix:
  rows: 3
  cols: 3
  data: [{FOCAL}, 0.0, {(WIDTH - 1) / 2}, 0.0, {FOCAL}, {(HEIGHT - 1) / 2}, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.0, 0.0, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [{FOCAL}, 0.0, {(WIDTH - 1) / 2}, 0.0, 0.0, {FOCAL}, {(HEIGHT - 1) / 2}, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


@dataclass
class _Cameras:
    camera_from_world: np.ndarray
    intrinsics: np.ndarray
    reference_view: int


@dataclass
class _Prediction:
    depth: np.ndarray | None = None
    confidence: np.ndarray | None = None
    cameras: _Cameras | None = None
    sky: np.ndarray | None = None


def _ids(images) -> list[int]:
    return [int(img[0, 0, 0]) // 20 for img in images]


class _WindowModel:
    """Each window in a unit of its own (1 + its number times the scene's)."""

    def __init__(self) -> None:
        self.poses = trajectory(7)
        self.calls = 0

    def infer_window(self, images, reference_view="saddle_balanced", output_hw=None, **known):
        self.calls += 1
        ids, unit = _ids(images), 1.0 + self.calls
        k = intrinsics()
        depth = np.stack([depth_map(self.poses[i], k) for i in ids]) * unit
        cfw = self.poses[ids].copy()
        cfw[:, :, 3] *= unit
        cameras = _Cameras(cfw, np.repeat(k[None], len(ids), 0), 0)
        return _Prediction(depth.astype(np.float32), np.ones_like(depth), cameras)


class _MetricModel:
    """The scene in metres (METRES per unit), sky nowhere; records what it was given."""

    def __init__(self, poses) -> None:
        self.poses = poses
        self.given: list[tuple[list[np.ndarray], tuple[int, int]]] = []

    def infer(self, images, intrinsics=None, output_hw=None, fill_sky=False):
        self.given.append((intrinsics, output_hw))
        depth = np.stack([depth_map(self.poses[i], intrinsics[0]) for i in _ids(images)])
        return _Prediction(depth=METRES * depth, sky=np.zeros_like(depth))


def _pngs(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(
            str(folder / f"frame_{i:03d}.png"), np.full((HEIGHT, WIDTH, 3), 20 * i, np.uint8)
        )
    return folder


@pytest.mark.parametrize("overlap", [1, 0])
def test_metric_reconstruction_is_in_metres(tmp_path, capsys, monkeypatch, overlap):
    model = _WindowModel()
    metric = _MetricModel(model.poses)
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: model)
    monkeypatch.setattr(cli, "_load_metric_predictor", lambda args: metric)
    (tmp_path / "cam.yaml").write_text(CAMERA_YAML)
    out = tmp_path / "out"
    argv = ["reconstruct", str(_pngs(tmp_path / "in", 7)), "-o", str(out)]
    argv += ["--model-type", "depth_anything_3_small", "--window", "3", "--overlap", str(overlap)]
    argv += ["--metric-model", "depth_anything_3_metric_large", "--metric-random-weights"]
    argv += ["--camera-info", str(tmp_path / "cam.yaml"), "--output-size", "network"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "in metres" in capsys.readouterr().out
    # the calibration's intrinsics, the window's grid
    np.testing.assert_array_equal(metric.given[0][0][0], intrinsics())
    assert metric.given[0][1] == (HEIGHT, WIDTH)
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["unit"] == "metres" and "least-squares" in doc["scale"]
    assert doc["model"]["metric_model"] == "depth_anything_3_metric_large"
    units = [1.0 + (k + 1) for k in range(len(doc["windows"]))]
    for info, unit in zip(doc["windows"], units):
        assert info["metric_scale"]["scale"] == pytest.approx(METRES / unit, rel=1e-5)
    # translations and depth in metres, every window (chained or each in its world)
    got = np.array([f["camera_from_world"] for f in doc["frames"]])
    want = model.poses.copy()
    want[:, :, 3] *= METRES
    np.testing.assert_allclose(got, want, atol=1e-4)
    d5 = np.load(out / "depth" / "frame_005.npy")
    np.testing.assert_allclose(d5, METRES * depth_map(model.poses[5], intrinsics()), rtol=1e-5)
    # windows/ stay the model's raw outputs, in the second window's own unit
    with np.load(out / "windows" / "0001.npz") as raw:
        ids = [int(str(n)[len("frame_") : -len(".png")]) for n in raw["names"]]
        np.testing.assert_allclose(
            raw["camera_from_world"][:, :, 3], units[1] * model.poses[ids][:, :, 3], atol=1e-5
        )


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ([], "give --camera-info FILE"),
        (["--metric-weights", "m.pt", "--metric-random-weights"], "either --metric-weights"),
    ],
)
def test_metric_flags_are_checked_before_the_models_load(
    tmp_path, capsys, monkeypatch, extra, fragment
):
    def fail(*args):
        raise AssertionError("no model loads before the flags are checked")

    monkeypatch.setattr(cli, "_load_predictor", fail)
    monkeypatch.setattr(cli, "_load_metric_predictor", fail)
    argv = ["reconstruct", str(_pngs(tmp_path / "in", 2)), "-o", str(tmp_path / "out")]
    argv += ["--model-type", "depth_anything_3_small", "--metric-model"]
    argv += ["depth_anything_3_metric_large", *extra]
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_metric_weights_without_a_metric_model_are_refused(tmp_path, capsys):
    argv = ["reconstruct", str(_pngs(tmp_path / "in", 2)), "-o", str(tmp_path / "out")]
    argv += ["--model-type", "depth_anything_3_small", "--metric-random-weights"]
    assert main(argv) == 2
    assert "need --metric-model" in capsys.readouterr().err


def test_frames_without_intrinsics_are_refused(tmp_path, capsys, monkeypatch):
    """A calibration for another image size leaves the frames without intrinsics."""
    model = _WindowModel()
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: model)
    monkeypatch.setattr(cli, "_load_metric_predictor", lambda args: _MetricModel(model.poses))
    (tmp_path / "cam.yaml").write_text(
        CAMERA_YAML.replace(f"image_width: {WIDTH}", "image_width: 640")
    )
    argv = ["reconstruct", str(_pngs(tmp_path / "in", 3)), "-o", str(tmp_path / "out")]
    argv += ["--model-type", "depth_anything_3_small", "--camera-info", str(tmp_path / "cam.yaml")]
    argv += ["--metric-model", "depth_anything_3_metric_large"]
    assert main(argv) == 2
    assert "--metric-model needs each frame's intrinsics" in capsys.readouterr().err
