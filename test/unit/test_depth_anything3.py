"""Depth Anything 3 against the reference (depth-anything-3 0.1.1): preprocessing,
the network on the reference's own input, key layouts, and the ONNX export.

The goldens (``fixtures/compact/da3``) come from ``scripts/make_da3_goldens.py``: the
reference run in float32 on the CPU with deterministic weights for the key names of
``fixtures/keys/keys_depth_anything_3_<type>.json``, on ``scene_a.png``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from da3_cases import METRIC, NET_RTOL, SMALL, da3_golden, golden_input

from dpt_ros.models import CheckpointError
from dpt_ros.models.da3_transforms import (
    fill_sky,
    metric_depth,
    network_input_size,
    network_intrinsics,
    preprocess,
    resize_plan,
)
from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX, strip_hub_prefix
from dpt_ros.models.network.depth_anything3 import DA3_CONFIGS
from dpt_ros.models.network.rope2d import apply_rope, grid_positions, rope_tables
from dpt_ros.models.weights.da3_checkpoint import check_da3_state_dict, da3_layout, identify

#: (type, process_res) of every golden; 350 is the two-stage resize (350x262 -> 350x266).
SMALL_RES = (280, 504, 350)


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(
    "image_hw,res,first,final",
    [
        ((480, 640), 280, (210, 280), (210, 280)),
        ((480, 640), 504, (378, 504), (378, 504)),
        ((480, 640), 350, (262, 350), (266, 350)),  # round(262.5) = 262, then up to 266
        ((640, 480), 504, (504, 378), (504, 378)),
        ((480, 640), 640, (480, 640), (476, 644)),  # no first resize; 476 down, 644 up
        ((720, 1280), 504, (284, 504), (280, 504)),
        ((100, 120), 504, (420, 504), (420, 504)),  # enlarging
    ],
)
def test_resize_plan_is_the_references(image_hw, res, first, final):
    assert resize_plan(image_hw, res) == (first, final)
    assert network_input_size(image_hw, res) == final


@pytest.mark.parametrize("res", SMALL_RES)
def test_preprocess_equals_the_references_net_input(scene_a_rgb, res):
    golden = da3_golden(SMALL, res)
    got = preprocess(scene_a_rgb, res)
    assert got.shape == golden.shape("net_input") and got.dtype == np.float32
    index, want = golden.samples("net_input")
    np.testing.assert_array_equal(got[index], want)
    assert abs(got.mean(dtype=np.float64) - float(golden.raw("net_input__mean"))) < 1e-9
    assert tuple(golden.raw("net_size")) == got.shape[1:]


def test_preprocess_refuses_what_is_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(np.zeros((10, 10), np.uint8))


def test_network_intrinsics_are_the_references():
    golden = da3_golden(METRIC, 280)
    got = network_intrinsics(golden.raw("intrinsics_image"), (480, 640), 280)
    np.testing.assert_array_equal(got, golden.raw("intrinsics"))
    # The two-stage case scales per resize: 640x480 -> 350x262 -> 350x266.
    k = np.array([[600.0, 0, 319.5], [0, 580.0, 239.5], [0, 0, 1]], np.float32)
    two = network_intrinsics(k, (480, 640), 350)
    assert two.dtype == np.float32
    np.testing.assert_allclose(two[1, 1], np.float32(580 * 262 / 480) * np.float32(266 / 262))
    np.testing.assert_allclose(two[0, 0], 600 * 350 / 640, rtol=1e-7)


# --------------------------------------------------------------------------- RoPE


def test_rope_positions_are_the_references_grid():
    rows, cols = grid_positions((3, 4))
    want = torch.cartesian_prod(torch.arange(3), torch.arange(4)) + 1
    assert rows[0] == 0 and cols[0] == 0
    torch.testing.assert_close(torch.stack((rows[1:], cols[1:]), -1), want.float())
    rows, cols = grid_positions((3, 4), shared=True)
    assert rows.tolist() == [0.0] + [1.0] * 12 and cols.tolist() == rows.tolist()


def test_rope_equals_a_table_lookup():
    """The reference looks cos/sin up in a table over 0..max(position); the tables here
    are computed per token from the grid, with the same float32 angles."""
    torch.manual_seed(0)
    grid, head_dim = (5, 7), 64
    x = torch.randn(2, 3, 1 + 35, head_dim)
    rows, cols = grid_positions(grid)
    half = head_dim // 2
    inv_freq = 1.0 / (100.0 ** (torch.arange(0, half, 2).float() / half))
    table = torch.einsum("i,j->ij", torch.arange(8, dtype=torch.float32), inv_freq)
    table = torch.cat((table, table), dim=-1)

    def rope_1d(t, pos):
        cos, sin = table.cos()[pos.long()], table.sin()[pos.long()]
        a, b = t.chunk(2, dim=-1)
        return t * cos + torch.cat((-b, a), dim=-1) * sin

    vertical, horizontal = x.chunk(2, dim=-1)
    want = torch.cat((rope_1d(vertical, rows), rope_1d(horizontal, cols)), dim=-1)
    torch.testing.assert_close(apply_rope(x, rope_tables(grid, head_dim)), want, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- network


@pytest.mark.parametrize("res", SMALL_RES)
def test_small_matches_the_reference(small_model, scene_a_rgb, res):
    golden = da3_golden(SMALL, res)
    x = golden_input(golden, scene_a_rgb)
    with torch.inference_mode():
        features = small_model.forward_features(x)
        depth, confidence = small_model.head(features.maps, (x.shape[-2] // 14, x.shape[-1] // 14))
        pose = small_model.camera_pose(features.camera)
    assert small_model.output_names == ("depth", "confidence")
    assert golden.relative_error("depth", depth[0].numpy()) <= NET_RTOL
    assert golden.relative_error("confidence", confidence[0].numpy()) <= NET_RTOL
    np.testing.assert_allclose(pose[0].numpy(), golden.raw("pose_encoding"), atol=1e-5)
    if res == 280:  # issue 22's figures for these weights
        assert 0.09 < depth.min() < 0.11 and 12.4 < depth.max() < 12.6
        assert 1.1 < confidence.min() < 1.2 and 34.0 < confidence.max() < 34.2


def test_small_forward_is_the_head_on_the_features(small_model):
    x = torch.randn(1, 3, 56, 84)
    with torch.inference_mode():
        depth, confidence = small_model(x)
    assert depth.shape == confidence.shape == (1, 56, 84)
    assert (depth > 0).all() and (confidence > 1).all()
    with pytest.raises(ValueError, match="multiple of 14"):
        small_model(torch.zeros(1, 3, 50, 56))


def test_fill_sky_leaves_images_with_little_sky_or_ground():
    depth = torch.arange(100.0).reshape(1, 10, 10)
    sky = torch.zeros(1, 10, 10)
    sky[0, 0, :10] = 1.0  # 10 sky pixels: too few
    assert torch.equal(fill_sky(depth, sky), depth)
    sky[0, 1, :5] = 1.0  # 15
    filled = fill_sky(depth, sky)
    ground = depth[0][sky[0] < 0.3]
    assert torch.equal(filled[0][sky[0] >= 0.3], torch.full((15,), float(ground.quantile(0.99))))
    assert torch.equal(filled[0][sky[0] < 0.3], ground)


def test_metric_depth_is_focal_over_300():
    depth = torch.full((1, 2, 2), 3.0)
    k = torch.tensor([[300.0, 0, 1], [0, 600.0, 1], [0, 0, 1]])
    assert torch.equal(metric_depth(depth, k), torch.full((1, 2, 2), 4.5))


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("model_type", sorted(DA3_CONFIGS))
def test_layout_is_the_references(model_type, detweights, fixtures_dir):
    layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{model_type}.json")
    assert da3_layout(model_type) == {(k, tuple(s)) for k, s, _ in layout}
    assert all(d == "float32" for _, _, d in layout)


def _shapes(detweights, fixtures_dir, name: str) -> dict[str, tuple[int, ...]]:
    path = fixtures_dir / "keys" / f"keys_{name}.json"
    return {k: tuple(s) for k, s, _ in detweights.read_layout(path)}


def test_identify_names_the_type_a_file_looks_like(detweights, fixtures_dir):
    small = _shapes(detweights, fixtures_dir, SMALL)
    assert identify(small) == [SMALL]
    assert identify({HUB_PREFIX + k: v for k, v in small.items()}) == [SMALL]
    assert identify(_shapes(detweights, fixtures_dir, METRIC)) == [
        "depth_anything_3_mono_large",
        METRIC,
    ]
    dav2 = identify(_shapes(detweights, fixtures_dir, "depth_anything_v2_vits"))
    assert dav2[0] == "depth_anything_v2_vits"  # and its metric variants, same layout
    assert all(n.startswith("depth_anything_v2") and n.endswith("vits") for n in dav2)
    assert identify({"x": (1,)}) == []


def _meta_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def test_wrong_files_are_refused_with_what_they_are(detweights, fixtures_dir):
    small = _meta_state(_shapes(detweights, fixtures_dir, SMALL))
    with pytest.raises(
        CheckpointError, match=f"is a {SMALL} checkpoint, not depth_anything_3_base"
    ):
        check_da3_state_dict(small, "depth_anything_3_base")
    dav2 = _meta_state(_shapes(detweights, fixtures_dir, "depth_anything_v2_vits"))
    with pytest.raises(
        CheckpointError, match=r"is a depth_anything_v2_vits.* not depth_anything_3"
    ):
        check_da3_state_dict(dav2, SMALL)
    cut = {k: v for k, v in small.items() if not k.startswith("cam_enc.")}
    with pytest.raises(CheckpointError, match=r"does not match .*missing keys: cam_enc\."):
        check_da3_state_dict(cut, SMALL)
    bad = dict(small)
    bad["head.norm.weight"] = torch.empty(5, device="meta")
    with pytest.raises(CheckpointError, match=r"head\.norm\.weight: file \[5\] vs model \[768\]"):
        check_da3_state_dict(bad, SMALL)
    # The hub's prefix is accepted and stripped; a bare state_dict too.
    prefixed = {HUB_PREFIX + k: v for k, v in small.items()}
    assert set(check_da3_state_dict(prefixed, SMALL)) == set(small)
    assert strip_hub_prefix(small) == small


# --------------------------------------------------------------------------- ONNX
