"""Depth Anything 3 on windows of views, on a toy network: shapes, the reference view
and the order restored after it, equivariance to the order of the other views, cameras
and their encoding, and the predictor's window call and its errors. The numbers against
the reference are in ``test/fidelity/test_da3_window_goldens.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dpt_ros.models import Predictor
from dpt_ros.models.family import ViewCache
from dpt_ros.models.network.depth_anything3 import (
    DA3_CONFIGS,
    DepthAnything3,
    ViewPrefix,
    cameras_to_pose_encoding,
    matrix_to_quaternion,
    pose_encoding_to_cameras,
    quaternion_to_matrix,
    reference_first_order,
    select_reference_view,
)
from dpt_ros.models.registry import window_model_names

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights")

#: da3-small's layout at toy width and depth: 6 blocks, alternating from block 2.
TOY = dataclasses.replace(
    DA3_CONFIGS["depth_anything_3_small"],
    name="toy_any_view",
    embed_dim=32,
    num_heads=2,
    out_layers=(2, 3, 4, 5),
    alt_start=2,
    qknorm_start=2,
    rope_start=2,
    features=16,
    channels=(8, 16, 32, 32),
    vit_args=(("embed_dim", 32), ("depth", 6), ("num_heads", 2), ("img_size", 56)),
)
TOY_MONO = dataclasses.replace(
    TOY, name="toy_mono", alt_start=-1, qknorm_start=-1, rope_start=-1, cat_token=False
)


@pytest.fixture(scope="module")
def toy() -> DepthAnything3:
    torch.manual_seed(0)
    model = DepthAnything3(TOY).eval()
    with torch.no_grad():  # a field of view well inside (0, pi): finite focal lengths
        assert model.cam_dec is not None
        model.cam_dec.fc_fov[0].bias.fill_(1.0)
        for name, p in model.named_parameters():
            p.add_(0.02 * torch.randn_like(p))
            if name.endswith(".gamma"):  # timm's LayerScale starts at 1e-5: blocks count
                p.fill_(0.5)
        # distinct reference and other-view camera tokens: the reference view matters
        model.backbone.pretrained.camera_token.normal_()
    return model


def _views(windows: int, views: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(windows, views, 3, 28, 42, generator=torch.Generator().manual_seed(seed))


def _run(model, x, strategy="saddle_balanced", **known):
    with torch.inference_mode():
        return model.forward_window(x, reference_view=strategy, **known)


def test_window_shapes_and_ranges(toy):
    out = _run(toy, _views(2, 3))
    assert out.depth.shape == out.confidence.shape == (2, 3, 28, 42)
    assert out.camera_from_world.shape == (2, 3, 3, 4)
    assert out.intrinsics.shape == (2, 3, 3, 3)
    assert out.reference_view.shape == (2,) and out.reference_view.dtype == torch.int64
    assert (out.depth > 0).all() and (out.confidence > 1).all()
    rotation = out.camera_from_world[..., :3]
    eye = torch.eye(3).expand_as(rotation)
    torch.testing.assert_close(rotation @ rotation.mT, eye, atol=1e-5, rtol=0)
    k = out.intrinsics
    assert (k[..., 0, 2] == 21).all() and (k[..., 1, 2] == 14).all() and (k[..., 2, 2] == 1).all()
    assert (k[..., 0, 0] > 0).all() and torch.isfinite(k).all()


def test_one_view_window_is_the_single_image_forward(toy):
    x = _views(2, 1)
    out = _run(toy, x)
    with torch.inference_mode():
        depth, confidence = toy(x[:, 0])
    assert torch.equal(out.depth[:, 0], depth) and torch.equal(out.confidence[:, 0], confidence)
    assert (out.reference_view == 0).all()


def test_reference_view_goes_first_and_the_order_is_restored(toy):
    """middle of 4 views is view 2: the window runs as [2, 0, 1, 3] with ``first``, and
    comes back in the input order."""
    x = _views(1, 4)
    middle = _run(toy, x, "middle")
    assert int(middle.reference_view[0]) == 2
    order = [2, 0, 1, 3]
    inverse = [1, 2, 0, 3]
    moved = _run(toy, x[:, order], "first")
    for got, want in zip(middle[:4], moved[:4]):
        torch.testing.assert_close(got, want[:, inverse], rtol=1e-4, atol=1e-5)
    # not a no-op: with view 0 as the reference the outputs differ
    first = _run(toy, x, "first")
    assert float((first.depth - middle.depth).abs().max()) > 1e-3


def test_other_views_are_interchangeable_with_first(toy):
    x = _views(1, 4, seed=2)
    permutation = [0, 3, 1, 2]
    out = _run(toy, x, "first")
    permuted = _run(toy, x[:, permutation], "first")
    for got, want in zip(permuted[:4], out[:4]):
        torch.testing.assert_close(got, want[:, permutation], rtol=1e-4, atol=1e-5)


def test_two_views_take_no_reference(toy):
    """Below 3 views the reference's backbone picks nothing: view 0 is the reference."""
    x = _views(1, 2)
    assert int(_run(toy, x, "middle").reference_view[0]) == 0
    torch.testing.assert_close(_run(toy, x, "middle").depth, _run(toy, x, "first").depth)


