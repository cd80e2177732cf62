"""Absurd focal lengths: a calibration with fx = 1e30 made Depth Anything 3 metric
publish depth of 1e27 m, and fx = 1e-30 put every point at the camera. A focal length
outside a 179 degree fisheye to a 0.5 degree telephoto is refused where the camera model
is read (docs/failure_behaviour.md): ``predict`` before loading the model, the node and
``bag`` per frame with the reason (no metres, no points)."""

from __future__ import annotations

import cv2
import pytest
from attack import DPT_ROS, attack
from helpers import small_image

#: Refused before any model loads: torch's libraries (about 1.1 GB here) and no more.
PEAK_MB = 1600


def calibration_yaml(fx: float, fy: float, width: int = 64, height: int = 48) -> str:
    cx, cy = (width - 1) / 2, (height - 1) / 2
    return f"""\
image_width: {width}
image_height: {height}
camera_matrix: {{rows: 3, cols: 3, data: [{fx!r}, 0.0, {cx}, 0.0, {fy!r}, {cy}, 0.0, 0.0, 1.0]}}
distortion_model: plumb_bob
distortion_coefficients: {{rows: 1, cols: 5, data: [0.0, 0.0, 0.0, 0.0, 0.0]}}
rectification_matrix: {{rows: 3, cols: 3, data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}}
projection_matrix: {{rows: 3, cols: 4, data: [{fx!r}, 0.0, {cx}, 0.0, 0.0, {fy!r}, {cy}, 0.0, 0.0, 0.0, 1.0, 0.0]}}
"""


@pytest.mark.parametrize(("fx", "name"), [(1e30, "fx=1e+30"), (1e-30, "fx=1e-30")])
def test_predict_refuses_an_absurd_focal_length(tmp_path, fx, name):
    calibration = tmp_path / "camera.yaml"
    calibration.write_text(calibration_yaml(fx, 60.0), encoding="utf-8")
    cv2.imwrite(str(tmp_path / "in.png"), small_image(48, 64))
    done = attack(
        [*DPT_ROS, "predict", "--model-type", "depth_anything_3_metric_large"]
        + ["--random-weights", "--network-size", "70x56", "--backend", "torch"]
        + ["--camera-info", str(calibration)]
        + ["--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out")],
        timeout=300,
    )
    assert done.rc == 2, done.stderr[-2000:]
    (error,) = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    assert "Traceback" not in done.stderr
    assert f"implausible focal length {name} px for its 64x48 image" in error, error
    assert "camera.yaml" in error and "degrees" in error, error
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
