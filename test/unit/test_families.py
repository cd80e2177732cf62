"""Model families: each is one module and one registry entry, and a family the package
has never seen runs through the predictor and the frame pipeline without a change
anywhere else (a toy family, defined here); the members and names from before the
families still work, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from torch import nn

from dpt_ros.models import Predictor, registry
from dpt_ros.models.errors import RandomWeightsWarning
from dpt_ros.models.families import depth_anything_3, depth_anything_v2, dpt, vggt
from dpt_ros.models.family import (
    RELATIVE_INVERSE_DEPTH,
    ModelFamily,
    ModelSpec,
    Prediction,
    per_image,
)
from dpt_ros.models.network.depth_anything3 import REFERENCE_VIEW_STRATEGIES
from dpt_ros.models.network.encoder import NETWORK_MULTIPLE
from dpt_ros.pipeline.frames import FramePipeline

ROOT = Path(__file__).resolve().parents[2]
H, W = 48, 64


def test_each_family_is_a_module_with_its_table():
    modules = (dpt, depth_anything_v2, depth_anything_3, vggt)
    assert registry.FAMILIES == tuple(m.FAMILY for m in modules)
    for module in modules:
        assert module.FAMILY.name == module.__name__.rsplit(".", 1)[1]
        assert module.SPECS and all(s.family is module.FAMILY for s in module.SPECS)
    assert [s.name for m in modules for s in m.SPECS] == list(registry.MODEL_SPECS)
    assert dpt.FAMILY.size_multiple == NETWORK_MULTIPLE


def test_a_family_declares_its_window_options():
    """The command line's --reference-view and --mode come from these: the network's
    strategies (the reference's default first) and VGGT's modes (crop first)."""
    da3 = depth_anything_3.FAMILY
    assert sorted(da3.reference_views) == sorted(REFERENCE_VIEW_STRATEGIES)
    assert da3.reference_views[0] == "saddle_balanced" and da3.window_modes == ()
    assert vggt.FAMILY.window_modes == (vggt.CROP, vggt.PAD) and vggt.FAMILY.reference_views == ()
    for family in (dpt.FAMILY, depth_anything_v2.FAMILY):
        assert family.reference_views == () and family.window_modes == ()
        spec = next(s for s in registry.MODEL_SPECS.values() if s.family is family)
        assert family.window_reference(spec)[1] is None
        with pytest.raises(ValueError, match="no window forward"):
            family.window_forward(spec, nn.Identity())


def test_the_registry_and_the_families_load_no_torch():
    code = (
        "import sys\n"
        "from dpt_ros.models.registry import MODEL_SPECS\n"
        "assert MODEL_SPECS['depth_anything_3_small'].size_multiple == 14\n"
        "print(','.join(m for m in ('torch', 'timm', 'cv2') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_only_the_type_that_needs_them_takes_intrinsics():
    needing = [n for n, s in registry.MODEL_SPECS.items() if s.needs_intrinsics]
    assert needing == ["depth_anything_3_metric_large"]
    # The family says so, with its reason: callers ask the spec, not the flag.
    asking = {n: s.camera_requirement for n, s in registry.MODEL_SPECS.items()}
    assert {n: r for n, r in asking.items() if r} == {
        "depth_anything_3_metric_large": "its metres come from the focal length"
    }
    assert per_image(None, 2) is None
    k = np.eye(3)
    assert [m.shape for m in per_image(k, 2)] == [(3, 3), (3, 3)]
    with pytest.raises(ValueError, match="1 camera matrices for 2 images"):
        per_image([k], 2)


# --------------------------------------------------------------------------- a toy family


class _Toy(nn.Module):
    """(B, 3, h, w) -> (B, 2, h, w): a depth channel and a confidence channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _ToyFamily(ModelFamily):
    """A family that sees one view, gives depth that grows with distance and its
    confidence, and an estimate of each image's camera: what the next families add."""

    name = "toy"
    title = "Toy"
    size_multiple = 8
    resize_method = "lower_bound"
    output_interpolation = "bilinear"

    def build(self, spec: ModelSpec) -> nn.Module:
        return _Toy().eval()

    def decode(self, spec, raw, image_hw, net_hw, intrinsics=None, fill_sky=False):
        out = raw.float()
        depth = nn.functional.softplus(out[:, 0]) + 0.1
        cameras = [{"image_hw": tuple(image_hw)} for _ in range(len(out))]
        return Prediction(
            inverse_depth=1.0 / depth, confidence=1.0 + out[:, 1].exp(), cameras=cameras
        )

    def resize(self, spec, prediction, size_hw):
        from dpt_ros.models.da3_transforms import resize_maps
        from dpt_ros.models.transforms import resize_output

        return prediction.with_arrays(
            {
                "inverse_depth": resize_output(prediction.inverse_depth, size_hw, "bilinear"),
                "confidence": resize_maps(prediction.confidence, size_hw),
            }
        )


TOY = ModelSpec(
    "toy_depth",
    "depth",
    "none",
    RELATIVE_INVERSE_DEPTH,
    32,
    24,
    "toy.pt",
    maps=("confidence",),
    family=_ToyFamily(),
)


@pytest.fixture
def toy(monkeypatch):
    """A Predictor of the toy family, registered for the test only."""
    monkeypatch.setitem(registry.MODEL_SPECS, TOY.name, TOY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return Predictor(TOY.name, random_weights=True, backend="torch", device="cpu")


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_a_new_family_runs_through_the_predictor(toy):
    assert toy.input_size((H, W)) == (24, 32)  # the toy's lower bound at 32x24, mult. of 8
    found = toy.infer(np.stack([_rgb(0), _rgb(1)]))
    assert set(found.arrays()) == {"inverse_depth", "confidence"}
    assert found.inverse_depth.shape == found.confidence.shape == (2, H, W)
    assert found.cameras == [{"image_hw": (H, W)}] * 2
    assert (found.confidence > 1).all() and (found.inverse_depth > 0).all()
    np.testing.assert_allclose(toy.predict(_rgb(1)), found.inverse_depth[1], rtol=1e-5)


def test_a_new_family_runs_through_the_frame_pipeline(toy):
    pipeline = FramePipeline(toy, None)
    assert "depth/confidence" in pipeline.topics()
    assert "depth/confidence_mono8" in pipeline.topics()
    info = CameraInfo(width=W, height=H, distortion_model="plumb_bob")
    info.k = [50.0, 0.0, W / 2, 0.0, 50.0, H / 2, 0.0, 0.0, 1.0]
    info.p = [50.0, 0.0, W / 2, 0.0, 0.0, 50.0, H / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    out = pipeline.process(_rgb(), Header(), info)
    assert {"depth/relative", "depth/confidence", "depth/camera_info"} <= set(out.messages)
    assert out.arrays["depth_confidence"].shape == (H, W)
    want = toy.infer(_rgb()[None])
    np.testing.assert_allclose(out.arrays["depth_confidence"], want.confidence[0], rtol=1e-6)


# --------------------------------------------------------------------------- deprecated


def test_the_former_predictor_members_warn_and_give_the_same(toy):
    rgb = _rgb()
    images = torch.from_numpy(rgb[None])
    found = toy.infer_on_device(images)
    with pytest.warns(DeprecationWarning, match=r"Predictor.depth_on_device is deprecated"):
        torch.testing.assert_close(toy.depth_on_device(images), found.inverse_depth)
    with pytest.warns(DeprecationWarning, match=r"Predictor.da3_on_device"):
        depth, second = toy.da3_on_device(images)
    torch.testing.assert_close(second, found.confidence)
    with pytest.warns(DeprecationWarning, match=r"Predictor.run_on_device"):
        resized = toy.run_on_device(images)
    torch.testing.assert_close(resized, toy.infer_on_device(images, output_hw=(H, W)).inverse_depth)
    with pytest.warns(DeprecationWarning, match=r"Predictor.predict_batch"):
        np.testing.assert_array_equal(toy.predict_batch(rgb[None])[0], toy.predict(rgb))
    with pytest.warns(DeprecationWarning, match=r"Predictor.predict_da3"):
        maps = toy.predict_da3(rgb)
    assert set(maps) == {"confidence", "depth"}
    with pytest.warns(DeprecationWarning, match=r"Predictor.second_output"):
        assert toy.second_output == "confidence"
    with pytest.warns(DeprecationWarning, match=r"Predictor.is_da3"):
        assert toy.is_da3 is False
    with pytest.warns(DeprecationWarning, match=r"Predictor.process_res"):
        assert toy.process_res == 32
    with pytest.raises(ValueError, match="is a depth model; it has no labels"):
        with pytest.warns(DeprecationWarning, match=r"Predictor.segment_on_device"):
            toy.segment_on_device(images, (H, W))


def test_a_family_compared_with_its_former_name_warns():
    spec = registry.get_spec("dpt_hybrid")
    assert str(spec.family) == "dpt" and spec.family.name == "dpt"
    with pytest.warns(DeprecationWarning, match="compare family.name"):
        assert spec.family == "dpt"
    with pytest.warns(DeprecationWarning):
        assert {"dpt": 1}[spec.family] == 1  # as a key of a dict of names, as before


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("dpt_ros.models.weights.da3_checkpoint", "HUB_PREFIX", depth_anything_3),
        ("dpt_ros.models.weights.da3_checkpoint", "with_hub_prefix", depth_anything_3),
        ("dpt_ros.models.weights.da3_checkpoint", "strip_hub_prefix", depth_anything_3),
        ("dpt_ros.models.weights.da3_checkpoint", "unsupported_kind", depth_anything_3),
        ("dpt_ros.models.weights.transformers_format", "DPT_RULES", dpt),
        ("dpt_ros.models.weights.transformers_format", "DEPTH_ANYTHING_RULES", depth_anything_v2),
    ],
)
def test_names_moved_into_a_family_import_with_a_warning(old, name, new):
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new.__name__}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(new, name)
