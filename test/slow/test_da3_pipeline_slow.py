"""Depth Anything 3's outputs through the frame pipeline, the node and the bag tool:"""

from __future__ import annotations

import numpy as np
from da3_cases import METRIC, arrays, tiny
from helpers import (
    camera_info,
    small_image,
)
from std_msgs.msg import Header

from dpt_ros.pipeline.frames import FramePipeline


def test_metric_frames_with_and_without_camera_info_share_a_batch_call():
    """Frames with intrinsics and without are run apart (metres per frame), each
    getting its own outputs, in order."""
    pipeline = FramePipeline(tiny(METRIC), None)
    rgbs = [small_image(48, 64, seed) for seed in range(3)]
    infos = [camera_info(64, 48), None, camera_info(64, 48)]
    outs = pipeline.process_batch(rgbs, [Header(frame_id="c")] * 3, infos)
    assert ["depth/image" in o.messages for o in outs] == [True, False, True]
    assert [bool(o.no_metres) for o in outs] == [False, True, False]
    alone = pipeline.process(rgbs[2], Header(frame_id="c"), infos[2])
    np.testing.assert_allclose(
        arrays(outs[2])["depth/image"], arrays(alone)["depth/image"], rtol=1e-5
    )


def test_mono_sky_is_infinitely_far_in_relative_depth():
    """The mono type's sky is inverse depth 0 in depth/relative (the reference fills it
    with a quantile; dpt-ros predict keeps that, the pipeline does not)."""
    predictor = tiny("depth_anything_3_mono_large")
    pipeline = FramePipeline(predictor, None)
    assert "depth/sky" in pipeline.topics() and "depth/relative" in pipeline.topics()
    out = pipeline.process(small_image(48, 64), Header(), None)
    got = arrays(out)
    # Random weights may give no sky: force the check where there is some.
    sky = got["depth/sky"] == 255
    assert set(np.unique(got["depth/sky"])) <= {0, 255}
    if sky.any():
        assert (got["depth/relative"][sky] < got["depth/relative"][~sky].min()).all()