def test_select_reference_view_by_strategy():
    tokens = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(3))
    assert select_reference_view(tokens, "first").tolist() == [0, 0]
    assert select_reference_view(tokens, "middle").tolist() == [2, 2]
    for strategy in ("saddle_balanced", "saddle_sim_range"):
        chosen = select_reference_view(tokens, strategy)
        assert chosen.shape == (2,) and ((chosen >= 0) & (chosen < 5)).all()
    # the most typical view (all others are scaled copies around it) is the balanced one
    base = torch.randn(16, generator=torch.Generator().manual_seed(4))
    spread = torch.stack([base * s + 0.3 * i * torch.ones(16) for i, s in enumerate((1, 2, 3))])
    assert select_reference_view(spread[None], "saddle_balanced").tolist() == [1]
    with pytest.raises(ValueError, match="saddle_balanced"):
        select_reference_view(tokens, "best")


def test_reference_first_order():
    assert reference_first_order(torch.tensor([2, 0, 4]), 5).tolist() == [
        [2, 0, 1, 3, 4],
        [0, 1, 2, 3, 4],
        [4, 0, 1, 2, 3],
    ]


def test_pose_encoding_round_trip():
    generator = torch.Generator().manual_seed(5)
    quaternion = torch.randn(2, 3, 4, generator=generator)
    quaternion = quaternion / quaternion.norm(dim=-1, keepdim=True)
    quaternion = torch.where(quaternion[..., 3:] < 0, -quaternion, quaternion)
    torch.testing.assert_close(matrix_to_quaternion(quaternion_to_matrix(quaternion)), quaternion)
    encoding = torch.cat(
        (torch.randn(2, 3, 3, generator=generator), quaternion, torch.full((2, 3, 2), 0.9)), -1
    )
    extrinsics, k = pose_encoding_to_cameras(encoding, (28, 42))
    torch.testing.assert_close(cameras_to_pose_encoding(extrinsics, k, (28, 42)), encoding)
    # camera-from-world: the camera's centre (the encoding's translation) maps to 0
    centre = encoding[..., :3, None]
    zero = extrinsics[..., :3] @ centre + extrinsics[..., 3:]
    torch.testing.assert_close(zero, torch.zeros_like(zero), atol=1e-5, rtol=0)


def test_known_cameras_condition_the_forward(toy):
    x = _views(1, 3)
    extrinsics = torch.eye(4).repeat(1, 3, 1, 1)
    extrinsics[0, 1:, 0, 3] = torch.tensor([0.5, 1.0])
    k = torch.tensor([[30.0, 0, 21], [0, 30, 14], [0, 0, 1]]).repeat(1, 3, 1, 1)
    known = _run(toy, x, camera_from_world=extrinsics, intrinsics=k)
    assert int(known.reference_view[0]) == 0
    assert not torch.allclose(known.depth, _run(toy, x).depth)
    with pytest.raises(ValueError, match="both"):
        _run(toy, x, camera_from_world=extrinsics)


def test_single_view_networks_refuse_windows():
    mono = DepthAnything3(TOY_MONO).eval()
    with pytest.raises(ValueError, match="one view at a time"):
        mono.forward_window(_views(1, 2))


# --------------------------------------------------------------------------- predictor


@pytest.fixture(scope="module")
def small() -> Predictor:
    return Predictor(
        "depth_anything_3_small",
        device="cpu",
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(56, 56),
    )


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_infer_window_gives_the_views_and_their_cameras(small):
    views = [_rgb(60, 80, i) for i in range(3)]
    found = small.infer_window(views, "first")
    assert found.depth.shape == found.confidence.shape == (3, 42, 56)
    assert isinstance(found.depth, np.ndarray) and found.depth.dtype == np.float32
    cameras = found.cameras
    assert cameras.camera_from_world.shape == (3, 3, 4) and cameras.intrinsics.shape == (3, 3, 3)
    assert cameras.camera_from_world.dtype == cameras.intrinsics.dtype == np.float32
    assert cameras.reference_view == 0 and cameras.world_points is None
    np.testing.assert_allclose(cameras.intrinsics[:, :2, 2], [[28, 21]] * 3)
    resized = small.infer_window(views, "first", output_hw=(60, 80))
    assert resized.depth.shape == (3, 60, 80)
    # pixel centres follow the align_corners=False resize: u = s (u_net + 0.5) - 0.5
    s = 80 / 56
    centre = [s * 28.5 - 0.5, s * 21.5 - 0.5]
    np.testing.assert_allclose(resized.cameras.intrinsics[:, :2, 2], [centre] * 3, rtol=1e-6)
    # network_size is process_res, as for single images
    assert small.infer_window(views[:2]).depth.shape[1:] == small.input_size((60, 80))


