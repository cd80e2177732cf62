"""Temporal stabilisation (``temporal.*``) in the frame pipeline and through the real
node over rclpy.

The depth model has random weights at a small network, wrapped (``jittered_depth``) so
that each frame's raw output is the same scene times a factor the frame carries: the
raw output flickers by a known scale, and the published depth must not.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import camera_info, rgb_msg, small_image, spin_until
from jittered_depth import cut, jitter, marked, relative_scales
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from dpt_ros.alignment.temporal import TemporalOptions, TemporalStreams
from dpt_ros.models import Predictor
from dpt_ros.node.node import DptNode
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import cloud_points

H, W = 48, 64
NET = 56
RELATIVE, METRIC = "depth_anything_v2_vits", "depth_anything_v2_metric_hypersim_vits"
#: Per-frame factors of the raw depth: about 17 % spread.
FACTORS = (1.0, 1.25, 0.8, 1.2, 0.85, 1.15)


def _predictor(model: str) -> Predictor:
    return jitter(
        Predictor(
            model, device="cpu", backend="torch", random_weights=True, network_size=(NET, NET)
        )
    )


@pytest.fixture(scope="module")
def relative_model() -> Predictor:
    return _predictor(RELATIVE)


@pytest.fixture(scope="module")
def metric_model() -> Predictor:
    return _predictor(METRIC)


def _header(k: int) -> Header:
    """Frame ``k`` at 10 Hz."""
    header = Header(frame_id="camera_optical_frame")
    header.stamp.sec, header.stamp.nanosec = k // 10, (k % 10) * 100_000_000
    return header


def _pipeline(model: Predictor, temporal: bool, **options) -> FramePipeline:
    o = PipelineOptions(output_size="network", cloud_edge_filter=False, **options)
    pipeline = FramePipeline(model, None, o)
    if temporal:
        pipeline.temporal = TemporalStreams(TemporalOptions(enabled=True))
    return pipeline


def test_relative_metres_and_points_come_from_the_stabilised_inverse_depth(relative_model):
    """depth/relative flickers far less than the raw frames; depth/image is the fixed
    calibration applied to the stabilised inverse depth (the map composed into it), and
    the points lie at those metres."""
    scale, shift = 2.0, 0.1
    pipeline = _pipeline(
        relative_model, True, relative_depth_scale=scale, relative_depth_shift=shift
    )
    base = small_image(H, W)
    inverse, factors = [], []
    for k, wanted in enumerate(FACTORS):
        rgb, factor = marked(base, wanted)
        factors.append(factor)
        out = pipeline.process(rgb, _header(k), camera_info(W, H))
        assert out.stabilized is not None and out.stabilized.restarted is False
        assert (out.stabilized.scale == 1.0) == (k == 0)  # the first frame is raw
        relative, metres = out.arrays["inverse"], out.arrays["metric"]
        np.testing.assert_allclose(metres, 1.0 / (scale * relative + shift), rtol=1e-5)
        z = cloud_points(out.messages["points"])[:, 2]
        np.testing.assert_allclose(np.sort(z), np.sort(metres[np.isfinite(metres)]), rtol=1e-5)
        inverse.append(relative)
    raw_spread = np.std(np.asarray(factors) / factors[0])
    spread = np.std(relative_scales(inverse))
    assert raw_spread > 0.15
    assert spread < raw_spread / 3, (spread, raw_spread)


def test_metric_depth_and_points_scale_by_the_stabiliser(metric_model):
    """A metric model's stabilised metres are ``a`` times the raw ones (mode scale), and
    its points follow them."""
    steady = _pipeline(metric_model, True)
    raw = _pipeline(metric_model, False)
    base = small_image(H, W)
    stabilised = []
    for k, wanted in enumerate(FACTORS[:4]):
        rgb, _ = marked(base, wanted)
        out = steady.process(rgb, _header(k), camera_info(W, H))
        plain = raw.process(rgb, _header(k), camera_info(W, H)).arrays["metric"]
        assert out.stabilized is not None and out.stabilized.shift == 0.0
        a = out.stabilized.scale
        np.testing.assert_allclose(out.arrays["metric"], a * plain, rtol=1e-5)
        z = cloud_points(out.messages["points"])[:, 2]
        finite = out.arrays["metric"][np.isfinite(out.arrays["metric"])]
        np.testing.assert_allclose(np.sort(z), np.sort(finite), rtol=1e-5)
        stabilised.append(out.arrays["metric"])
    spread = np.std(relative_scales(stabilised, affine=False))
    assert spread < np.std(np.asarray(FACTORS[:4])) / 3


def test_reset_starts_every_stream_afresh(relative_model):
    """``FramePipeline.reset`` (each bag) forgets the streams: the next frame is raw."""
    pipeline = _pipeline(relative_model, True)
    base = small_image(H, W)
    for k, wanted in enumerate(FACTORS[:3]):
        out = pipeline.process(marked(base, wanted)[0], _header(k))
    assert out.stabilized is not None and out.stabilized.scale != 1.0
    pipeline.reset()
    again = pipeline.process(marked(base, FACTORS[2])[0], _header(3))
    assert again.stabilized is not None
    assert again.stabilized.reason == "first frame" and again.stabilized.scale == 1.0


# ------------------------------------------------------------------ the node


def test_node_publishes_stabilised_relative_depth_and_reports_a_cut(ros):
    """Over rclpy: depth/relative holds still while the raw scale jumps by ~17 % a frame;
    a scene cut restarts the stream, reported in /diagnostics (level OK: an event) with
    its reason and a count; temporal.* changes at run time start the streams afresh."""
    from helpers import Probe

    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=[
                Parameter("device", value="cpu"),
                Parameter("backend", value="torch"),
                Parameter("depth.model_type", value=RELATIVE),
                Parameter("depth.random_weights", value=True),
                Parameter("network_width", value=NET),
                Parameter("network_height", value=NET),
                Parameter("warmup_width", value=0),
                Parameter("warmup_height", value=0),
                Parameter("diagnostics_period", value=0.2),
                Parameter("temporal.enabled", value=True),
            ]
        )
    )
    jitter(node.pipeline.depth)
    probe = Probe(add)
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() > 0, 10)
    info = camera_info(W, H)
    base = small_image(H, W)
    frames = [marked(base, f) for f in FACTORS] + [(cut(base), 1.0)]
    got = probe.got["depth/relative"]
    for k, (rgb, _) in enumerate(frames):
        msg = rgb_msg(rgb, 0)
        msg.header.stamp.sec, msg.header.stamp.nanosec = k // 10, (k % 10) * 100_000_000
        info.header.stamp = msg.header.stamp
        probe.info_pub.publish(info)
        probe.image_pub.publish(msg)
        assert spin_until(executor, lambda n=k + 1: len(got) >= n, 120), k
    published = [image_msg_to_array(m) for m in probe.got["depth/relative"]]
    factors = np.asarray([f for _, f in frames[: len(FACTORS)]])
    raw_spread = np.std(factors / factors[0])
    spread = np.std(relative_scales(published[: len(FACTORS)]))
    assert spread < raw_spread / 3, (spread, raw_spread)

    def temporal_values():
        if not probe.diagnostics:
            return {}
        status = probe.diagnostics[-1].status[0]
        return {kv.key: kv.value for kv in status.values} | {"level": status.level}

    assert spin_until(executor, lambda: temporal_values().get("temporal.resets") == "1", 30)
    values = temporal_values()
    last = values["temporal.last_reset"]
    assert any(word in last for word in ("fitted scale", "inlier share", "residual")), last
    assert "stamp 0.600 s" in last
    assert values["level"] == b"\x00", values  # OK: a restart is an event, not a fault

    streams = node.pipeline.temporal
    result = node.set_parameters([Parameter("temporal.smoothing", value=0.5)])
    assert result[0].successful
    assert node.pipeline.temporal is not streams and node.pipeline.temporal is not None
    assert node.pipeline.temporal.options.smoothing == 0.5
    result = node.set_parameters([Parameter("temporal.smoothing", value=0.0)])
    assert not result[0].successful and "temporal.smoothing" in result[0].reason
    node.set_parameters([Parameter("temporal.enabled", value=False)])
    assert node.pipeline.temporal is None
