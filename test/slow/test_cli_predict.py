"""``dpt-ros`` command line: run in-process through ``dpt_ros.cli.main.main``."""

from __future__ import annotations

import cv2
import numpy as np
from cli_cases import run

from dpt_ros.models import Predictor
from dpt_ros.viz.ade20k import PALETTE
from dpt_ros.viz.colormap import TURBO_LUT, overlay_labels


def test_predict_depth_writes_three_files(tmp_path, capsys, det_checkpoint, small_png, small_rgb):
    weights = det_checkpoint("dpt_hybrid")
    out_dir = tmp_path / "out"
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--weights",
        weights,
        "--input",
        small_png,
        "--output",
        out_dir,
        "--device",
        "cpu",
    )
    assert rc == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "scene_depth.npy",
        "scene_depth.png",
        "scene_depth_color.png",
    ]
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("'scene.png': 128x96, ") and lines[0].endswith(" ms")
    assert lines[1].startswith("1 image(s) with dpt_hybrid on cpu (float32)")

    depth = np.load(out_dir / "scene_depth.npy")
    assert depth.shape == (96, 128) and depth.dtype == np.float32
    want = Predictor(
        "dpt_hybrid", weights=weights, device="cpu", backend="torch", precision="fp32"
    ).predict(small_rgb)
    np.testing.assert_allclose(depth, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())

    png = cv2.imread(str(out_dir / "scene_depth.png"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (96, 128) and png.dtype == np.uint16
    # Relative model: min..max -> 0..65535.
    assert png.min() == 0 and png.max() == 65535
    assert png.flat[depth.argmax()] == 65535 and png.flat[depth.argmin()] == 0
    np.testing.assert_allclose(png / 65535.0, (depth - depth.min()) / np.ptp(depth), atol=1 / 65535)

    color = cv2.imread(str(out_dir / "scene_depth_color.png"), cv2.IMREAD_UNCHANGED)
    assert color.shape == (96, 128, 3) and color.dtype == np.uint8
    rgb = color[:, :, ::-1]
    near, far = (
        np.unravel_index(depth.argmax(), depth.shape),
        np.unravel_index(depth.argmin(), depth.shape),
    )
    # The colour range is the 2..98th percentile: the extremes sit at the LUT's ends,
    # the nearest (largest inverse depth) at the warm one.
    np.testing.assert_array_equal(rgb[near], TURBO_LUT[-1])
    np.testing.assert_array_equal(rgb[far], TURBO_LUT[0])


def test_predict_segmentation_writes_two_files(
    tmp_path, capsys, det_checkpoint, small_png, small_rgb
):
    out_dir = tmp_path / "seg"
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid_ade20k",
        "--weights",
        det_checkpoint("dpt_hybrid_ade20k"),
        "--input",
        small_png,
        "--output",
        out_dir,
        "--device",
        "cpu",
        "--precision",
        "fp32",
    )
    assert rc == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "scene_labels.png",
        "scene_labels_color.png",
    ]
    labels = cv2.imread(str(out_dir / "scene_labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (96, 128) and labels.dtype == np.uint8
    assert labels.min() >= 1 and labels.max() <= 150
    color = cv2.imread(str(out_dir / "scene_labels_color.png"), cv2.IMREAD_UNCHANGED)
    assert color.shape == (96, 128, 3) and color.dtype == np.uint8
    np.testing.assert_array_equal(
        color[:, :, ::-1], overlay_labels(small_rgb, labels, PALETTE, alpha=0.5)
    )
    assert "'scene.png': 128x96" in out
