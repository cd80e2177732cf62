"""Folders in transformers' format (``save_pretrained``): keys converted into our layout,"""

from __future__ import annotations

import numpy as np

from dpt_ros.models import Predictor


def test_the_node_takes_a_folder(dav2_folder, ros):
    """depth.weights: DIR loads the folder; the node's output equals our Predictor on
    the same folder, over real rclpy."""
    from helpers import Probe, rgb_msg, small_image, spin_until, wait_for_subscribers
    from rclpy.parameter import Parameter

    from dpt_ros.node.node import DptNode
    from dpt_ros.ros.image_codec import image_msg_to_array

    executor, add = ros
    overrides = [
        Parameter("device", value="cpu"),
        Parameter("backend", value="torch"),
        Parameter("precision", value="fp32"),
        Parameter("network_width", value=56),
        Parameter("network_height", value=56),
        Parameter("depth.model_type", value="depth_anything_v2_vits"),
        Parameter("depth.weights", value=str(dav2_folder[0])),
    ]
    add(DptNode(parameter_overrides=overrides))
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    rgb = small_image()
    probe.image_pub.publish(rgb_msg(rgb, 4))
    assert spin_until(executor, lambda: probe.got["depth/relative"])
    got = image_msg_to_array(probe.got["depth/relative"][0])
    want = Predictor(
        "depth_anything_v2_vits",
        weights=str(dav2_folder[0]),
        device="cpu",
        backend="torch",
        network_size=(56, 56),
    ).predict(rgb)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
