"""Input size limit (``max_input_pixels``): sizes read from headers, oversized images"""

from __future__ import annotations

import cv2
from helpers import FAST, Probe, spin_until
from image_size_cases import RGB, png_bomb
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage

from dpt_ros.node.node import DptNode


def test_node_rejects_a_bomb_and_keeps_going(ros):
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + [
                Parameter("depth.random_weights", value=True),
                Parameter("input_transport", value="compressed"),
            ]
        )
    )
    probe = Probe(add, compressed=True)
    assert spin_until(executor, lambda: probe.image_pub.get_subscription_count() > 0, 10)
    probe.image_pub.publish(CompressedImage(format="png", data=png_bomb()))
    assert spin_until(executor, lambda: node.status()["rejected"] == "1", 10)
    assert "20000x20000" in node.status()["last_error"]
    good = CompressedImage(format="png")
    good.header.stamp.sec = 5
    good.data = cv2.imencode(".png", RGB[:, :, ::-1])[1].tobytes()
    probe.image_pub.publish(good)
    assert spin_until(executor, lambda: probe.got["depth/relative"])
