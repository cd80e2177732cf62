"""Fidelity and behaviour of dpt_ros.models.

The goldens (``test/fixtures``, see ``goldens.py``) hold what the original DPT computes
from ``scene_a.png`` with deterministic weights; they are reached here only through the
public path: a checkpoint file -> ``Predictor`` -> ``predict``. Everything else uses
small fakes or models built on the meta device, so the file stays fast on a CPU.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from model_cases import cheap_model, free

import dpt_ros.models.weights.checkpoint as checkpoint
import dpt_ros.models.weights.download as download
import dpt_ros.models.weights.verify as verify
from dpt_ros.models import (
    DPT,
    METRIC_DEPTH,
    CheckpointError,
    DPTDepthModel,
    DPTSegmentationModel,
    Predictor,
    check_state_dict,
    get_spec,
    identify_model_types,
    load_model,
    model_names,
    read_state_dict,
)
from dpt_ros.models.network.build import build_network
from dpt_ros.models.transforms import network_input_size

ALL_TYPES = (
    "dpt_hybrid",
    "dpt_large",
    "dpt_hybrid_kitti",
    "dpt_hybrid_nyu",
    "dpt_hybrid_ade20k",
    "dpt_large_ade20k",
)
DAV2_TYPES = tuple(
    f"depth_anything_v2_{kind}{encoder}"
    for kind in ("", "metric_hypersim_", "metric_vkitti_")
    for encoder in ("vits", "vitb", "vitl")
)


def _meta_tensors(layout) -> dict:
    """A state_dict with the shapes of ``layout`` ([[key, shape, dtype], ...]) and no data."""
    return {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, s, d in layout}


# --------------------------------------------------------------------------- layout


DA3_TYPES = tuple(
    f"depth_anything_3_{part}" for part in ("small", "base", "large", "mono_large", "metric_large")
)


def test_registry_lists_the_twenty_one_official_types():
    assert model_names() == ALL_TYPES + DAV2_TYPES + DA3_TYPES + ("vggt_1b",)
    assert model_names("depth") == ALL_TYPES[:4] + DAV2_TYPES + DA3_TYPES + ("vggt_1b",)
    assert model_names("segmentation") == ALL_TYPES[4:]


@pytest.mark.parametrize("model_type", ALL_TYPES + DAV2_TYPES)
def test_state_dict_layout_equals_official_checkpoint(model_type, key_spec):
    with torch.device("meta"):
        model = build_network(get_spec(model_type))
    got = {
        k: (list(v.shape), str(v.dtype).replace("torch.", ""))
        for k, v in model.state_dict().items()
    }
    want = {k: (list(s), d) for k, s, d in key_spec(model_type)}
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    assert not missing and not unexpected, (missing[:10], unexpected[:10])
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, list(wrong.items())[:10]


# --------------------------------------------------------------------------- goldens


# --------------------------------------------------------------------------- shapes


def test_segmentation_model_shape_non_square():
    model = cheap_model(DPTSegmentationModel, num_classes=150, backbone="vitb16_384", readout="add")
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 150, 64, 96)
    assert torch.isfinite(out).all()
    del model
    free()


def test_unknown_backbone_and_readout_name_the_valid_ones():
    with pytest.raises(ValueError, match="vitb16_384.*vitb_rn50_384.*vitl16_384"):
        DPTDepthModel(backbone="resnet101")
    with torch.device("meta"), pytest.raises(ValueError, match="ignore, add, project"):
        DPTDepthModel(backbone="vitb16_384", readout="mean")


def test_input_not_multiple_of_32_is_rejected():
    model = cheap_model(DPTDepthModel, backbone="vitb16_384", readout="ignore")
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.zeros(1, 3, 64, 80))
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.zeros(1, 3, 48, 96))


# --------------------------------------------------------------------------- metric depth


def test_registry_metric_constants():
    kitti, nyu = get_spec("dpt_hybrid_kitti"), get_spec("dpt_hybrid_nyu")
    assert (kitti.invert, kitti.scale, kitti.shift) == (True, 0.00006016, 0.00579)
    assert (kitti.net_width, kitti.net_height) == (1216, 352)
    assert (nyu.invert, nyu.scale, nyu.shift) == (True, 0.000305, 0.1378)
    assert (nyu.net_width, nyu.net_height) == (640, 480)
    assert kitti.output == nyu.output == METRIC_DEPTH
    for name in ("dpt_hybrid", "dpt_large"):
        assert not get_spec(name).invert and not get_spec(name).is_metric
    for name in ("dpt_hybrid_kitti", "dpt_hybrid_nyu"):
        with torch.device("meta"):
            model = build_network(get_spec(name))
        spec = get_spec(name)
        assert (model.invert, model.scale, model.shift) == (True, spec.scale, spec.shift)


def _with_raw_output(monkeypatch, raw: torch.Tensor) -> None:
    """Makes every DPT network return ``raw`` (B, 1, H, W) as its head output."""
    monkeypatch.setattr(DPT, "forward", lambda self, x: raw)


@pytest.mark.parametrize("model_type", ["dpt_hybrid_kitti", "dpt_hybrid_nyu"])
def test_metric_models_invert_scale_shift(model_type, monkeypatch):
    spec = get_spec(model_type)
    raw = torch.tensor([0.0, 1.0, 10.0, 100.0, 1000.0, 5000.0, 30000.0]).view(1, 1, 1, -1)
    _with_raw_output(monkeypatch, raw)
    with torch.device("meta"):
        model = build_network(spec)
    out = model(torch.zeros(1, 3, 32, 32))
    x = raw.double().view(1, 1, -1)
    want = 1.0 / (spec.scale * x + spec.shift)
    assert out.shape == (1, 1, 7)
    torch.testing.assert_close(out.double(), want, rtol=1e-6, atol=0)
    assert out[0, 0, 0].item() == pytest.approx(1.0 / spec.shift, rel=1e-6)


def test_inversion_clamps_the_denominator(monkeypatch):
    raw = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 1, 2, 2)
    _with_raw_output(monkeypatch, raw)
    with torch.device("meta"):
        model = DPTDepthModel(backbone="vitb16_384", invert=True, scale=1.0, shift=-1.0)
    out = model(torch.zeros(1, 3, 32, 32))
    # scale*x+shift = -1, 0, 1, 2: the first two are clamped to 1e-8.
    want = torch.tensor([[1e8, 1e8], [1.0, 0.5]])
    torch.testing.assert_close(out[0], want, rtol=1e-6, atol=0)


def test_relative_models_return_the_raw_output(monkeypatch):
    raw = torch.arange(6.0).view(1, 1, 2, 3)
    _with_raw_output(monkeypatch, raw)
    with torch.device("meta"):
        model = build_network(get_spec("dpt_hybrid"))
    out = model(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 2, 3)
    torch.testing.assert_close(out, raw[:, 0])


# --------------------------------------------------------------------------- input size


@pytest.mark.parametrize(
    "image_hw,net_hw,keep,want",
    [
        ((480, 640), (384, 384), True, (384, 512)),  # 0.8 is closer to 1 than 0.6
        ((384, 512), (384, 384), True, (384, 512)),  # already a valid size
        ((352, 1216), (352, 1216), True, (352, 1216)),  # KITTI at its network size
        ((375, 1242), (352, 1216), True, (352, 1216)),  # KITTI raw: x0.979 -> 367 -> 352
        ((1080, 1920), (384, 384), True, (384, 672)),  # x0.356: 682.7 -> 672
        ((480, 640), (480, 640), True, (480, 640)),  # NYU
        ((480, 640), (480, 480), True, (480, 640)),  # ADE20K: height already fits
        ((384, 400), (384, 384), True, (384, 384)),  # 400/32 = 12.5 rounds half to even
        ((480, 640), (384, 384), False, (384, 384)),  # no aspect ratio: each axis alone
        ((1080, 1920), (352, 1216), False, (352, 1216)),
        ((1, 1), (384, 384), True, (384, 384)),  # tiny images are scaled up
        ((1, 4000), (384, 384), True, (32, 384)),  # a 0.1 px side becomes 32, never 0
        ((2, 2), (16, 16), True, (32, 32)),  # never below one multiple
    ],
)
def test_network_input_size(image_hw, net_hw, keep, want):
    assert network_input_size(image_hw, net_hw, keep) == want


def test_network_input_size_rejects_empty_images():
    with pytest.raises(ValueError):
        network_input_size((0, 640), (384, 384))


# --------------------------------------------------------------------------- checkpoints


def test_missing_weights_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model("dpt_hybrid", tmp_path / "nothing.pt")
    with pytest.raises(CheckpointError, match="not a file"):
        read_state_dict(tmp_path)


@pytest.mark.parametrize(
    "content", [b"these are not weights\n", os.urandom(4096), b"PK\x03\x04 a broken zip"]
)
def test_unreadable_weights_file(tmp_path, content):
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file") as info:
        load_model("dpt_hybrid", path)
    # One line, and no advice to turn the safe loader off.
    assert "\n" not in str(info.value)
    assert "weights_only` set to `False" not in str(info.value)


class _Payload:
    """Unpickling this runs ``os.system`` (a checkpoint that executes code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _CustomObject:
    pass


def test_checkpoint_that_executes_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file") as info:
        load_model("dpt_hybrid", path)
    assert "system" in str(info.value)  # says what was refused
    assert not marker.exists()
    # A plain pickle (not torch.save) with the same payload.
    plain = tmp_path / "evil.pkl"
    with open(plain, "wb") as f:
        pickle.dump({"payload": _Payload(marker)}, f, protocol=2)
    with pytest.raises(CheckpointError):
        read_state_dict(plain)
    assert not marker.exists()


def test_checkpoint_with_custom_class_is_refused(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"weight": torch.zeros(2), "extra": _CustomObject()}, path)
    with pytest.raises(CheckpointError, match="not a readable PyTorch weights file"):
        read_state_dict(path)


