"""Fidelity and behaviour of dpt_ros.models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_cases import cheap_model, free

from dpt_ros.models import (
    DPTDepthModel,
    Predictor,
    get_spec,
)


@pytest.mark.parametrize(
    "model_type,out_dtype",
    [
        ("dpt_hybrid_kitti", np.float32),
        ("dpt_large_ade20k", np.uint8),
    ],
)
def test_models_without_goldens_load_and_run(model_type, out_dtype, det_checkpoint, detweights):
    spec = get_spec(model_type)
    # load_model matches the file's layout strictly (check_state_dict, strict=True).
    predictor = Predictor(
        model_type,
        weights=det_checkpoint(model_type),
        device="cpu",
        backend="torch",
        precision="fp32",
        network_size=(128, 96),
    )
    key = "scratch.output_conv.4.weight" if spec.is_depth else "scratch.output_conv.4.bias"
    loaded = predictor.model.state_dict()[key]
    torch.testing.assert_close(
        loaded, detweights.deterministic_tensor(key, loaded.shape), rtol=0, atol=0
    )
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    out = predictor.predict(image)
    assert out.shape == (96, 128) and out.dtype == out_dtype
    if spec.is_metric:
        assert np.isfinite(out).all() and out.min() > 0
        assert out.max() <= 1.0 / spec.shift * 1.01  # bicubic may overshoot slightly
    else:
        assert out.min() >= 1 and out.max() <= 150
    del predictor
    free()


@pytest.mark.parametrize(
    "backbone,readout",
    [
        *[(b, r) for b in ("vitb16_384", "vitb_rn50_384") for r in ("ignore", "add", "project")],
        ("vitl16_384", "project"),
    ],
)
def test_depth_model_shapes_non_square(backbone, readout):
    model = cheap_model(DPTDepthModel, backbone=backbone, readout=readout)
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 96))
        assert out.shape == (2, 64, 96)
        assert torch.isfinite(out).all() and (out >= 0).all()  # non_negative
        if backbone == "vitb_rn50_384":  # portrait too (grid 4x6 -> 6x4)
            assert model(torch.randn(1, 3, 96, 64)).shape == (1, 96, 64)
    del model
    free()
