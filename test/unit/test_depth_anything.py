"""Depth Anything V2 through every public path: the sizing rule, the checkpoint checks,
and the two goldens (relative vits, metric Hypersim vitb) through ``dpt-ros predict``,
``dpt-ros bag`` and the node over real rclpy.

The Predictor-level goldens (network and end to end) are in ``test_models.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from depth_anything_cases import METRIC, RELATIVE

from dpt_ros.models import CheckpointError, Predictor, get_spec, load_model
from dpt_ros.models.network.depth_anything import interpolate_pos_embed
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.transforms import network_input_size

# --------------------------------------------------------------------------- sizing


@pytest.mark.parametrize(
    "image_hw,n,want",
    [
        ((480, 640), 518, (518, 686)),  # the goldens' input
        ((480, 640), 308, (308, 406)),  # a Jetson-sized network
        ((640, 480), 518, (686, 518)),  # portrait
        ((500, 500), 300, (308, 308)),  # 294 would be below 300: rounded up instead
        ((1080, 1920), 518, (518, 924)),  # downscaling keeps the shorter side at N
    ],
)
def test_network_size_is_the_originals_input_size(image_hw, n, want):
    spec = get_spec(RELATIVE)
    got = network_input_size(image_hw, (n, n), True, spec.size_multiple, spec.resize_method)
    assert got == want


def test_predictor_network_size_n_by_n_reproduces_input_size_n():
    p = Predictor(RELATIVE, random_weights=True, device="cpu", network_size=(308, 308))
    assert p.input_size((480, 640)) == (308, 406)
    assert Predictor(RELATIVE, random_weights=True, device="cpu").input_size((480, 640)) == (
        518,
        686,
    )


def test_network_size_must_be_multiples_of_14():
    problems = PredictorOptions(RELATIVE, network_size=(320, 320)).problems()
    assert problems == [
        f"network size for {RELATIVE} must be positive multiples of 14, got 320x320"
    ]
    assert PredictorOptions(RELATIVE, network_size=(308, 308)).problems() == []
    assert (
        "multiples of 32" in PredictorOptions("dpt_hybrid", network_size=(308, 308)).problems()[0]
    )


def test_position_embeddings_scale_by_factor_as_the_original():
    """The original resizes the 37x37 grid by the factor (n + 0.1) / 37, which samples
    differently from resizing to n (timm's and transformers' way)."""
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 37 * 37, 8)
    assert interpolate_pos_embed(pos, (37, 37)) is pos
    got = interpolate_pos_embed(pos, (37, 49))
    assert got.shape == (1, 1 + 37 * 49, 8)
    torch.testing.assert_close(got[:, :1], pos[:, :1])
    grid = pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2)
    by_size = F.interpolate(grid, size=(37, 49), mode="bicubic", align_corners=False)
    by_size = by_size.permute(0, 2, 3, 1).reshape(1, -1, 8)
    assert (got[:, 1:] - by_size).abs().max() > 1e-3
    by_factor = F.interpolate(grid, scale_factor=(37.1 / 37, 49.1 / 37), mode="bicubic")
    torch.testing.assert_close(got[:, 1:], by_factor.permute(0, 2, 3, 1).reshape(1, -1, 8))


# --------------------------------------------------------------------------- checkpoints


def test_file_of_another_size_names_what_it_is(det_checkpoint):
    with pytest.raises(CheckpointError) as err:
        load_model("depth_anything_v2_vitb", det_checkpoint(RELATIVE))
    message = str(err.value)
    assert "is a depth_anything_v2_vits / " in message and "not depth_anything_v2_vitb" in message


def test_file_of_another_family_names_what_it_is(det_checkpoint):
    with pytest.raises(CheckpointError, match=r"is a dpt_hybrid / .*not depth_anything_v2_vits"):
        load_model(RELATIVE, det_checkpoint("dpt_hybrid"))
    with pytest.raises(CheckpointError, match=r"is a depth_anything_v2_vits / .*not dpt_hybrid"):
        load_model("dpt_hybrid", det_checkpoint(RELATIVE))


def test_mask_token_must_be_present_and_shaped(tmp_path, det_checkpoint):
    """Unused at inference, but part of every official file: refused only if missing or
    mis-shaped."""
    state = torch.load(det_checkpoint(RELATIVE), weights_only=True)
    assert state["pretrained.mask_token"].shape == (1, 384)
    load_model(RELATIVE, det_checkpoint(RELATIVE))
    missing = {k: v for k, v in state.items() if k != "pretrained.mask_token"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"1 missing keys: pretrained\.mask_token"):
        load_model(RELATIVE, tmp_path / "missing.pth")
    torch.save({**state, "pretrained.mask_token": torch.zeros(2, 384)}, tmp_path / "shaped.pth")
    with pytest.raises(CheckpointError, match=r"pretrained\.mask_token: file \[2, 384\]"):
        load_model(RELATIVE, tmp_path / "shaped.pth")


def test_specs_state_licence_and_hub_file():
    small, base = get_spec(RELATIVE), get_spec("depth_anything_v2_metric_vkitti_vitl")
    assert small.licence == "Apache-2.0" and base.licence == "CC-BY-NC-4.0"
    assert small.url == (
        "https://huggingface.co/depth-anything/Depth-Anything-V2-Small/resolve/main/"
        "depth_anything_v2_vits.pth"
    )
    assert base.max_depth == 80.0 and get_spec(METRIC).max_depth == 20.0
    assert base.is_metric and not small.is_metric and small.hash_prefix is None


def test_metric_ceiling_is_the_maximum_depth():
    """REP-118: depth at a metric type's ceiling (sigmoid * max_depth) reads +Inf."""
    from dpt_ros.models.geometry import mark_saturated

    predictor = Predictor(METRIC, random_weights=True, device="cpu")
    assert predictor.depth_ceiling == 20.0
    marked = mark_saturated(torch.tensor([1.0, 19.9, 19.99]), predictor.depth_ceiling)
    assert marked.tolist() == [1.0, 19.899999618530273, float("inf")]


# --------------------------------------------------------------------------- CLI, bag, node


# --------------------------------------------------------------------------- export