def test_nested_and_prefixed_checkpoints_are_unwrapped(tmp_path):
    tensors = {"a.weight": torch.ones(2, 3), "b.bias": torch.zeros(3)}
    cases = {
        "model": {"model": tensors, "epoch": 7, "optimizer": {"lr": 0.1}},
        "state_dict": {"state_dict": tensors},
        "module": {f"module.{k}": v for k, v in tensors.items()},
        "bare": tensors,
    }
    for name, obj in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
        got = read_state_dict(path)
        assert set(got) == set(tensors), name
        for k in tensors:
            assert torch.equal(got[k], tensors[k])


def test_checkpoint_without_tensors(tmp_path):
    path = tmp_path / "empty.pt"
    torch.save({}, path)
    with pytest.raises(CheckpointError, match="no state_dict"):
        read_state_dict(path)
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="no tensors"):
        read_state_dict(path)


def test_hybrid_weights_loaded_as_large_name_the_right_type(det_checkpoint):
    with pytest.raises(CheckpointError) as info:
        load_model("dpt_large", det_checkpoint("dpt_hybrid"))
    msg = str(info.value)
    assert "dpt_hybrid" in msg and "not dpt_large" in msg
    assert "--model-type dpt_hybrid" in msg


def test_layout_mismatch_is_summarised(key_spec):
    layout = key_spec("dpt_large")
    state_dict = _meta_tensors(layout)
    for key, _, _ in layout[:300]:
        del state_dict[key]
    for i in range(40):
        state_dict[f"head.extra{i}.weight"] = torch.empty(3, device="meta")
    key = layout[-1][0]
    state_dict[key] = torch.empty(1, 2, 3, device="meta")
    with pytest.raises(CheckpointError) as info:
        check_state_dict(state_dict, get_spec("dpt_large"), source="x.pt")
    msg = str(info.value)
    assert "300 missing keys" in msg and "40 unexpected keys" in msg
    assert "1 keys with other shapes" in msg and key in msg
    assert "does not match the dpt_large layout" in msg
    assert len(msg) < 600, len(msg)


