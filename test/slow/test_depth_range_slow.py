"""Depth that a robot can act on: upsampling that never leaves the neighbours' range,"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from depth_range_cases import camera, header, image

from dpt_ros.models import Predictor
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays


def test_metric_model_saturation_is_published_as_inf() -> None:
    """A metric model whose network says 'as far as it can' everywhere (x = 0): the
    NYU model reads 7.26 m; depth/image says +Inf and the cloud has no points."""
    nyu = Predictor(
        "dpt_hybrid_nyu", device="cpu", random_weights=True, progress=False, network_size=(96, 64)
    )
    assert nyu.depth_ceiling == pytest.approx(7.257, abs=1e-3)
    last = nyu.model.scratch.output_conv[4]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-1.0)
    out = FramePipeline(nyu, None, PipelineOptions()).process(image(), header(), camera())
    depth = image_msg_to_array(out.messages["depth/image"])
    assert np.isposinf(depth).all()
    points = pointcloud2_to_arrays(out.messages["points"])
    assert np.isnan(points["z"]).all()


def test_outputs_nobody_subscribes_to_are_not_built() -> None:
    hybrid = Predictor(
        "dpt_hybrid", device="cpu", random_weights=True, progress=False, network_size=(96, 64)
    )
    options = PipelineOptions(relative_depth_scale=1.0, relative_depth_shift=0.5)
    pipeline = FramePipeline(hybrid, None, options)
    full = pipeline.process_batch([image()], [header()], [camera()])[0]
    assert {"points", "depth/colored"} <= set(full.messages) and "xyz" in full.arrays
    lean = pipeline.process_batch(
        [image()], [header()], [camera()], skip={"points", "depth/colored"}
    )[0]
    assert {"depth/image", "depth/relative", "depth/camera_info"} == set(lean.messages)
    assert "xyz" not in lean.arrays


def test_per_frame_calibrations_equal_fixed_ones() -> None:
    """Two frames of one batch under different calibrations (online alignment) get the
    same metres as each under that calibration alone."""
    hybrid = Predictor(
        "dpt_hybrid", device="cpu", random_weights=True, progress=False, network_size=(96, 64)
    )
    cals = [(1.0, 0.5), (2.0, 0.3)]
    rgbs = [image(), image()[::-1].copy()]
    batch = FramePipeline(hybrid, None, PipelineOptions()).process_batch(
        rgbs, [header()] * 2, [camera()] * 2, calibrations=cals
    )
    for (scale, shift), rgb, got in zip(cals, rgbs, batch):
        options = PipelineOptions(relative_depth_scale=scale, relative_depth_shift=shift)
        alone = FramePipeline(hybrid, None, options).process(rgb, header(), camera())
        np.testing.assert_allclose(
            image_msg_to_array(got.messages["depth/image"]),
            image_msg_to_array(alone.messages["depth/image"]),
            rtol=1e-5,
        )
