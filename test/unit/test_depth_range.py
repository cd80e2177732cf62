"""Depth that a robot can act on: upsampling that never leaves the neighbours' range,
the flying-pixel filter, and REP-118 range semantics (+Inf too far, NaN invalid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from depth_range_cases import camera, header, image

from dpt_ros.models import Predictor
from dpt_ros.models.geometry import (
    backproject,
    flying_pixels,
    mark_saturated,
    relative_to_metric,
    upsample_depth,
)
from dpt_ros.models.transforms import resize_output
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.image_codec import image_msg_to_array


def edge(near: float = 1.0, far: float = 7.0, h: int = 12, w: int = 16) -> torch.Tensor:
    """(1, h, w) metres: a near object on the left half, a far wall on the right."""
    depth = torch.full((1, h, w), far)
    depth[..., : w // 2] = near
    return depth


def test_bicubic_overshoots_a_sharp_edge_but_upsample_depth_stays_in_range() -> None:
    """1 m / 7 m edge upsampled x4: bicubic reads 0.35 m (65 cm in front of the object);
    bilinear in inverse depth stays within [1, 7] m."""
    bicubic = resize_output(edge(), (48, 64))
    assert bicubic.min() < 0.4 and bicubic.max() > 7.6
    got = upsample_depth(edge(), (48, 64))
    assert got.shape == (1, 48, 64)
    assert got.min() >= 1.0 - 1e-6 and got.max() <= 7.0 + 1e-5
    # Flat regions are kept exactly.
    torch.testing.assert_close(got[..., :28], torch.ones(1, 48, 28))
    torch.testing.assert_close(got[..., 36:], torch.full((1, 48, 28), 7.0))


def test_upsample_depth_keeps_too_far_and_invalid_apart() -> None:
    """+Inf (too far) blends towards the far side; NaN never spreads into a ring around
    invalid pixels, nor do inverse-depth blends reach past the valid values."""
    depth = edge(2.0, float("inf"))
    depth[0, :3, :3] = float("nan")
    depth[0, 8:, :2] = 0.0  # no measurement, as some depth images write it
    got = upsample_depth(depth, (48, 64))
    finite = got[torch.isfinite(got)]
    assert finite.min() >= 2.0 - 1e-6
    assert torch.isinf(got[0, :, 40:]).all()
    # NaN only where the source pixel (nearest) is invalid: 12x12 + 16x8, no ring.
    assert int(torch.isnan(got).sum()) == 12 * 12 + 16 * 8


def test_calibrated_relative_depth_has_no_outliers_or_nan_rings() -> None:
    """Relative x (larger = nearer) with shift < 0: far pixels are beyond infinity. They
    become +Inf, and the upsampled edge stays within the finite range or +Inf."""
    x = torch.full((1, 12, 16), 0.05)
    x[..., :8] = 2.0
    low = relative_to_metric(x, 0.5, -0.1)  # 1 m near, 0.5*0.05-0.1 < 0: too far
    assert low[0, 0, 0] == pytest.approx(1.0 / 0.9) and torch.isposinf(low[0, 0, -1])
    got = upsample_depth(low, (48, 64))
    assert not torch.isnan(got).any()
    finite = got[torch.isfinite(got)]
    assert finite.min() >= 1.0 / 0.9 - 1e-5
    # Bicubic of the relative output then the calibration: NaN rings and far outliers.
    bicubic = relative_to_metric(resize_output(x, (48, 64)), 0.5, -0.1)
    assert torch.isnan(bicubic).any() or bicubic[torch.isfinite(bicubic)].max() > 20


def test_mark_saturated() -> None:
    ceiling = 1.0 / 0.1378  # NYU: 7.26 m
    depth = torch.tensor([1.0, 7.0, ceiling * (1 - 1e-4), ceiling, float("nan")])
    got = mark_saturated(depth, ceiling)
    assert got[:2].tolist() == [1.0, 7.0]
    assert torch.isposinf(got[2:4]).all() and torch.isnan(got[4])
    assert torch.equal(mark_saturated(depth, float("inf"))[:4], depth[:4])


def test_flying_pixels_between_surfaces_are_flagged_but_object_edges_stay() -> None:
    up = upsample_depth(edge(), (48, 64))[0]
    flying = flying_pixels(up, 0.1)
    # Intermediate depths (strictly between 1 and 7 m) are flagged ...
    between = (up > 1.0 + 1e-3) & (up < 7.0 - 1e-3)
    assert between.any() and torch.equal(flying & between, between)
    # ... the objects themselves (the last pixel of each included) are not.
    assert not flying[~between].any()
    # A slanted floor (depth up 2 % per row) is no edge.
    floor = torch.linspace(2.0, 2.0 * 1.02**47, 48)[:, None].expand(48, 64)
    assert not flying_pixels(floor, 0.1).any()


def test_backproject_min_depth_and_edge_filter() -> None:
    up = upsample_depth(edge(), (48, 64))[0]
    xyz = backproject(up, 50.0, 50.0, 31.5, 23.5, min_depth=1.5)
    assert torch.isnan(xyz[:, :20]).all()  # the 1 m object is nearer than 1.5 m
    filtered = backproject(up, 50.0, 50.0, 31.5, 23.5, edge_threshold=0.1)
    z = filtered[..., 2]
    kept = z[torch.isfinite(z)]
    assert kept.numel() > 0
    # Only points on the two surfaces are left.
    assert torch.minimum((kept - 1.0).abs(), (kept - 7.0).abs()).max() < 1e-5


# ---------------------------------------------------------------- in the pipeline


def test_relative_calibration_beyond_infinity_is_inf_not_nan() -> None:
    hybrid = Predictor(
        "dpt_hybrid", device="cpu", random_weights=True, progress=False, network_size=(96, 64)
    )
    options = PipelineOptions(relative_depth_scale=1.0, relative_depth_shift=-1e6)
    out = FramePipeline(hybrid, None, options).process(image(), header(), camera())
    depth = image_msg_to_array(out.messages["depth/image"])
    assert np.isposinf(depth).all()


def test_cloud_min_depth_must_be_below_max_depth() -> None:
    from dpt_ros.node.params import PARAMS, config_from_values

    values = {p.name: p.default for p in PARAMS}
    config = config_from_values({**values, "cloud.min_depth": 0.3})
    assert config.pipeline.cloud_min_depth == 0.3 and config.pipeline.cloud_edge_filter
    with pytest.raises(ValueError, match="cloud.min_depth=2.0 must be below cloud.max_depth=1.0"):
        config_from_values({**values, "cloud.min_depth": 2.0, "cloud.max_depth": 1.0})
