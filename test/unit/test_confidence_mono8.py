"""``depth/confidence_mono8``: Depth Anything 3's unbounded 32FC1 confidence (>= 1) as
a bounded, monotone mono8 image for consumers that read bytes (Nav2's semantic layer)
or scale floats by 255 (Foxglove), pixel-aligned with ``depth/confidence``."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.pipeline.frames import OUTPUT_TOPICS, SKIPPABLE_TOPICS, FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.confidence import confidence_to_mono8, mono8_to_confidence
from dpt_ros.ros.image_codec import image_msg_to_array


def test_the_map_is_bounded_and_monotone():
    c = np.array([[1.0, 1.5, 2.0, 3.0, 10.0, 1e6, np.inf, np.nan, 0.5]], np.float32)
    assert confidence_to_mono8(c).tolist() == [[0, 85, 128, 170, 230, 255, 255, 0, 0]]
    ramp = np.linspace(1.0, 1000.0, 100_000, dtype=np.float32)[None]
    m = confidence_to_mono8(ramp)
    assert m.dtype == np.uint8 and (np.diff(m.astype(int)) >= 0).all()
    assert mono8_to_confidence(128) == pytest.approx(255 / 127)
    assert confidence_to_mono8(np.float32([[mono8_to_confidence(170)]]))[0, 0] == 170
    with pytest.raises(ValueError, match="below 255"):
        mono8_to_confidence(255)


@pytest.fixture(scope="module")
def da3_small():
    """Depth Anything 3 small with random weights at a small network size, on the CPU."""
    return Predictor(
        "depth_anything_3_small",
        device="cpu",
        backend="torch",
        random_weights=True,
        progress=False,
        network_size=(56, 56),
    )


def test_published_beside_the_raw_confidence_and_skipped_unless_subscribed(da3_small):
    assert OUTPUT_TOPICS["depth/confidence_mono8"] is OUTPUT_TOPICS["depth/confidence"]
    assert "depth/confidence_mono8" in SKIPPABLE_TOPICS  # the node: only when subscribed
    pipeline = FramePipeline(da3_small, None, PipelineOptions(output_size="network"))
    assert {"depth/confidence", "depth/confidence_mono8"} <= set(pipeline.topics())
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    header = Header(frame_id="cam_optical")
    header.stamp.sec = 3
    out = pipeline.process(rgb, header)
    raw, mono8 = out.messages["depth/confidence"], out.messages["depth/confidence_mono8"]
    assert (raw.encoding, mono8.encoding) == ("32FC1", "mono8")
    assert mono8.header == raw.header == header
    c, m = image_msg_to_array(raw), image_msg_to_array(mono8)
    assert m.shape == c.shape and m.dtype == np.uint8
    np.testing.assert_array_equal(m, confidence_to_mono8(c))
    skipped = pipeline.process_batch([rgb], [header], [None], skip={"depth/confidence_mono8"})
    assert "depth/confidence_mono8" not in skipped[0].messages
    assert "depth/confidence" in skipped[0].messages
