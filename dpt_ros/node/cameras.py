"""The node's input cameras: each one's topics, latest frame, camera_info, publishers
and counters, and a read-only view of them for callers outside the node (tests, tools).
No rclpy Node here: the node creates the subscriptions and publishers.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sensor_msgs.msg import CameraInfo

from dpt_ros.node.health import CameraInfoTracker
from dpt_ros.node.latest_frame import LatestFrame


class Camera:
    """One input camera: topics, latest frame and camera_info, publishers, counters.

    Args:
        name: its namespace as configured (normalised); "" = the node's own namespace
            (the single-camera set-up, with the original topic names and messages).
        condition: the wake-up shared by every camera's frame slot.
    """

    def __init__(self, name: str, condition: threading.Condition) -> None:
        self.name = name
        self.frames = LatestFrame(condition)
        #: Its camera_info subscription's messages (set with the subscriptions).
        self.info = CameraInfoTracker("camera_info")
        self.publishers: dict[str, Any] = {}
        self.received = 0
        self.processed = 0
        self.rejected = 0
        self.last_image_at: float | None = None
        #: The frame_id of the LabelInfo last published (None = none yet).
        self.label_info_frame: str | None = None
        #: Stamp (ns) of its last frame that online alignment was fed.
        self.last_stamp_ns: int | None = None
        #: Times its temporal stabilisation started again (not counting first frames),
        #: and the last such restart's reason and stamp.
        self.temporal_resets = 0
        self.temporal_last_reset = "none"
        #: Why its last frame got no metres from a model that needs its focal length
        #: (metric Depth Anything 3; "" = it did), and the reasons already logged.
        self.no_metres = ""
        self.no_metres_logged: set[str] = set()

    @property
    def camera_info(self) -> CameraInfo | None:
        """The newest camera_info received, or None."""
        return self.info.latest

    def topic(self, relative: str) -> str:
        """``relative`` (an ``OUTPUT_TOPICS`` name, ``image``, ...) in this camera's namespace."""
        return f"{self.name}/{relative}" if self.name else relative

    def prefixed(self, text: str) -> str:
        """A log or error text, naming the camera when there are several."""
        return f"{self.name}: {text}" if self.name else text

    def subscribed(self, topic: str) -> bool:
        """Whether someone subscribes to its output ``topic``."""
        pub = self.publishers.get(topic)
        return pub is not None and pub.get_subscription_count() > 0


class CameraView:
    """What a node's camera has received and done, read-only (``DptNode.cameras``).

    Args:
        camera: the node's camera.
    """

    def __init__(self, camera: Camera) -> None:
        self._camera = camera

    @property
    def name(self) -> str:
        """Its namespace as configured; "" for the node's own."""
        return self._camera.name

    @property
    def camera_info(self) -> CameraInfo | None:
        """The newest camera_info received, or None."""
        return self._camera.camera_info

    @property
    def received(self) -> int:
        """Images received."""
        return self._camera.received

    @property
    def processed(self) -> int:
        """Frames whose outputs were published."""
        return self._camera.processed

    @property
    def rejected(self) -> int:
        """Images rejected before inference (undecodable, too large)."""
        return self._camera.rejected

    @property
    def dropped(self) -> int:
        """Images replaced by a newer one before the worker took them."""
        return self._camera.frames.dropped

    @property
    def frame_waiting(self) -> bool:
        """Whether an image waits for the inference worker."""
        return self._camera.frames.waiting

    @property
    def publishers(self) -> Mapping[str, Any]:
        """Its output publishers by ``OUTPUT_TOPICS`` name (read-only mapping)."""
        return types.MappingProxyType(self._camera.publishers)


def subscribed(cameras: Sequence[Camera], topics: Iterable[str]) -> set[str]:
    """Which of ``topics`` someone subscribes to, on any camera (the node builds
    on-demand outputs only then, and skips skippable ones otherwise, as
    depth_image_proc's lazy outputs do)."""
    return {topic for topic in topics if any(cam.subscribed(topic) for cam in cameras)}
