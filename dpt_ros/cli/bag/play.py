"""``dpt-ros play``: publish a bag's camera topics at their recorded rate.

For machines without ``ros2 bag play`` (rosbag2 not installed): reads ROS 2 bags
(sqlite3, MCAP) and ROS 1 ``.bag`` files with ``rosbags`` and publishes the raw
messages with rclpy, paced by their bag time, with ``/clock`` (rosgraph_msgs/Clock)
carrying the bag time for nodes that run with ``use_sim_time:=true``.

By default the bag's ``sensor_msgs/Image``, ``sensor_msgs/CompressedImage`` and
``sensor_msgs/CameraInfo`` topics are published; ``--topics`` picks others (any type
whose Python message package is installed). Publishers are reliable, keep-last 10,
like ``ros2 bag play``. Ctrl-C stops playback and exits with status 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from dpt_ros.ros.bagio import (
    CAMERA_INFO_TYPE,
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    cdr_converter,
    message_class,
    open_bag,
    ros2_typestore,
)

DEFAULT_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE, CAMERA_INFO_TYPE)
QOS_DEPTH = 10


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_parser(subparsers: Any, name: str, help: str) -> argparse.ArgumentParser:
    """Adds ``dpt-ros play`` to ``subparsers``."""
    p = subparsers.add_parser(
        name,
        help=help,
        description="Publish the image and camera_info topics of a bag at their recorded "
        "rate, with /clock for use_sim_time, for machines without "
        "'ros2 bag play'. Reads ROS 2 bags (sqlite3, MCAP) and ROS 1 .bag files.",
        epilog="Stop with Ctrl-C (exit status 0). Start dpt_node with "
        "'--ros-args -p use_sim_time:=true' to follow the bag's clock.",
    )
    p.add_argument(
        "bag", metavar="BAG", help="a rosbag2 directory, a .db3 or .mcap file, or a ROS 1 .bag"
    )
    p.add_argument(
        "--topics",
        nargs="+",
        metavar="T",
        help="topics to publish (default: every Image, CompressedImage and CameraInfo topic)",
    )
    p.add_argument(
        "--rate",
        type=_positive_float,
        default=1.0,
        metavar="R",
        help="playback speed factor (default 1.0 = recorded rate)",
    )
    p.add_argument(
        "--clock",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="publish /clock with the bag time (default: on)",
    )
    p.add_argument(
        "--clock-rate",
        type=_positive_float,
        default=40.0,
        metavar="HZ",
        help="/clock messages per second between messages (default 40)",
    )
    p.add_argument("--loop", action="store_true", help="play again from the start at the end")
    p.add_argument(
        "--delay",
        type=_non_negative_float,
        default=0.5,
        metavar="S",
        help="seconds to wait after creating the publishers, so that "
        "subscribers connect before the first message (default 0.5)",
    )
    return p


def _select_topics(reader, wanted: list[str] | None) -> dict[str, str]:
    """``{topic: message type}`` to publish; ValueError names what is missing."""

    topics = {t: info.msgtype for t, info in sorted(reader.topics.items())}
    if wanted:
        chosen = {}
        for topic in wanted:
            name = topic if topic.startswith("/") else "/" + topic
            if name not in topics:
                listing = ", ".join(f"{t} ({ty})" for t, ty in topics.items()) or "none"
                raise ValueError(f"topic {name} is not in the bag; its topics: {listing}")
            chosen[name] = topics[name]
    else:
        chosen = {t: ty for t, ty in topics.items() if ty in DEFAULT_TYPES}
        if not chosen:
            listing = ", ".join(f"{t} ({ty})" for t, ty in topics.items()) or "none"
            raise ValueError(
                "the bag has no Image, CompressedImage or CameraInfo topic "
                f"(its topics: {listing}); pick topics with --topics"
            )
    for msgtype in set(chosen.values()):
        message_class(msgtype)  # raises if the package is missing
    return chosen


class _Player:
    """Publishes raw CDR messages at bag pace on its own rclpy context."""

    def __init__(self, topics: dict[str, str], rate: float, clock: bool, clock_rate: float) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node: Node | None = None
        try:
            self.node = Node("dpt_ros_player", context=self.context)
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=QOS_DEPTH,
                reliability=ReliabilityPolicy.RELIABLE,
            )
            self.publishers: dict[str, Any] = {
                t: self.node.create_publisher(message_class(ty), t, qos) for t, ty in topics.items()
            }
            self._clock_cls = Clock
            self.clock_pub = self.node.create_publisher(Clock, "/clock", qos) if clock else None
        except BaseException:
            self.close()
            raise
        self.rate = rate
        self.clock_period = 1.0 / clock_rate
        self.published = 0

    def publish_clock(self, bag_time_ns: int) -> None:
        if self.clock_pub is None:
            return
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(bag_time_ns), 10**9)
        self.clock_pub.publish(msg)

    def wait_until(self, target: float, bag_start: int, wall_start: float) -> None:
        """Sleeps until monotonic ``target``, publishing /clock on the way."""
        while True:
            now = time.monotonic()
            if now >= target:
                return
            time.sleep(min(target - now, self.clock_period))
            if self.clock_pub is not None and time.monotonic() < target:
                elapsed = (time.monotonic() - wall_start) * self.rate
                self.publish_clock(bag_start + int(elapsed * 1e9))

    def play(self, messages, convert) -> None:
        """One pass over ``messages`` ((connection, bag time ns, raw bytes) tuples)."""
        bag_start: int | None = None
        wall_start = 0.0
        for rconn, timestamp, raw in messages:
            if bag_start is None:
                bag_start, wall_start = timestamp, time.monotonic()
            target = wall_start + (timestamp - bag_start) / 1e9 / self.rate
            self.wait_until(target, bag_start, wall_start)
            self.publish_clock(timestamp)
            self.publishers[rconn.topic].publish(convert[rconn.msgtype](raw))
            self.published += 1

    def close(self) -> None:
        try:
            if self.node is not None:
                self.node.destroy_node()
        finally:
            rclpy.try_shutdown(context=self.context)


def run(args: argparse.Namespace) -> int:
    """``dpt-ros play``; see the module docstring."""

    reader = open_bag(Path(args.bag))
    player: _Player | None = None
    passes = 0
    start = time.monotonic()
    try:
        topics = _select_topics(reader, args.topics)
        connections = [c for c in reader.connections if c.topic in topics]
        store = ros2_typestore(reader)
        convert = {ty: cdr_converter(reader, store, ty) for ty in set(topics.values())}
        count = sum(c.msgcount for c in connections)
        duration = (reader.end_time - reader.start_time) / 1e9 if count else 0.0
        print(
            f"dpt-ros play: {args.bag}: {count} messages on {len(topics)} topic(s) over "
            f"{duration:.1f} s, rate x{args.rate:g}"
            f"{', /clock' if args.clock else ''}{', looping' if args.loop else ''}",
            file=sys.stderr,
        )
        for topic, msgtype in topics.items():
            print(f"  {topic} ({msgtype})", file=sys.stderr)
        player = _Player(topics, args.rate, args.clock, args.clock_rate)
        time.sleep(args.delay)
        start = time.monotonic()
        while True:
            player.play(reader.messages(connections=connections), convert)
            passes += 1
            if not args.loop or not count:
                break
        time.sleep(0.2)  # let reliable deliveries finish before the publishers go
    except KeyboardInterrupt:
        print("dpt-ros play: stopped (Ctrl-C)", file=sys.stderr)
    finally:
        published = player.published if player is not None else 0
        try:
            if player is not None:
                player.close()
        finally:
            reader.close()
    print(
        f"dpt-ros play: published {published} message(s) in "
        f"{time.monotonic() - start:.1f} s ({passes} complete pass(es))",
        file=sys.stderr,
    )
    return 0
