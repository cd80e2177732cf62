"""Depth Anything 3 as a model family of dpt_ros: the registry, weights through the"""

from __future__ import annotations

import numpy as np
import pytest
from da3_cases import SMALL

from dpt_ros.models import Predictor


def test_backend_auto_builds_an_onnx_engine_within_1e4_of_torch(small_file, scene_a_rgb, tmp_path):
    """The engine cache exports the (B, 2, h, w) stacked network like any other (one
    output: depth and the second map as channels); onnxruntime on the CPU within 1e-4 of
    PyTorch (measured 2e-6 and 3e-6 at 140x112, the export taking ~45 s)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import cv2

    rgb = cv2.resize(scene_a_rgb, (160, 120), interpolation=cv2.INTER_AREA)
    kwargs = {"weights": str(small_file), "network_size": (140, 140)}
    torch_predictor = Predictor(SMALL, backend="torch", **kwargs)
    # The engine path by name, built at prepare (auto keeps PyTorch where the build
    # measured it faster, and builds in the background by default).
    auto = Predictor(
        SMALL, backend="onnxruntime", engine_build="eager", cache_dir=tmp_path, **kwargs
    )
    auto.prepare(rgb.shape[:2])
    assert auto.backend == "onnxruntime" and auto.engine_cached is False
    grid = torch_predictor.input_size(rgb.shape[:2])
    assert grid == (112, 140)
    want = torch_predictor.infer(rgb[None], output_hw=grid, fill_sky=True).arrays()
    got = auto.infer(rgb[None], output_hw=grid, fill_sky=True).arrays()
    assert set(got) == {"inverse_depth", "confidence"}
    for name in got:
        assert np.abs(got[name] - want[name]).max() / np.abs(want[name]).max() <= 1e-4, name
