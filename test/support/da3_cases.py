"""Depth Anything 3 test set-up shared by the tiers: the small goldens, deterministic
weights as the hub's file, a tiny predictor, the scene's camera."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest
import torch
from goldens import FIXTURES, Golden
from sensor_msgs.msg import CameraInfo

from dpt_ros.models import Predictor
from dpt_ros.models.da3_transforms import preprocess
from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX
from dpt_ros.models.weights.da3_checkpoint import load_da3
from dpt_ros.ros.image_codec import image_msg_to_array

#: The scene's camera (pixels).
FX, FY, CX, CY = 600.0, 580.0, 319.5, 239.5
SMALL = "depth_anything_3_small"


METRIC = "depth_anything_3_metric_large"


#: End to end against the goldens, relative to the golden's maximum (the issue's bound).
RTOL = 1e-3

#: Network outputs against the reference, relative to the output's maximum (measured: 0).
NET_RTOL = 1e-4


def da3_golden(model_type: str, process_res: int) -> Golden:
    return Golden.load(
        FIXTURES / "compact" / "da3" / f"{model_type}_{process_res}_scene_a.compact.npz"
    )


def tiny(model_type: str) -> Predictor:
    """Random weights at a 56-pixel network: the plumbing, not the numbers."""
    return Predictor(
        model_type,
        device="cpu",
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(56, 56),
    )


def hub_file(detweights, fixtures_dir, model_type: str, folder) -> str:
    """``model_type``'s deterministic weights as the hub's model.safetensors."""
    from safetensors.torch import save_file

    layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{model_type}.json")
    state = detweights.deterministic_state_dict(layout)
    path = folder / "model.safetensors"
    save_file({HUB_PREFIX + k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


def arrays(out) -> dict[str, np.ndarray]:
    return {
        topic: image_msg_to_array(msg)
        for topic, msg in out.messages.items()
        if topic.startswith("depth/") and topic not in ("depth/camera_info", "depth/colored")
    }


@pytest.fixture(scope="module")
def small_file(module_tmp, detweights, fixtures_dir):
    """da3-small's deterministic weights as the hub's model.safetensors (``model.`` keys)."""
    return hub_file(detweights, fixtures_dir, SMALL, module_tmp("da3_small"))


def scene_camera_info(p_and_k: bool = True) -> CameraInfo:
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    if p_and_k:
        info.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
        info.p = [FX, 0.0, CX, 0.0, 0.0, FY, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def check_small(golden: Golden, relative: np.ndarray, confidence: np.ndarray) -> None:
    """depth/relative is the inverse of the reference's depth; depth/confidence is its
    confidence, both on its grid."""
    assert golden.relative_error("depth", 1.0 / relative) <= RTOL
    assert golden.relative_error("confidence", confidence) <= RTOL
    assert confidence.min() >= 1.0


def golden_input(golden: Golden, rgb: np.ndarray) -> torch.Tensor:
    """(1, 3, h, w): the golden's net_input, made by our preprocessing (which
    ``test_preprocess_equals_the_references_net_input`` proves equal to the reference's)."""
    return torch.from_numpy(preprocess(rgb, int(golden.raw("process_res"))))[None]


@pytest.fixture(scope="module")
def det_state(detweights, fixtures_dir):
    """det_state(type) -> deterministic state_dict with the hub's prefix, as a hub file."""
    made = {}

    def make(model_type: str) -> dict[str, torch.Tensor]:
        if model_type not in made:
            layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{model_type}.json")
            state = detweights.deterministic_state_dict(layout)
            made[model_type] = {HUB_PREFIX + k: v for k, v in state.items()}
        return made[model_type]

    return make


@pytest.fixture(scope="module")
def small_model(det_state):
    return load_da3(SMALL, det_state(SMALL), "det_small.safetensors")


CAMERA_YAML = """\
image_width: 640
image_height: 480
camera_name: scene_a
camera_matrix:
  rows: 3
  cols: 3
  data: [600.0, 0.0, 319.5, 0.0, 580.0, 239.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.0, 0.0, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [600.0, 0.0, 319.5, 0.0, 0.0, 580.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def predict(capsys, *argv):
    from dpt_ros.cli.main import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def window_model_type(name: str) -> str:
    """The model type of a window golden (``window_base...`` or a small one)."""
    return "depth_anything_3_base" if name.startswith("window_base") else SMALL


def window_views(golden: Golden) -> list[np.ndarray]:
    """A window golden's views: its crops of scene_a, resized where it says (as
    ``scripts/make_da3_goldens.py --windows`` made them)."""
    bgr = cv2.imread(str(FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    resize_hw = tuple(int(v) for v in golden.raw("resize_hw"))
    views = []
    for top, left, height, width in golden.raw("crops").tolist():
        view = np.ascontiguousarray(rgb[top : top + height, left : left + width])
        if resize_hw != (0, 0):
            view = cv2.resize(view, resize_hw[::-1], interpolation=cv2.INTER_AREA)
        views.append(view)
    return views


def whole_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest |got - want| relative to want's largest magnitude (same shapes)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    want = want.astype(np.float64)
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


def stand_in_reference(monkeypatch) -> list[tuple[int, ...]]:
    """``depth_anything_3`` modules whose network records the shape it is given."""
    calls: list[tuple[int, ...]] = []

    class Reference(torch.nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape))
            return {"depth": x[:, :, 0]}

    cfg = types.ModuleType("depth_anything_3.cfg")
    cfg.load_config = lambda path: path  # type: ignore[attr-defined]
    cfg.create_object = lambda config: Reference()  # type: ignore[attr-defined]
    registry = types.ModuleType("depth_anything_3.registry")
    registry.MODEL_REGISTRY = {"da3-small": "da3-small.yaml"}  # type: ignore[attr-defined]
    for name, module in (
        ("depth_anything_3", types.ModuleType("depth_anything_3")),
        ("depth_anything_3.cfg", cfg),
        ("depth_anything_3.registry", registry),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return calls
