"""The metric reference of online alignment, read from a bag: a depth image registered
to the camera (``reference_depth``) or a point cloud in the camera's frame
(``reference_points``), as :class:`~dpt_ros.alignment.online.OnlineAligner` takes it.

The bag tool has no TF, so a cloud must already be in the images' frame; the reader
says so instead of guessing a transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from dpt_ros.ros.bagio import CLOUD_TYPE, IMAGE_TYPE
from dpt_ros.ros.image_codec import ImageDecodeError, depth_image_to_metres
from dpt_ros.ros.messages import deserialized, stamp_ns
from dpt_ros.ros.pointcloud import cloud_points
from dpt_ros.text import shown

#: The reference message type of each method that reads one.
REFERENCE_TYPES = {"reference_depth": IMAGE_TYPE, "reference_points": CLOUD_TYPE}


@dataclass(frozen=True)
class Reference:
    """One decoded reference message.

    Attributes:
        stamp: its header stamp, ns.
        values: (H, W) metres (NaN = unknown) or (N, 3) points in the camera optical
            frame, metres.
        frame_id: its header's frame.
    """

    stamp: int
    values: np.ndarray
    frame_id: str


@dataclass
class BagReferenceReader:
    """Decodes one bag topic's reference messages.

    Args:
        method: ``reference_depth`` or ``reference_points``.
        topic: the bag's reference topic (absolute).
    """

    method: str
    topic: str

    def __post_init__(self) -> None:
        if self.method not in REFERENCE_TYPES:
            raise ValueError(
                f"no reference topic for alignment {self.method!r}; methods with one: "
                f"{', '.join(REFERENCE_TYPES)}"
            )

    def check_topic(self, topics: dict[str, str]) -> None:
        """ValueError unless ``topics`` (name -> type) has the reference with its type."""
        want = REFERENCE_TYPES[self.method]
        if topics.get(self.topic) != want:
            found = topics.get(self.topic, "not in the bag")
            raise ValueError(f"--alignment-topic {self.topic} must be a {want}, it is {found}")

    def read(self, data: bytes) -> Reference:
        """One serialised reference message, decoded.

        Raises:
            ValueError: the message cannot be used (the text says why).
        """
        kind = Image if self.method == "reference_depth" else PointCloud2
        try:
            msg = deserialized(data, kind)
        except (ValueError, TypeError, RuntimeError):  # rclpy's RMWError is a RuntimeError
            raise ValueError(
                f"a corrupt sensor_msgs/{kind.__name__} message (it cannot be deserialized)"
            ) from None
        stamp = stamp_ns(msg.header)
        if self.method == "reference_depth":
            try:
                return Reference(stamp, depth_image_to_metres(msg), msg.header.frame_id)
            except ImageDecodeError as exc:
                raise ValueError(str(exc)) from None
        return Reference(stamp, cloud_points(msg), msg.header.frame_id)

    def frame_problem(self, reference: Reference, image_frame: str) -> str | None:
        """Why a reference cannot be used with an image in ``image_frame``, or None: a
        cloud in another frame (the bag tool has no TF). Frame ids are shown quoted and
        escaped (:func:`~dpt_ros.text.shown`): they come from the bag."""
        if self.method != "reference_points" or reference.frame_id == image_frame:
            return None
        return (
            f"the reference cloud is in frame {shown(reference.frame_id)} but the images are "
            f"in {shown(image_frame)}; the bag tool has no TF: record the cloud in the "
            "camera's frame"
        )
