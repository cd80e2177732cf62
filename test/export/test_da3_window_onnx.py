"""Depth Anything 3's window forward as ONNX (fixed N): onnxruntime against PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpt_ros.models.network.depth_anything3 import DepthAnything3Window
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.runtime.export import WINDOW_CHECK_TOLERANCE, export_window_onnx


def test_window_export_matches_torch(small_file, tmp_path):
    """da3-small, 3 views at 140x112, saddle_balanced: every output within 1e-4 of
    PyTorch's maximum (measured: 4e-6), on an input other than the traced one."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "window.onnx"
    result = export_window_onnx(
        "depth_anything_3_small", path, views=3, width=140, height=112, weights=small_file
    )
    assert result.max_rel_diff is not None and result.max_rel_diff <= WINDOW_CHECK_TOLERANCE
    sidecar = json.loads(result.sidecar.read_text(encoding="utf-8"))
    assert sidecar["input_shape"] == [1, 3, 3, 112, 140]
    assert sidecar["window"]["outputs"]["camera_from_world"] == [1, 3, 3, 4]
    # Another input: the reference view is chosen in the graph, as PyTorch chooses it.
    window = DepthAnything3Window(load_model("depth_anything_3_small", small_file))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 3, 112, 140, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.inference_mode():
        want = window.model.forward_window(x)
    got = session.run(None, {"input": x.numpy()})
    assert int(got[4][0]) == int(want.reference_view[0])
    for name, g, w in zip(window.output_names[:4], got, want[:4]):
        w = w.numpy()
        assert np.abs(g - w).max() / np.abs(w).max() <= WINDOW_CHECK_TOLERANCE, name


def test_single_frame_types_have_no_window_export(tmp_path):
    with pytest.raises(ValueError, match="depth_anything_3_small"):
        export_window_onnx(
            "depth_anything_3_mono_large", tmp_path / "x.onnx", views=2, width=56, height=56
        )