def test_infer_window_refuses_bad_windows(small):
    with pytest.raises(ValueError, match="one size"):
        small.infer_window([_rgb(60, 80, 0), _rgb(64, 80, 1)])
    with pytest.raises(ValueError, match="at least one view"):
        small.infer_window([])
    with pytest.raises(ValueError, match="saddle_sim_range"):
        small.infer_window([_rgb(60, 80, 0)] * 3, "best")
    three = [_rgb(60, 80, 0)] * 3
    with pytest.raises(ValueError, match="both"):
        small.infer_window(three, extrinsics=np.zeros((3, 3, 4)))
    with pytest.raises(ValueError, match=r"\(3, 3, 3\)"):
        small.infer_window(three, extrinsics=np.zeros((3, 3, 4)), intrinsics=np.eye(3))
    with pytest.raises(ValueError, match=r"\(3, 3, 4\) or \(3, 4, 4\)"):
        small.infer_window(three, extrinsics=np.zeros((2, 3, 4)), intrinsics=np.eye(3))


def test_single_frame_models_name_the_window_models():
    assert window_model_names() == (
        "depth_anything_3_small",
        "depth_anything_3_base",
        "depth_anything_3_large",
        "vggt_1b",
    )
    single = Predictor(
        "depth_anything_v2_vits",
        device="cpu",
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(56, 56),
    )
    with pytest.raises(ValueError, match="depth_anything_3_small, depth_anything_3_base"):
        single.infer_window([_rgb(60, 80, 0)] * 2)


def test_kept_view_prefixes_give_the_same_window(toy):
    encoder = toy.backbone.pretrained
    x = _views(1, 4, seed=5)
    plain = _run(toy, x)  # saddle_balanced: a reference view is chosen and moved first
    with torch.inference_mode():
        # views computed in other batches (as kept keyframes are), joined in window order
        parts = [encoder.view_prefix(x[0, :2]), encoder.view_prefix(x[0, 2:])]
        prefix = ViewPrefix.join(parts)
        kept = toy.forward_window(x, prefix=prefix)
        shuffled = ViewPrefix.join([encoder.view_prefix(x[0, [3, 1]]), parts[0].take([0])])
        reordered = toy.forward_window(x[:, [3, 1, 0]], prefix=shuffled)
    assert int(kept.reference_view[0]) == int(plain.reference_view[0])
    for name in ("depth", "confidence", "camera_from_world", "intrinsics"):
        np.testing.assert_allclose(getattr(kept, name), getattr(plain, name), rtol=0, atol=1e-6)
    again = _run(toy, x[:, [3, 1, 0]])
    np.testing.assert_allclose(reordered.depth, again.depth, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="prefix of 2 views for 4"):
        with torch.inference_mode():
            toy.forward_window(x, prefix=parts[0])


def test_keyframes_come_back_from_the_view_cache(small):
    frames = {key: _rgb(60, 80, key) for key in range(5)}
    small.view_cache.clear()
    hits, misses = small.view_cache.hits, small.view_cache.misses
    for keys in ([0, 1, 2], [1, 2, 3], [2, 3, 4], [4, 2, 3]):
        views = [frames[k] for k in keys]
        fresh = small.infer_window(views, "saddle_balanced")
        kept = small.infer_window(views, "saddle_balanced", view_keys=keys)
        assert kept.cameras.reference_view == fresh.cameras.reference_view
        np.testing.assert_allclose(kept.depth, fresh.depth, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            kept.cameras.camera_from_world, fresh.cameras.camera_from_world, atol=1e-5
        )
    # 3 new views, then one new view per window; the last window is all kept views
    assert small.view_cache.misses - misses == 5
    assert small.view_cache.hits - hits == 7
    with pytest.raises(ValueError, match="2 view keys for a window of 3"):
        small.infer_window([frames[k] for k in (0, 1, 2)], view_keys=[0, 1])


def test_the_view_cache_drops_the_least_recently_used():
    cache = ViewCache(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and len(cache) == 2
    with pytest.raises(ValueError, match="at least 1 view"):
        ViewCache(capacity=0)
