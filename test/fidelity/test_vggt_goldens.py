"""VGGT against the reference (facebookresearch/vggt 44b3afb): the preprocessing at 518,
and the network's outputs with the deterministic weights on windows of 2 and 3 views
at network sizes 112 to 168, fp32 on the CPU (``scripts/make_vggt_goldens.py``).

The deterministic weights of 1.19 B parameters are made once per run, as a file with a
track-head entry as the official files have, and read through the Predictor
(``vggt_det_predictor``): minutes on two cores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from goldens import Golden
from vggt_cases import CASES, MODEL_TYPE, case_views, golden_path

from dpt_ros.models.families.vggt import preprocess_views
from dpt_ros.models.network.vggt import pose_encoding_to_extri_intri

#: Network outputs against the reference, relative to each output's maximum (the
#: issue's bound).
NET_RTOL = 1e-4
#: Outputs stored whole in the goldens (per view).
_WHOLE = ("pose_enc", "extrinsics", "intrinsics")
_NETWORK_CASES = [c for c in CASES if c.network]
_PREPROCESSING_CASES = [c for c in CASES if not c.network]


def _golden(case) -> Golden:
    return Golden.load(golden_path(case))


def _whole_error(want: np.ndarray, got: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_preprocessing_is_the_references(case):
    """At 518 the reference's own load_and_preprocess_images; at the network cases' sizes
    its rule with 518 replaced by N, as the goldens' inputs were made. Exact."""
    golden = _golden(case)
    x = preprocess_views(case_views(case), case.size, case.mode)
    assert golden.relative_error("net_input", x) == 0.0


@pytest.fixture(scope="module")
def outputs(vggt_det_predictor):
    """case name -> our outputs on the case's views (float64 numpy)."""
    found = {}
    model = vggt_det_predictor.model
    with torch.no_grad():
        for case in _NETWORK_CASES:
            x = torch.from_numpy(preprocess_views(case_views(case), case.size, case.mode))
            out = model.window(x[None])
            extrinsics, intrinsics = pose_encoding_to_extri_intri(out.pose_enc, x.shape[-2:])
            found[case.name] = {
                "depth": out.depth[0].numpy(),
                "depth_conf": out.depth_conf[0].numpy(),
                "world_points": out.world_points[0].numpy(),
                "world_points_conf": out.world_points_conf[0].numpy(),
                "pose_enc": out.pose_enc[0].numpy(),
                "extrinsics": extrinsics[0].numpy(),
                "intrinsics": intrinsics[0].numpy(),
            }
    return found


@pytest.mark.parametrize("case", _NETWORK_CASES, ids=lambda c: c.name)
def test_network_matches_the_reference(outputs, case, capsys):
    golden = _golden(case)
    ours = outputs[case.name]
    errors = {}
    for name, got in ours.items():
        if name in _WHOLE:
            errors[name] = _whole_error(golden.raw(name), got)
        else:
            errors[name] = golden.relative_error(name, got)
    with capsys.disabled():
        print(
            f"\n{MODEL_TYPE} {case.name}: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
        )
    assert max(errors.values()) <= NET_RTOL, errors


def test_infer_window_matches_the_reference(vggt_det_predictor):
    """Predictor.infer_window on the views themselves: Pillow's preprocessing (crop), the
    file read with its track head skipped, the family's decoding."""
    case = next(c for c in _NETWORK_CASES if c.name == "s3_140_crop")
    golden = _golden(case)
    found = vggt_det_predictor.infer_window(case_views(case))
    cameras = found.cameras
    assert golden.relative_error("depth", found.depth) <= NET_RTOL
    assert golden.relative_error("depth_conf", found.confidence) <= NET_RTOL
    assert golden.relative_error("world_points", cameras.world_points) <= NET_RTOL
    assert _whole_error(golden.raw("extrinsics"), cameras.camera_from_world) <= NET_RTOL
    assert _whole_error(golden.raw("intrinsics"), cameras.intrinsics) <= NET_RTOL
    assert cameras.reference_view == 0
    assert cameras.camera_from_world.dtype == cameras.intrinsics.dtype == np.float32
    with pytest.raises(ValueError, match="takes no known cameras"):
        vggt_det_predictor.infer_window(
            case_views(case),
            extrinsics=golden.raw("extrinsics"),
            intrinsics=golden.raw("intrinsics"),
        )
