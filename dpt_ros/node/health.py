"""What the node tells about its inputs: camera_info per camera (missing, stale,
rejected, how it was paired with the image) and events over a recent window, for the
warnings and /diagnostics. No rclpy Node here: plain messages and clocks.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.pipeline.status import CameraInfoRefusal
from dpt_ros.ros.camera import is_distorted
from dpt_ros.ros.messages import stamp_ns

#: Seconds without a camera_info (while images come) after which it is stale.
CAMERA_INFO_STALE_S = 5.0
#: Seconds without an image after which the input is stale.
INPUT_STALE_S = 5.0
#: Seconds of history that WARN and ERROR are judged on.
RECENT_WINDOW_S = 10.0
#: camera_infos kept for pairing with images by stamp.
_HISTORY = 32

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def sibling_topic(image_topic: str, name: str = "camera_info") -> str:
    """image_transport's rule: the camera_info of ``/ns/image_rect`` is ``/ns/camera_info``.

    Args:
        image_topic: the resolved (absolute) image topic.
        name: the sibling's base name.
    """
    namespace = image_topic.rsplit("/", 1)[0]
    return f"{namespace}/{name}"


class RecentEvents:
    """Counts of events (rejected frames, failures) in the last ``window`` seconds.

    Args:
        window: seconds of history.
        clock: monotonic seconds (tests give their own).
    """

    def __init__(
        self, window: float = RECENT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self._clock = clock
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        """Records one event of ``kind`` now."""
        with self._lock:
            self._times.setdefault(kind, deque()).append(self._clock())

    def count(self, kind: str) -> int:
        """Events of ``kind`` in the window."""
        with self._lock:
            times = self._times.get(kind)
            if not times:
                return 0
            start = self._clock() - self.window
            while times and times[0] < start:
                times.popleft()
            return len(times)


class CameraInfoTracker:
    """The camera_info of one camera: the recent messages, paired with images by stamp
    where the stamps match, else the latest; and what to say about it.

    Thread-safe: ``add`` runs in the executor, ``pair`` on the inference worker.

    Args:
        topic: the camera_info topic (for messages).
        stale_after: seconds without a camera_info, while images come, that make it
            stale.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        topic: str,
        stale_after: float = CAMERA_INFO_STALE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: deque[CameraInfo] = deque(maxlen=_HISTORY)
        self._received_at: float | None = None
        self._warned_distortion = False
        self.pairing = "none yet"
        #: Why the latest frame's camera_info was refused by the pipeline, or None.
        self.rejection: CameraInfoRefusal | None = None

    @property
    def latest(self) -> CameraInfo | None:
        """The newest camera_info received, or None."""
        with self._lock:
            return self._recent[-1] if self._recent else None

    def add(self, info: CameraInfo) -> str | None:
        """Keeps a received camera_info.

        Returns:
            A warning to log, the first time the camera_info has distortion (its image
            is raw, not rectified); else None.
        """
        with self._lock:
            self._recent.append(info)
            self._received_at = self._clock()
            if self._warned_distortion or not is_distorted(info):
                return None
            self._warned_distortion = True
        return (
            f"{self.topic} has distortion coefficients D = {list(info.d)}: the image "
            "must be the rectified one (image_proc's image_rect, or rectify: true), since "
            "pixels are back-projected with the rectified camera P"
        )

    def pair(self, header: Header) -> CameraInfo | None:
        """The camera_info for an image: the one with the image's stamp if received,
        else the latest (``pairing`` says which)."""
        with self._lock:
            if not self._recent:
                self.pairing = "none"
                return None
            want = stamp_ns(header)
            for info in reversed(self._recent):
                if stamp_ns(info.header) == want:
                    self.pairing = "by stamp"
                    return info
            latest = self._recent[-1]
            offset_ms = (want - stamp_ns(latest.header)) / 1e6
            self.pairing = f"latest (image stamp {offset_ms:+.1f} ms from it)"
            return latest

    def problem(self) -> str:
        """Why the camera_info cannot be used now ("" = it can): missing, stale or
        rejected."""
        with self._lock:
            received_at = self._received_at
        if received_at is None:
            return (
                f"no camera_info on {self.topic}: no 'points' or 'depth/camera_info' "
                "(remap camera_info to the image's sibling topic)"
            )
        if self.rejection is not None:
            return str(self.rejection)
        age = self._clock() - received_at
        if age > self.stale_after:
            return f"camera_info on {self.topic} is stale: last one {age:.1f} s ago"
        return ""

    def status(self) -> tuple[int, str]:
        """(diagnostic level, text) for /diagnostics."""
        problem = self.problem()
        if problem:
            return WARN, problem
        return OK, f"ok, paired {self.pairing}"
