"""camera_info tracking, the image_transport sibling rule and the recent-window
counters behind the node's warnings and /diagnostics (pure, no rclpy.init)."""

from __future__ import annotations

import array

from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.node.health import OK, WARN, CameraInfoTracker, RecentEvents, sibling_topic


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def info(sec: int, distorted: bool = False) -> CameraInfo:
    msg = CameraInfo(width=64, height=48)
    msg.header = Header(stamp=Time(sec=sec), frame_id="cam")
    msg.d = array.array("d", [-0.3, 0.09, 0.0, 0.0, 0.0] if distorted else [0.0] * 5)
    return msg


def test_sibling_topic_is_image_transports_rule() -> None:
    assert sibling_topic("/camera/color/image_rect") == "/camera/color/camera_info"
    assert sibling_topic("/image") == "/camera_info"


def test_recent_events_forget_what_is_older_than_the_window() -> None:
    """One corrupt frame at start is not a warning forever."""
    clock = Clock()
    events = RecentEvents(window=10.0, clock=clock)
    events.add("rejected")
    clock.now += 5.0
    events.add("rejected")
    assert events.count("rejected") == 2 and events.count("failed") == 0
    clock.now += 6.0
    assert events.count("rejected") == 1
    clock.now += 5.0
    assert events.count("rejected") == 0


def test_camera_info_pairs_by_stamp_else_latest_and_says_which() -> None:
    tracker = CameraInfoTracker("/cam/camera_info", clock=Clock())
    assert tracker.pair(Header(stamp=Time(sec=1))) is None
    for sec in (1, 2, 3):
        tracker.add(info(sec))
    assert tracker.pair(Header(stamp=Time(sec=2))).header.stamp.sec == 2
    assert tracker.pairing == "by stamp"
    assert tracker.status() == (OK, "ok, paired by stamp")
    got = tracker.pair(Header(stamp=Time(sec=3, nanosec=20_000_000)))
    assert got.header.stamp.sec == 3
    assert tracker.pairing == "latest (image stamp +20.0 ms from it)"


def test_camera_info_missing_stale_and_rejected_are_warnings() -> None:
    clock = Clock()
    tracker = CameraInfoTracker("/cam/camera_info", stale_after=5.0, clock=clock)
    level, text = tracker.status()
    assert level == WARN and "no camera_info on /cam/camera_info" in text
    tracker.add(info(1))
    assert tracker.status()[0] == OK
    clock.now += 6.0
    level, text = tracker.status()
    assert level == WARN and "stale: last one 6.0 s ago" in text
    tracker.add(info(2))
    tracker.rejection = "camera_info is 640x480 but the image is 64x48"
    assert tracker.status() == (WARN, "camera_info rejected: " + tracker.rejection)


def test_distortion_is_warned_about_once() -> None:
    tracker = CameraInfoTracker("/cam/camera_info", clock=Clock())
    assert tracker.add(info(1)) is None
    warning = tracker.add(info(2, distorted=True))
    assert warning is not None and "rectified" in warning and "-0.3" in warning
    assert tracker.add(info(3, distorted=True)) is None
