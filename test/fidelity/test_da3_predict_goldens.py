"""Depth Anything 3 as a model family of dpt_ros: the registry, weights through the"""

from __future__ import annotations

import numpy as np
import pytest
from da3_cases import CAMERA_YAML, METRIC, SMALL, da3_golden, predict
from goldens import FIXTURES

from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX

#: dpt-ros predict against the goldens, relative to the golden's maximum (the network
#: grid; measured: about 3e-6).
PREDICT_RTOL = 1e-3


@pytest.mark.parametrize("res", (280, 350))
def test_predict_small_matches_the_goldens(capsys, small_file, tmp_path, res):
    image = FIXTURES / "scene_a.png"
    rc, out, err = predict(
        capsys,
        "predict",
        "--model-type",
        SMALL,
        "--weights",
        small_file,
        "--input",
        image,
        "--output",
        tmp_path,
        "--network-size",
        f"{res}x{res}",
        "--backend",
        "torch",
        "--output-size",
        "network",
    )
    assert rc == 0, err
    golden = da3_golden(SMALL, res)
    inverse = np.load(tmp_path / "scene_a_depth.npy")
    confidence = np.load(tmp_path / "scene_a_confidence.npy")
    assert inverse.shape == confidence.shape == golden.shape("depth")
    # depth/relative stays relative INVERSE depth: DA3's depth inverted.
    assert golden.relative_error("depth", 1.0 / inverse) <= PREDICT_RTOL
    assert golden.relative_error("confidence", confidence) <= PREDICT_RTOL
    assert confidence.min() >= 1.0
    assert (tmp_path / "scene_a_depth.png").is_file()
    # At the image's size (the default): resized from the same grid as the geometry resizes.
    rc, _, err = predict(
        capsys, "predict", "--model-type", SMALL, "--weights", small_file, "--input", image,
        "--output", tmp_path / "full", "--network-size", f"{res}x{res}", "--backend", "torch",
    )  # fmt: skip
    assert rc == 0, err
    assert np.load(tmp_path / "full" / "scene_a_depth.npy").shape == (480, 640)


def test_predict_metric_matches_the_golden(capsys, detweights, fixtures_dir, tmp_path):
    """The full ViT-L: its deterministic weights take about a minute."""
    from safetensors.torch import save_file

    layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{METRIC}.json")
    state = detweights.deterministic_state_dict(layout)
    weights = tmp_path / "model.safetensors"
    save_file({HUB_PREFIX + k: v.contiguous() for k, v in state.items()}, str(weights))
    del state
    camera = tmp_path / "camera.yaml"
    camera.write_text(CAMERA_YAML)
    rc, out, err = predict(
        capsys, "predict", "--model-type", METRIC, "--weights", weights, "--input",
        FIXTURES / "scene_a.png", "--output", tmp_path / "out", "--network-size", "280x280",
        "--backend", "torch", "--output-size", "network", "--camera-info", camera,
    )  # fmt: skip
    assert rc == 0, err
    golden = da3_golden(METRIC, 280)
    metres = np.load(tmp_path / "out" / "scene_a_depth.npy")
    sky = np.load(tmp_path / "out" / "scene_a_sky.npy")
    assert golden.relative_error("metric_depth", metres) <= PREDICT_RTOL
    assert golden.relative_error("sky", sky) <= PREDICT_RTOL
    assert 0.2 < float((sky >= 0.3).mean()) < 0.8
