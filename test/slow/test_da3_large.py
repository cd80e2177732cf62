"""Depth Anything 3 against the reference (depth-anything-3 0.1.1): preprocessing,"""

from __future__ import annotations

import time

import numpy as np
import torch
from da3_cases import METRIC, NET_RTOL, da3_golden, golden_input

from dpt_ros.models.da3_transforms import (
    fill_sky,
    metric_depth,
    network_intrinsics,
)
from dpt_ros.models.weights.da3_checkpoint import (
    load_da3,
)


def test_metric_large_matches_the_reference(det_state, scene_a_rgb):
    """The full ViT-L (334M parameters): the deterministic weights take most of the time."""
    start = time.perf_counter()
    model = load_da3(METRIC, det_state(METRIC))
    golden = da3_golden(METRIC, 280)
    x = golden_input(golden, scene_a_rgb)
    with torch.inference_mode():
        depth, sky = model(x)
    assert model.output_names == ("depth", "sky")
    assert golden.relative_error("depth", depth[0].numpy()) <= NET_RTOL
    assert golden.relative_error("sky", sky[0].numpy()) <= NET_RTOL
    # Sky on part of the image (the observation), the mask as the reference's.
    index, want = golden.samples("sky")
    assert np.array_equal(sky[0].numpy()[index] >= 0.3, want >= 0.3)
    assert 0.2 < float((sky >= 0.3).float().mean()) < 0.8
    filled = fill_sky(depth, sky)
    assert golden.relative_error("depth_sky_filled", filled[0].numpy()) <= NET_RTOL
    k = torch.from_numpy(network_intrinsics(golden.raw("intrinsics_image"), (480, 640), 280))
    metres = metric_depth(filled, k)
    assert golden.relative_error("metric_depth", metres[0].numpy()) <= NET_RTOL
    print(f"metric large: {time.perf_counter() - start:.1f} s")
