"""Depth Anything 3 windows conditioned on known cameras and aligned to them, against
the reference API (``depth-anything-3`` 0.1.1, ``DepthAnything3.inference`` with
``extrinsics``, ``intrinsics`` and ``align_to_input_ext_scale=True``): the predictor's
``infer_window(..., align_to_input=True)`` from the images and the cameras in metres.

The goldens (``fixtures/compact/da3/aligned_<case>.compact.npz``) come from
``scripts/make_da3_goldens.py --aligned``: crops of ``scene_a.png`` (3 views, and 10,
where the reference fits by RANSAC) and an odometry-like path (about 0.3 m per view, in
a tilted world away from the origin);
float32 on the CPU with deterministic weights. They hold the aligned depth, confidence,
extrinsics and intrinsics, the Umeyama scale, and the network's own cameras before the
alignment.
"""

from __future__ import annotations

import numpy as np
import pytest
from da3_cases import hub_file, whole_error, window_views
from goldens import FIXTURES, Golden

from dpt_ros.models import Predictor

#: Outputs against the reference, relative to each output's maximum magnitude.
RTOL = 1e-4

CASES = sorted(p.name for p in (FIXTURES / "compact" / "da3").glob("aligned_*.compact.npz"))


def test_there_are_aligned_goldens():
    assert CASES, "no aligned_*.compact.npz in fixtures/compact/da3"


@pytest.mark.parametrize("name", CASES, ids=lambda n: n.removeprefix("aligned_").split(".")[0])
def test_aligned_window_matches_the_reference(module_tmp, detweights, fixtures_dir, name):
    golden = Golden.load(FIXTURES / "compact" / "da3" / name)
    model_type = "depth_anything_3_small"
    res = int(golden.raw("process_res"))
    predictor = Predictor(
        model_type,
        weights=hub_file(detweights, fixtures_dir, model_type, module_tmp(model_type)),
        device="cpu",
        backend="torch",
        progress=False,
        network_size=(res, res),
    )
    views = window_views(golden)
    given = {
        "extrinsics": golden.raw("given_extrinsics"),
        "intrinsics": golden.raw("given_intrinsics"),
    }
    strategy = str(golden.raw("strategy"))
    found = predictor.infer_window(views, strategy, **given, align_to_input=True)
    scale = float(golden.raw("scale"))
    got = {
        "depth": golden.relative_error("depth", found.depth),
        "confidence": golden.relative_error("confidence", found.confidence),
        "extrinsics": whole_error(found.cameras.camera_from_world, golden.raw("extrinsics")),
        "intrinsics": whole_error(found.cameras.intrinsics, golden.raw("intrinsics")),
        "scale": abs(found.cameras.scale - scale) / scale,
    }
    # the network's own cameras, before the alignment: where a difference would start
    raw = predictor.infer_window(views, strategy, **given)
    got["predicted_extrinsics"] = whole_error(
        raw.cameras.camera_from_world, golden.raw("predicted_extrinsics")
    )
    print(name, {k: f"{v:.2e}" for k, v in got.items()})
    assert all(v <= RTOL for v in got.values()), got
    assert found.depth.dtype == found.confidence.dtype == np.float32
