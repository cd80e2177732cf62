"""Depth Anything 3 against the reference (depth-anything-3 0.1.1): preprocessing,"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from da3_cases import NET_RTOL

from dpt_ros.models.da3_transforms import (
    preprocess,
)


def test_onnx_export_matches_torch(small_model, tmp_path, scene_a_rgb):
    """da3-small at 140x112 through the exporter dpt_ros uses (torch.export, opset 18,
    fixed shapes) and onnxruntime on the CPU: within 1e-4 of PyTorch's maximum (measured
    3e-6 and 5e-6 at 280x210; the TorchScript exporter gives the same)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    x = torch.from_numpy(preprocess(scene_a_rgb, 140))[None]
    path = tmp_path / "da3_small.onnx"
    program = torch.onnx.export(
        small_model,
        (x,),
        dynamo=True,
        opset_version=18,
        input_names=["input"],
        output_names=list(small_model.output_names),
        optimize=True,
        verbose=False,
    )
    assert program is not None
    program.save(str(path), external_data=False)
    with torch.inference_mode():
        want = [t.numpy() for t in small_model(x)]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(small_model.output_names), {"input": x.numpy()})
    for name, g, w in zip(small_model.output_names, got, want):
        assert g.shape == w.shape == (1, 112, 140), name
        assert np.abs(g - w).max() / np.abs(w).max() <= NET_RTOL, name
