"""VGGT on a toy network: shapes, view 0's special role, the four kept layers, the pose
decoding, the preprocessing rule and the weight-file conventions. The numbers against
the reference are in ``test/fidelity/test_vggt_goldens.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpt_ros.models.families.vggt import (
    input_size,
    preprocess_views,
    preprocessed_size,
    without_track_head,
)
from dpt_ros.models.network.vggt import (
    Vggt,
    VggtConfig,
    VggtSingleView,
    pose_encoding_to_extri_intri,
    quaternion_to_matrix,
)

#: VGGT's layout at toy width and depth: 6 block pairs, 4 of them kept (not the last).
TOY = VggtConfig(
    embed_dim=32,
    depth=6,
    num_heads=2,
    dino_depth=2,
    dino_heads=2,
    registers=2,
    pos_grid=4,
    out_layers=(0, 2, 3, 4),
    features=16,
    channels=(8, 16, 32, 32),
    camera_depth=1,
    camera_iterations=2,
)


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
            if name.endswith(".gamma"):  # LayerScale: let every block count
                p.fill_(0.5)
        # a field of view well inside (0, pi): finite focal lengths
        model.camera_head.pose_branch.fc2.bias[7:].fill_(1.0)
    return model.eval()


@pytest.fixture(scope="module")
def toy() -> Vggt:
    torch.manual_seed(0)  # the constructor's own init too: not whatever ran before
    return _randomise(Vggt(TOY))


@pytest.fixture(scope="module")
def views() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(1, 3, 3, 42, 56)


@pytest.fixture(scope="module")
def out(toy, views):
    with torch.no_grad():
        return toy(views)


def test_outputs_have_the_references_shapes_and_ranges(out):
    assert out.pose_enc.shape == (1, 3, 9)
    assert out.depth.shape == out.depth_conf.shape == out.world_points_conf.shape == (1, 3, 42, 56)
    assert out.world_points.shape == (1, 3, 42, 56, 3)
    assert out.depth.min() > 0
    assert out.depth_conf.min() > 1 and out.world_points_conf.min() > 1
    assert out.pose_enc[..., 7:].min() >= 0  # field of view through ReLU


def test_views_after_the_first_are_interchangeable(toy, views, out):
    """Permuting views 1..S-1 permutes every output; moving view 0 changes them."""
    order = [0, 2, 1]
    with torch.no_grad():
        swapped = toy(views[:, order])
    for name in ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf"):
        torch.testing.assert_close(
            getattr(swapped, name), getattr(out, name)[:, order], rtol=1e-4, atol=1e-5
        )
    with torch.no_grad():
        first_moved = toy(views[:, [1, 0, 2]])
    assert not torch.allclose(first_moved.depth[:, 1], out.depth[:, 0], rtol=1e-3, atol=1e-4)


def test_only_the_four_read_layers_are_kept(toy, views):
    """The aggregator returns 4 tensors, [frame | global] outputs of the kept pairs, and
    never runs the pairs after the last kept one."""
    frame_out: dict[int, torch.Tensor] = {}
    global_out: dict[int, torch.Tensor] = {}
    hooks = []
    aggregator = toy.aggregator
    for i in range(TOY.depth):
        hooks.append(
            aggregator.frame_blocks[i].register_forward_hook(
                lambda _m, _i, o, i=i: frame_out.__setitem__(i, o)
            )
        )
        hooks.append(
            aggregator.global_blocks[i].register_forward_hook(
                lambda _m, _i, o, i=i: global_out.__setitem__(i, o)
            )
        )
    try:
        with torch.no_grad():
            kept = aggregator(views)
    finally:
        for hook in hooks:
            hook.remove()
    b, s = views.shape[:2]
    assert len(kept) == 4
    assert sorted(global_out) == list(range(max(TOY.out_layers) + 1))
    for tensor, index in zip(kept, TOY.out_layers, strict=True):
        p, c = tensor.shape[2], TOY.embed_dim
        assert tensor.shape == (b, s, p, 2 * c)
        torch.testing.assert_close(tensor[..., :c], frame_out[index].reshape(b, s, p, c))
        torch.testing.assert_close(tensor[..., c:], global_out[index].reshape(b, s, p, c))


def test_single_views_are_windows_of_one(views):
    model = _randomise(VggtSingleView(TOY))
    with torch.no_grad():
        single = model(views[0])
        one = model.window(views[0, :1][None])
    assert single.shape == (3, 2, 42, 56)
    torch.testing.assert_close(single[0, 0], one.depth[0, 0])
    torch.testing.assert_close(single[0, 1], one.depth_conf[0, 0])


def test_pose_encoding_decodes_to_opencv_cameras():
    half = math.sqrt(0.5)
    # translation, a quarter turn about z (x y z w), fields of view
    enc = torch.tensor([[[1.0, 2.0, 3.0, 0.0, 0.0, half, half, 1.0, 1.2]]])
    extrinsics, intrinsics = pose_encoding_to_extri_intri(enc, (84, 112))
    assert extrinsics.shape == (1, 1, 3, 4) and intrinsics.shape == (1, 1, 3, 3)
    rotation = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(extrinsics[0, 0, :, :3], rotation, atol=1e-6, rtol=0)
    torch.testing.assert_close(extrinsics[0, 0, :, 3], torch.tensor([1.0, 2.0, 3.0]))
    k = intrinsics[0, 0]
    assert k[0, 0].item() == pytest.approx(56 / math.tan(0.6))
    assert k[1, 1].item() == pytest.approx(42 / math.tan(0.5))
    assert (k[0, 2].item(), k[1, 2].item(), k[2, 2].item()) == (56.0, 42.0, 1.0)
    # any norm: the rotation is that of the unit quaternion
    torch.testing.assert_close(
        quaternion_to_matrix(3 * enc[0, 0, 3:7]), rotation, atol=1e-6, rtol=0
    )


@pytest.mark.parametrize(
    ("image_hw", "mode", "resized", "net"),
    [
        ((480, 640), "crop", (84, 112), (84, 112)),  # 480 * 112 / 640 / 14 = 6
        ((420, 300), "crop", (196, 140), (140, 140)),  # taller than wide: cropped
        ((360, 640), "pad", (98, 168), (168, 168)),  # 6.75 -> 7 patches, padded
        ((640, 480), "pad", (168, 126), (168, 168)),  # portrait: the height at N
        ((480, 640), "crop", (392, 518), (392, 518)),  # the reference's own size
    ],
)
def test_sizes_follow_the_references_rule(image_hw, mode, resized, net):
    assert preprocessed_size(image_hw, net[1] if mode == "crop" else max(net), mode) == resized
    assert input_size(image_hw, net[1] if mode == "crop" else max(net), mode) == net


def test_preprocessing_crops_pads_white_and_pads_mixed_sizes():
    rng = np.random.default_rng(0)
    tall = rng.integers(0, 255, (420, 300, 3), dtype=np.uint8)
    wide = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    padded = preprocess_views([wide], 168, "pad")
    assert padded.shape == (1, 3, 168, 168) and padded.dtype == np.float32
    assert np.all(padded[0, :, :35] == 1.0) and np.all(padded[0, :, -35:] == 1.0)
    assert padded[0, :, 35:-35].max() <= 1.0 and padded[0, :, 35:-35].min() >= 0.0
    mixed = preprocess_views([wide, tall], 140, "crop")  # 84x140 and 140x140
    assert mixed.shape == (2, 3, 140, 140)
    assert np.all(mixed[0, :, :28] == 1.0) and np.all(mixed[0, :, -28:] == 1.0)
    with pytest.raises(ValueError, match="multiple of 14"):
        preprocess_views([wide], 150)
    with pytest.raises(ValueError, match="crop, pad"):
        preprocess_views([wide], 140, "stretch")


def test_track_head_keys_are_skipped_by_name_only():
    state = {
        "aggregator.frame_blocks.0.norm1.weight": 1,
        "aggregator.global_blocks.0.norm1.weight": 2,
        "track_head.feature_extractor.norm.weight": 3,
        "stray.weight": 4,
    }
    assert without_track_head(state) == {
        "aggregator.frame_blocks.0.norm1.weight": 1,
        "aggregator.global_blocks.0.norm1.weight": 2,
        "stray.weight": 4,
    }
    other = {"track_head.x": 1, "pretrained.cls_token": 2}  # not VGGT's: untouched
    assert without_track_head(other) == other


def _meta_state(layout) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, s, d in layout}


def test_layout_equals_the_references_and_track_head_is_skipped(key_spec):
    """Our network's state_dict is the reference's key for key; an official file's
    track_head.* entries are dropped by name, any other stray key refuses the file."""
    from dpt_ros.models.errors import CheckpointError
    from dpt_ros.models.registry import get_spec
    from dpt_ros.models.weights.checkpoint import check_state_dict, file_keys

    layout = key_spec("vggt_1b")
    with torch.device("meta"):
        ours = VggtSingleView().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(s) for k, s, _ in layout}
    spec = get_spec("vggt_1b")
    official = _meta_state(layout)
    official["track_head.feature_extractor.norm.weight"] = torch.empty(128, device="meta")
    check_state_dict(file_keys(official), spec, "model.pt")  # no error
    official["camera_head.extra.weight"] = torch.empty(9, device="meta")
    with pytest.raises(CheckpointError, match="camera_head"):
        check_state_dict(file_keys(official), spec, "model.pt")


def test_vggt_has_engines_that_auto_never_waits_for(monkeypatch):
    """VGGT's engines are on (proven on a reduced configuration: the export tier's
    test_vggt_window_engine.py), their weights beside the graph; ``auto`` resolves to
    an engine backend as for the other families, and never starts a build of 1.19 B
    parameters by itself (test_window_engine_choice.py)."""
    from dpt_ros.models.options import PredictorOptions
    from dpt_ros.models.registry import get_spec
    from dpt_ros.runtime import engine_cache

    family = get_spec("vggt_1b").family
    assert family.engines and family.external_data and not family.auto_builds
    monkeypatch.setattr(engine_cache, "_onnxruntime_runs_on", lambda device: True)
    auto = PredictorOptions("vggt_1b", random_weights=True, device="cpu")
    cpu = torch.device("cpu")
    assert engine_cache.resolve_backend(auto, cpu, torch.float32) == "onnxruntime"
    assert auto.problems() == []
    assert PredictorOptions("vggt_1b", backend="onnxruntime", device="cpu").problems() == []


def test_an_exports_sidecar_says_vggt_takes_rgb_in_0_1():
    """VGGT normalises inside its network: a sidecar must not tell a consumer to
    normalise with mean and std first (a single-image export said so)."""
    from dpt_ros.runtime.export import NORMALISED_LAYOUT, input_layout

    assert input_layout(VggtSingleView(TOY)) == "rgb / 255 (the network normalises)"
    assert input_layout(Vggt(TOY)) == "rgb / 255 (the network normalises)"
    assert input_layout(torch.nn.Conv2d(3, 1, 1)) == NORMALISED_LAYOUT  # the others
