"""Corrupt and lying messages in a bag given to ``dpt-ros bag``, in a real process:
cut-short serialized images, an Image that declares 100000x100000 pixels and carries
ten bytes, an unknown encoding, a step that contradicts the width, garbage where a
camera_info belongs. The contract (docs/failure_behaviour.md): each bad frame is skipped
and counted, every input message is copied unchanged, the good frames are processed, and
memory stays bounded (nothing is allocated from a size a message merely claims)."""

from __future__ import annotations

from pathlib import Path

from attack import DPT_ROS, attack
from helpers import NET, T0, bag_camera_info, image_msg, read_bag
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

#: bag on a tiny random network peaks near 1.3 GB (the CUDA build of torch alone 0.9 GB);
#: one 100000x100000 RGB frame allocated from its header would be 30 GB.
PEAK_MB = 1800


def _lying_images() -> list[tuple[str, bytes]]:
    """(what, serialized message) of each bad image."""
    good = serialize_message(image_msg(0))
    huge = image_msg(1)
    huge.width = huge.height = 100_000
    huge.step = 300_000
    huge.data = bytes(10)
    unknown = image_msg(2)
    unknown.encoding = "rgb8\x1b[31m-evil"
    wrong_step = image_msg(3)
    wrong_step.step = wrong_step.width * 3 - 1
    empty = Image(height=0, width=0, encoding="rgb8", step=0)
    return [
        ("cut short", good[: len(good) // 2]),
        ("huge", serialize_message(huge)),
        ("unknown encoding", serialize_message(unknown)),
        ("wrong step", serialize_message(wrong_step)),
        ("empty", serialize_message(empty)),
        ("garbage", b"\x00\x01\x00\x00" + b"\xff" * 64),
    ]


def _write(path: Path, bad: list[tuple[str, bytes]]) -> None:
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=8) as writer:
        info = writer.add_connection(
            "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        image = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=store)
        writer.write(info, T0 - 2, b"\x00\x01\x00\x00" + b"\xee" * 17)  # garbage camera_info
        writer.write(info, T0 - 1, serialize_message(bag_camera_info(50.0)))
        t = T0
        for i, (_, raw) in enumerate(bad):
            writer.write(image, t, serialize_message(image_msg(10 + i)))  # a good frame
            writer.write(image, t + 1000, raw)
            t += 100_000_000


def test_lying_and_corrupt_messages_are_skipped_and_counted(tmp_path):
    bad = _lying_images()
    _write(tmp_path / "in", bad)
    done = attack(
        [
            *DPT_ROS,
            "bag",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--image-topic",
            "/cam/image_raw",
            *NET,
        ],
        timeout=300,
    )
    assert done.rc == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr  # the forged encoding is escaped, not printed raw
    assert f"skipped {len(bad)} undecodable frame(s) of /cam/image_raw" in done.stderr
    assert "skipped 1 undecodable camera_info message(s) of /cam/camera_info" in done.stderr
    assert f"{len(bad)} frame(s) of /cam/image_raw processed, {len(bad)} skipped" in done.stdout
    inp, out = read_bag(tmp_path / "in"), read_bag(tmp_path / "out")
    for topic, messages in inp.items():
        assert out[topic] == messages, topic  # copied unchanged, the bad ones too
    assert len(out["/cam/depth/relative"]) == len(bad)
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
