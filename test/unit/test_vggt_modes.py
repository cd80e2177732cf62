"""VGGT's ``crop`` and ``pad`` through windows: the region of each image the network grid
covers (``network_box``), ``Predictor.infer_window(mode=...)`` on a toy network, and
``dpt-ros reconstruct --mode pad`` keeping the white padding out of everything but the
raw ``windows/<k>.npz``. The numbers against the reference are in
``test/fidelity/test_vggt_goldens.py`` and ``test_reconstruct_vggt_goldens.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_cases import run, write_rgb

from dpt_ros.models.families.vggt import network_boxes, preprocess_views
from dpt_ros.models.network.vggt import VggtConfig, VggtSingleView
from dpt_ros.reconstruct.grid import image_mask, intrinsics_to_input

#: VGGT's layout at toy width and depth (as test_vggt.py's).
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


def _toy() -> VggtSingleView:
    torch.manual_seed(0)
    model = VggtSingleView(TOY)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
            if name.endswith(".gamma"):
                p.fill_(0.5)
        model.camera_head.pose_branch.fc2.bias[7:].fill_(1.0)
    return model.eval()


@pytest.fixture
def toy_vggt(monkeypatch):
    """``vggt_1b`` with ``random_weights`` builds the toy network (not 1.19 B)."""
    from dpt_ros.models.weights import checkpoint

    monkeypatch.setattr(checkpoint, "build_network", lambda spec: _toy())


def _not_white(x: np.ndarray) -> np.ndarray:
    """(S, 3, h, w) input of black images -> (S, h, w) True where it is image."""
    return (x < 1.0).any(axis=1)


@pytest.mark.parametrize(
    ("sizes", "size", "mode"),
    [
        ([(360, 640)], 168, "pad"),  # 98 rows of image, 35 rows of white above and below
        ([(640, 480)], 168, "pad"),  # portrait: white columns
        ([(420, 300)], 140, "crop"),  # the box inside the image: rows 60..360
        ([(480, 640)], 112, "crop"),  # a plain resize: the whole image
        ([(360, 640), (420, 300)], 140, "crop"),  # mixed sizes padded to the largest
        ([(90, 160), (100, 100)], 56, "pad"),
    ],
)
def test_network_boxes_mark_exactly_the_image(sizes, size, mode):
    views = [np.zeros((*hw, 3), np.uint8) for hw in sizes]
    x = preprocess_views(views, size, mode)
    boxes = network_boxes(sizes, size, mode, x.shape[-2:])
    for hw, box, image in zip(sizes, boxes, _not_white(x)):
        np.testing.assert_array_equal(image_mask(x.shape[-2:], hw, box), image)


def test_a_crop_box_is_the_middle_of_a_tall_image():
    box = network_boxes([(420, 300)], 140, "crop", (140, 140))[0]
    np.testing.assert_allclose(box, [0.0, 60.0, 300.0, 360.0], atol=1e-9)
    pad = network_boxes([(360, 640)], 168, "pad", (168, 168))[0]
    np.testing.assert_allclose(pad, [0.0, -35 * 360 / 98, 640.0, 133 * 360 / 98], atol=1e-9)


def test_infer_window_takes_the_mode(toy_vggt):
    from dpt_ros.models import Predictor

    predictor = Predictor(
        "vggt_1b", random_weights=True, device="cpu", backend="torch", network_size=(56, 56)
    )
    rng = np.random.default_rng(0)
    views = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(2)]
    crop = predictor.infer_window(views)
    assert crop.depth.shape == (2, 28, 56)  # 90 * 56 / 160 / 14 = 2.25 -> 2 patches
    np.testing.assert_allclose(crop.cameras.network_box, [[0, 0, 160, 90]] * 2, atol=1e-9)
    pad = predictor.infer_window(views, mode="pad")
    assert pad.depth.shape == pad.confidence.shape == (2, 56, 56)
    assert pad.cameras.world_points.shape == (2, 56, 56, 3)
    want = network_boxes([(90, 160)] * 2, 56, "pad", (56, 56))
    np.testing.assert_allclose(pad.cameras.network_box, want)
    # principal point at the grid's centre, as the reference's intrinsics
    np.testing.assert_allclose(pad.cameras.intrinsics[:, :2, 2], 28.0, atol=1e-4)
    with pytest.raises(ValueError, match="crop, pad"):
        predictor.infer_window(views, mode="stretch")


def test_families_without_modes_refuse_one():
    from dpt_ros.models.registry import get_spec

    spec = get_spec("depth_anything_3_small")
    images = torch.zeros(2, 28, 28, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="no window preprocessing modes"):
        spec.family.window_input(spec, images, (28, 28), (28, 28), None, None, "pad")


def test_reconstruct_pad_keeps_the_padding_out(toy_vggt, tmp_path, capsys):
    """windows/0000.npz is the raw grid (the model's outputs on the white border too,
    with its network_box); depth/ on the network grid is NaN (confidence 0) on the
    border, on the input grid the image only; the cloud holds no border point."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        write_rgb(folder / f"f{i}.png", rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    base = ["reconstruct", folder, "--model-type", "vggt_1b", "--random-weights"]
    base += ["--window", 3, "--overlap", 0, "--mode", "pad", "--network-size", "56x56"]
    base += ["--device", "cpu", "--backend", "torch", "--precision", "fp32"]
    net, full = tmp_path / "net", tmp_path / "full"
    for out, size in ((net, "network"), (full, "input")):
        rc, _, stderr = run(capsys, *base, "-o", out, "--output-size", size)
        assert rc == 0, stderr
    with np.load(net / "windows" / "0000.npz") as raw:
        window = {k: raw[k] for k in raw.files}
    assert window["depth"].shape == (3, 56, 56) and np.isfinite(window["depth"]).all()
    boxes = window["network_box"]
    np.testing.assert_allclose(boxes, network_boxes([(90, 160)] * 3, 56, "pad", (56, 56)))
    mask = image_mask((56, 56), (90, 160), boxes[0])
    assert 0 < mask.sum() < mask.size
    doc_net = json.loads((net / "cameras.json").read_text())
    doc_full = json.loads((full / "cameras.json").read_text())
    assert doc_net["model"]["mode"] == "pad"
    for j, stem in enumerate(("f0", "f1", "f2")):
        depth = np.load(net / "depth" / f"{stem}.npy")
        conf = np.load(net / "confidence" / f"{stem}.npy")
        np.testing.assert_array_equal(np.isfinite(depth), mask)
        np.testing.assert_array_equal(depth[mask], window["depth"][j][mask])
        assert (conf[~mask] == 0).all()
        on_input = np.load(full / "depth" / f"{stem}.npy")
        assert on_input.shape == (90, 160) and np.isfinite(on_input).all()
        inside = window["depth"][j][mask]
        assert inside.min() <= on_input.min() and on_input.max() <= inside.max()
        k_input = np.array(doc_full["frames"][j]["intrinsics"])
        want = intrinsics_to_input(window["intrinsics"][j], (56, 56), boxes[j])
        np.testing.assert_allclose(k_input, want, rtol=1e-5)
    said = capsys.readouterr()
    with open(net / "points.ply", "rb") as f:
        header = f.read(400).split(b"end_header")[0].decode()
    points = int(header.split("element vertex ")[1].split()[0])
    assert points == 3 * int(mask.sum()), said
