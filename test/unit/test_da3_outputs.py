"""Depth Anything 3's outputs through the frame pipeline, the node and the bag tool:
``depth/confidence``, ``depth/sky``, metres from camera_info, the cloud's confidence
field and ``cloud.min_confidence``, against the reference's goldens (made by
``scripts/make_da3_goldens.py``) on the network's grid."""

from __future__ import annotations

import numpy as np
import pytest
from da3_cases import SMALL, arrays, stand_in_reference, tiny
from helpers import (
    camera_info,
    small_image,
)
from std_msgs.msg import Header

from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

# --------------------------------------------------------------------------- pipeline


def test_the_cloud_carries_confidence_and_drops_unsure_points():
    options = PipelineOptions(relative_depth_scale=1.0, cloud_stride=2)
    pipeline = FramePipeline(tiny(SMALL), None, options)
    rgb, info = small_image(48, 64), camera_info(64, 48)
    out = pipeline.process(rgb, Header(frame_id="c"), info)
    confidence = arrays(out)["depth/confidence"]
    fields = pointcloud2_to_arrays(out.messages["points"])
    assert [f.name for f in out.messages["points"].fields] == ["x", "y", "z", "rgb", "confidence"]
    np.testing.assert_array_equal(fields["confidence"], confidence[::2, ::2])
    assert np.isfinite(fields["z"]).all()
    threshold = float(np.median(confidence[::2, ::2]))
    pipeline.options = PipelineOptions(
        relative_depth_scale=1.0, cloud_stride=2, cloud_min_confidence=threshold
    )
    fields = pointcloud2_to_arrays(pipeline.process(rgb, Header(), info).messages["points"])
    unsure = fields["confidence"] < threshold
    assert 0 < unsure.sum() < unsure.size
    assert np.isnan(fields["z"][unsure]).all() and np.isfinite(fields["z"][~unsure]).all()


@pytest.mark.parametrize("value", (float("nan"), -0.5))
def test_a_nan_or_negative_confidence_threshold_is_refused(value):
    from dpt_ros.node.params import validate

    assert any(
        "cloud_min_confidence" in p for p in PipelineOptions(cloud_min_confidence=value).problems()
    )
    assert any("cloud.min_confidence" in p for p in validate({"cloud.min_confidence": value}))


# --------------------------------------------------------------------------- node


# --------------------------------------------------------------------------- bag


# --------------------------------------------------------------------------- bench


def test_bench_times_da3_beside_the_reference_where_it_imports(monkeypatch, capsys):
    """``dpt-ros bench`` on a Depth Anything 3 type: the reference network beside ours
    in fp32 where ``depth_anything_3`` imports (a stand-in here: it is never installed
    with the package), and what to install where it does not."""
    import json
    import sys

    from dpt_ros.cli.main import main

    argv = ["bench", "--model-type", SMALL, "--device", "cpu", "--camera-size", "64x48"]
    argv += ["--network-size", "56x56", "--backend", "torch", "--iters", "1", "--warmup", "0"]
    monkeypatch.setitem(sys.modules, "depth_anything_3", None)  # not installed
    assert main([*argv, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["reference"].startswith("not installed") and figures["network_input"] == "56x42"

    calls = stand_in_reference(monkeypatch)
    assert main([*argv, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "da3-small" in figures["reference"]
    assert figures["speedup_vs_reference_float32"] > 0
    assert calls and calls[0] == (1, 1, 3, 42, 56)  # (B, N views, 3, h, w)
