"""Set-up of the semantic-segmentation node tests: the node's parameters, a listener in
the place of Nav2's semantic layer, and the camera it sees."""

from __future__ import annotations

from helpers import FAST
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

SEGMENTATION = FAST + [
    Parameter("depth.random_weights", value=True),
    Parameter("segmentation.model_type", value="dpt_hybrid_ade20k"),
    Parameter("segmentation.random_weights", value=True),
    Parameter("relative_depth.scale", value=0.5),
    Parameter("relative_depth.shift", value=0.2),
    Parameter("cloud.stride", value=1),
    Parameter("warmup_width", value=0),
    Parameter("warmup_height", value=0),
]


class Layer:
    """What a semantic costmap layer subscribes to (confidence optional)."""

    def __init__(self, add, confidence: bool = True) -> None:
        self.node = add(Node("costmap_layer"))
        self.got: dict[str, list] = {t: [] for t in TOPICS}
        for topic, typ in TOPICS.items():
            if topic != "segmentation/confidence" or confidence:
                self.node.create_subscription(
                    typ, topic, lambda m, t=topic: self.got[t].append(m), 10
                )
        self.image_pub = self.node.create_publisher(Image, "image", 10)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", 10)


def semantic_camera_info(width: int, height: int) -> CameraInfo:
    info = CameraInfo()
    info.width, info.height = width, height
    f = 0.8 * width
    info.k = [f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, width / 2, 0.0, 0.0, f, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = "camera_optical_frame"
    return info


TOPICS = {
    "segmentation/labels": Image,
    "segmentation/confidence": Image,
    "points": PointCloud2,
}