def test_small_foreign_checkpoint_is_refused_with_a_short_message(tmp_path, key_spec):
    path = tmp_path / "other.pt"
    torch.save({"backbone.conv.weight": torch.zeros(4, 3, 3, 3), "fc.bias": torch.zeros(4)}, path)
    with pytest.raises(CheckpointError, match="does not match the dpt_hybrid layout") as info:
        load_model("dpt_hybrid", path)
    msg = str(info.value)
    assert f"{len(key_spec('dpt_hybrid'))} missing keys" in msg
    assert "2 unexpected keys" in msg and len(msg) < 600


def test_official_layouts_are_identified(key_spec):
    assert identify_model_types(_meta_tensors(key_spec("dpt_hybrid"))) == [
        "dpt_hybrid",
        "dpt_hybrid_kitti",
        "dpt_hybrid_nyu",
    ]
    assert identify_model_types(_meta_tensors(key_spec("dpt_large_ade20k"))) == ["dpt_large_ade20k"]


def test_random_weights_warn_and_exclude_a_weights_file(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not both"):
        load_model("dpt_hybrid", tmp_path / "w.pt", random_weights=True)
    built = torch.nn.Linear(2, 2)  # building the real network costs seconds
    monkeypatch.setattr(checkpoint, "build_network", lambda spec: built)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        model = load_model("dpt_hybrid", random_weights=True)
    assert model is built


def test_unknown_model_type_lists_the_valid_ones():
    valid = ", ".join(ALL_TYPES)
    with pytest.raises(ValueError, match=valid):
        get_spec("dpt_tiny")
    with pytest.raises(ValueError, match=valid):
        load_model("dpt_tiny", random_weights=True)
    with pytest.raises(ValueError, match=valid):
        Predictor("dpt_tiny", device="cpu", backend="torch", random_weights=True)


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_predictor_loads_the_cached_official_file(
    tmp_path, monkeypatch, det_checkpoint, detweights
):
    spec = get_spec("dpt_hybrid")
    cache = tmp_path / "cache"
    cache.mkdir()
    try:
        os.link(det_checkpoint("dpt_hybrid"), cache / spec.file_name)
    except OSError:
        shutil.copyfile(det_checkpoint("dpt_hybrid"), cache / spec.file_name)
    monkeypatch.setenv(download.CACHE_ENV_VAR, str(cache))
    # Files under official names are verified: the det file stands in for the official one.
    digest = hashlib.sha256(det_checkpoint("dpt_hybrid").read_bytes()).hexdigest()
    monkeypatch.setitem(verify.OFFICIAL_SHA256, spec.file_name, digest)
    _no_network(monkeypatch)
    predictor = Predictor(
        "dpt_hybrid", device="cpu", backend="torch", precision="fp32", progress=False
    )
    key = "scratch.output_conv.4.weight"
    weight = predictor.model.state_dict()[key]
    torch.testing.assert_close(
        weight, detweights.deterministic_tensor(key, weight.shape), rtol=0, atol=0
    )
    del predictor
    free()


def test_missing_weights_offline_is_a_checkpoint_error(tmp_path, monkeypatch):
    monkeypatch.setenv(download.CACHE_ENV_VAR, str(tmp_path / "empty-cache"))
    _no_network(monkeypatch)
    with pytest.raises(CheckpointError, match="could not download") as info:
        load_model("dpt_hybrid", progress=False)
    assert get_spec("dpt_hybrid").file_name in str(info.value)
    assert not any((tmp_path / "empty-cache").glob("*.pt"))


@pytest.mark.parametrize(
    "model_type, network_size, image_hw, reason",
    [
        # Depth Anything V2 scales the shorter side up to N: a 1x10 frame would be N x 10N.
        ("depth_anything_v2_vits", (28, 28), (1, 10), "280x28 network input, 10.0:1"),
        ("depth_anything_v2_vits", (28, 28), (100, 500), "3920 pixels, over 4x"),
        # DPT keeps the scale closest to 1: a thin frame stays thin.
        ("dpt_hybrid", (64, 64), (100, 4000), "2560x64 network input, 40.0:1"),
        ("dpt_hybrid", (64, 64), (1024, 200), "20480 pixels, over 4x the network"),
    ],
)
def test_predictor_refuses_thin_or_huge_network_inputs(model_type, network_size, image_hw, reason):
    """Bounded network input: a thin frame would stall the model for a minute or ask for
    gigabytes; it is refused with the reason before anything runs."""
    predictor = Predictor(
        model_type, random_weights=True, device="cpu", backend="torch", network_size=network_size
    )
    with pytest.raises(ValueError, match=reason) as info:
        predictor.predict(np.zeros((*image_hw, 3), np.uint8))
    assert model_type in str(info.value)
    predictor.input_size((48, 64))  # a camera-like frame is fine
    assert predictor.input_size((375, 1242))[1] > 0  # so is a wide KITTI frame


def test_weights_dtypes_follow_the_network(key_spec):
    """Floating weights may come in any float width; an integer buffer (the official
    ADE20K files' int64 num_batches_tracked) stays an integer; int8, bool and complex
    weights are refused naming the key."""
    from dpt_ros.models.weights.layout import dtype_problem

    spec = get_spec("dpt_hybrid_ade20k")
    with torch.device("meta"):
        reference = build_network(spec).state_dict()
    layout = key_spec("dpt_hybrid_ade20k")
    official = {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, s, d in layout}
    counters = [k for k, v in official.items() if v.dtype == torch.int64]
    assert counters and all(k.endswith("num_batches_tracked") for k in counters)
    assert dtype_problem(official, reference) is None
    half = {k: v.half() if v.is_floating_point() else v for k, v in official.items()}
    assert dtype_problem(half, reference) is None
    weight = next(k for k in official if k.endswith(".weight"))
    for dtype in (torch.int8, torch.uint8, torch.bool, torch.complex64):
        problem = dtype_problem({**official, weight: official[weight].to(dtype)}, reference)
        name = str(dtype).removeprefix("torch.")
        assert problem.startswith(f"tensor {weight} is {name}, expected floating point")
    floated = {**official, counters[0]: official[counters[0]].float()}
    assert f"{counters[0]} is float32, expected an integer (int64)" in dtype_problem(
        floated, reference
    )
    assert "1 more tensors" in dtype_problem(
        {**official, weight: official[weight].to(torch.int8), counters[0]: torch.tensor(True)},
        reference,
    )
