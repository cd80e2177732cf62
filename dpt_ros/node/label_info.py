"""The node's ``segmentation/label_info``: the segmentation classes, published once per
camera (reliable, transient local: late subscribers get it too) and again when the
camera's frame changes. The node hands over itself to create the publishers on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from dpt_ros.node.cameras import Camera
from dpt_ros.ros.label_info import import_vision_msgs, label_info_message

#: The topic's name in each camera's namespace.
TOPIC = "segmentation/label_info"


def _latched() -> QoSProfile:
    """Reliable and transient local, one message: a late subscriber gets it too."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


class NodeLabelInfo:
    """``segmentation/label_info`` of each camera of a node, where segmentation runs and
    vision_msgs imports.

    Args:
        node: the node that publishes.
        cameras: its cameras: each gets the topic's publisher in ``publishers``.
        segmentation: whether a segmentation model runs (nothing is published if not).
        frame_id: the ``frame_id`` parameter: the first message's frame (often empty).

    Attributes:
        state: what /diagnostics says of the topic: ``published`` or ``off: <why>``.
    """

    def __init__(
        self, node: Node, cameras: Sequence[Camera], segmentation: bool, frame_id: str
    ) -> None:
        self._node = node
        self._classes: tuple[Any, Any] | None = None
        if not segmentation:
            self.state = "off: no segmentation model"
            return
        classes = import_vision_msgs()
        if isinstance(classes, str):
            node.get_logger().warning(f"segmentation/label_info is off: {classes}")
            self.state = f"off: {classes}"
            return
        self._classes = classes
        for cam in cameras:
            cam.publishers[TOPIC] = node.create_publisher(classes[0], cam.topic(TOPIC), _latched())
            self.frame(cam, frame_id)
        self.state = "published"

    def frame(self, cam: Camera, frame_id: str) -> None:
        """(Re)publishes ``cam``'s LabelInfo when its frame changes: at start the
        ``frame_id`` parameter's (often empty), then the camera's from its first frame."""
        pub = cam.publishers.get(TOPIC)
        if pub is None or self._classes is None or cam.label_info_frame == frame_id:
            return
        cam.label_info_frame = frame_id
        header = Header(stamp=self._node.get_clock().now().to_msg(), frame_id=frame_id)
        pub.publish(label_info_message(*self._classes, header))
