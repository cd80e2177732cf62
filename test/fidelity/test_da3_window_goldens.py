"""Depth Anything 3 on windows of several views against the reference
(``depth-anything-3`` 0.1.1, ``DepthAnything3Net.forward(x, extrinsics, intrinsics,
ref_view_strategy=...)``): the network on the reference's own input, and the predictor's
``infer_window`` from the images.

The goldens (``fixtures/compact/da3/window_<case>.compact.npz``) come from
``scripts/make_da3_goldens.py --windows``: crops of ``scene_a.png`` (landscape,
portrait, resized), 2 to 4 views, every reference-view strategy but ``middle``, and one
window with known cameras; float32 on the CPU with deterministic weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from da3_cases import hub_file, whole_error, window_model_type, window_views
from goldens import FIXTURES, Golden

from dpt_ros.models import Predictor
from dpt_ros.models.da3_transforms import preprocess
from dpt_ros.models.weights.da3_checkpoint import load_da3

#: Network outputs against the reference, relative to each output's maximum magnitude.
NET_RTOL = 1e-4

CASES = sorted(p.name for p in (FIXTURES / "compact" / "da3").glob("window_*.compact.npz"))
OUTPUTS = ("depth", "confidence", "extrinsics", "intrinsics")


def _golden(name: str) -> Golden:
    return Golden.load(FIXTURES / "compact" / "da3" / name)


def errors(golden: Golden, found: dict[str, np.ndarray]) -> dict[str, float]:
    return {
        "depth": golden.relative_error("depth", found["depth"]),
        "confidence": golden.relative_error("confidence", found["confidence"]),
        "extrinsics": whole_error(found["extrinsics"], golden.raw("extrinsics")),
        "intrinsics": whole_error(found["intrinsics"], golden.raw("intrinsics")),
    }


@pytest.fixture(scope="module")
def models(det_state):
    made = {}

    def get(model_type: str):
        if model_type not in made:
            made[model_type] = load_da3(model_type, det_state(model_type), "det.safetensors")
        return made[model_type]

    return get


@pytest.mark.parametrize("name", CASES, ids=lambda n: n.removeprefix("window_").split(".")[0])
def test_window_network_matches_the_reference(models, name):
    golden = _golden(name)
    views = window_views(golden)
    res = int(golden.raw("process_res"))
    x = np.stack([preprocess(view, res) for view in views])
    assert x.shape == golden.shape("net_input")
    index, want = golden.samples("net_input")
    np.testing.assert_array_equal(x[index], want)

    known = {}
    if "known_extrinsics" in golden.compact:
        known = {
            "camera_from_world": torch.from_numpy(golden.raw("known_extrinsics"))[None],
            "intrinsics": torch.from_numpy(golden.raw("known_intrinsics"))[None],
        }
    model = models(window_model_type(name))
    with torch.inference_mode():
        out = model.forward_window(
            torch.from_numpy(x)[None], reference_view=str(golden.raw("strategy")), **known
        )
    assert int(out.reference_view[0]) == int(golden.raw("reference_view"))
    found = {
        "depth": out.depth[0].numpy(),
        "confidence": out.confidence[0].numpy(),
        "extrinsics": out.camera_from_world[0].numpy(),
        "intrinsics": out.intrinsics[0].numpy(),
    }
    got = errors(golden, found)
    print(Path(name).stem, {k: f"{v:.2e}" for k, v in got.items()})
    assert all(v <= NET_RTOL for v in got.values()), got


@pytest.fixture(scope="module")
def predictors(module_tmp, detweights, fixtures_dir):
    made = {}

    def get(model_type: str, res: int) -> Predictor:
        if model_type not in made:
            made[model_type] = hub_file(
                detweights, fixtures_dir, model_type, module_tmp(model_type)
            )
        return Predictor(
            model_type,
            weights=made[model_type],
            device="cpu",
            backend="torch",
            progress=False,
            network_size=(res, res),
        )

    return get


@pytest.mark.parametrize("name", CASES, ids=lambda n: n.removeprefix("window_").split(".")[0])
def test_infer_window_matches_the_reference(predictors, name):
    """From the images (and known cameras on the images' grid) to the host arrays."""
    golden = _golden(name)
    views = window_views(golden)
    predictor = predictors(window_model_type(name), int(golden.raw("process_res")))
    known = {}
    if "known_extrinsics" in golden.compact:
        known = {
            "extrinsics": golden.raw("known_extrinsics")[:, :3],
            "intrinsics": golden.raw("known_intrinsics_image"),
        }
    found = predictor.infer_window(views, str(golden.raw("strategy")), **known)
    assert found.cameras.reference_view == int(golden.raw("reference_view"))
    assert found.depth.dtype == found.confidence.dtype == np.float32
    got = errors(
        golden,
        {
            "depth": found.depth,
            "confidence": found.confidence,
            "extrinsics": found.cameras.camera_from_world,
            "intrinsics": found.cameras.intrinsics,
        },
    )
    print(Path(name).stem, {k: f"{v:.2e}" for k, v in got.items()})
    assert all(v <= NET_RTOL for v in got.values()), got
    # At another size the intrinsics follow the maps, resized with align_corners=False:
    # a pixel centre u_net goes to 2 (u_net + 0.5) - 0.5.
    h, w = golden.shape("depth")[1:]
    resized = predictor.infer_window(
        views, str(golden.raw("strategy")), output_hw=(2 * h, 2 * w), **known
    )
    assert resized.depth.shape == resized.confidence.shape == (len(views), 2 * h, 2 * w)
    expected = 2 * found.cameras.intrinsics[:, :2].astype(np.float64)
    expected[:, :, 2] += 0.5
    np.testing.assert_allclose(resized.cameras.intrinsics[:, :2], expected, rtol=1e-6)
