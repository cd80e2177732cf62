"""Depth Anything 3's outputs through the frame pipeline, the node and the bag tool:"""

from __future__ import annotations

import numpy as np
import pytest
from da3_cases import (
    METRIC,
    RTOL,
    SMALL,
    arrays,
    check_small,
    da3_golden,
    hub_file,
    scene_camera_info,
)
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions


@pytest.mark.parametrize("res", (280, 504))
def test_pipeline_matches_the_small_goldens(small_file, scene_a_rgb, res):
    predictor = Predictor(
        SMALL, device="cpu", weights=small_file, backend="torch", network_size=(res, res)
    )
    pipeline = FramePipeline(predictor, None, PipelineOptions(output_size="network"))
    assert "depth/confidence" in pipeline.topics() and "depth/sky" not in pipeline.topics()
    header = Header(frame_id="cam_optical")
    header.stamp.sec = 7
    out = pipeline.process(scene_a_rgb, header, scene_camera_info())
    got = arrays(out)
    assert set(got) == {"depth/relative", "depth/confidence", "depth/confidence_mono8"}
    check_small(da3_golden(SMALL, res), got["depth/relative"], got["depth/confidence"])
    msg = out.messages["depth/confidence"]
    assert msg.encoding == "32FC1" and msg.header == header
    info = out.messages["depth/camera_info"]
    assert (info.height, info.width) == got["depth/relative"].shape


def test_pipeline_metric_matches_the_golden_and_needs_camera_info(
    detweights, fixtures_dir, scene_a_rgb, tmp_path
):
    """The full ViT-L at 280 (210x280, not square): metres from the camera_info's P,
    sky +Inf (REP-118 "too far") where the golden fills it; no camera_info, or one with
    P and K zero: no metres, the reason given, the sky still published."""
    weights = hub_file(detweights, fixtures_dir, METRIC, tmp_path)
    predictor = Predictor(
        METRIC, device="cpu", weights=weights, backend="torch", network_size=(280, 280)
    )
    pipeline = FramePipeline(predictor, None, PipelineOptions(output_size="network"))
    golden = da3_golden(METRIC, 280)
    out = pipeline.process(scene_a_rgb, Header(frame_id="cam"), scene_camera_info())
    assert out.no_metres == "" and not out.warnings
    got = arrays(out)
    assert set(got) == {"depth/image", "depth/sky"}
    metres, sky = got["depth/image"], got["depth/sky"]
    index, want_sky = golden.samples("sky")
    is_sky = want_sky >= 0.3
    clear = np.abs(want_sky - 0.3) > 1e-3  # the threshold's own neighbourhood aside
    assert 0.2 < is_sky.mean() < 0.8
    np.testing.assert_array_equal(sky[index][clear], np.where(is_sky, 255, 0)[clear])
    # Metres where our sky mask (equal to the reference's, above) says ground; the
    # golden's sky holds its filled quantile where ours is +Inf.
    index, want_metres = golden.samples("metric_depth")
    ground = sky[index] == 0
    assert 0.2 < ground.mean() < 0.8
    error = np.abs(metres[index][ground] - want_metres[ground]).max()
    assert error / np.abs(want_metres).max() <= RTOL
    assert np.all(np.isposinf(metres[index][~ground]))
    # The cloud drops the sky (too far), keeps the rest.
    assert "points" in out.messages

    for info, why in (
        (None, "no camera_info"),
        (scene_camera_info(False), "camera_info rejected: camera_info K is all zero"),
    ):
        out = pipeline.process(scene_a_rgb, Header(frame_id="cam"), info)
        assert why in out.no_metres and "no metres" in out.no_metres
        assert set(arrays(out)) == {"depth/sky"} and "points" not in out.messages
        np.testing.assert_array_equal(arrays(out)["depth/sky"], sky)
