"""Frames for ``dpt-ros reconstruct``: read from a folder of images or a bag, and cut
into windows (no torch, no rclpy).

Folder: its ``.png/.jpg/.jpeg/.bmp/.tif/.tiff`` files (not subfolders), sorted by name,
decoded by OpenCV into 8-bit RGB; the size is read from the header first and an image of
more than ``max_pixels`` pixels is never decoded (as ``dpt-ros predict``). Bag: the
``Image`` or ``CompressedImage`` messages of one topic, in bag order, decoded by
:mod:`dpt_ros.ros.image_codec` with the same limit, each with the latest good
camera_info of the camera when the bag has one. An unreadable image or message is
skipped and counted; the others go on.

Windows: ``window`` frames per window, consecutive windows sharing ``overlap``
(0 <= overlap < window); the last window holds the frames left and may be shorter. All
frames of one window must have the size of its first frame: both references batch a
window as one tensor (VGGT's loader pads differing sizes with white and warns, which
changes what the model sees); we refuse instead, naming the frame.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dpt_ros.ros.image_size import size_problem
from dpt_ros.text import shown

__all__ = [
    "Frame",
    "FrameSkips",
    "IMAGE_EXTENSIONS",
    "list_images",
    "output_stems",
    "read_image_file",
    "folder_frames",
    "bag_frames",
    "windows",
    "check_output_folder",
]

_LOG = logging.getLogger(__name__)

#: File name extensions (lower case) of the images taken from an input folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Frame:
    """One readable input frame.

    Attributes:
        index: its position among the readable frames, from 0.
        name: the file name, or ``<topic>@<stamp ns>`` for a bag message.
        stem: output file stem (unique in the run).
        rgb: (H, W, 3) uint8 RGB.
        stamp_ns: the message's header stamp (bags), else None.
        camera_info: (3, 3) intrinsics from the camera's calibration at the image's size,
            else None.
    """

    index: int
    name: str
    stem: str
    rgb: np.ndarray
    stamp_ns: int | None = None
    camera_info: np.ndarray | None = None


@dataclass
class FrameSkips:
    """What was skipped while reading: unreadable images (name: why), undecodable
    camera_info messages."""

    images: list[str] = field(default_factory=list)
    camera_info: int = 0

    def __bool__(self) -> bool:
        return bool(self.images or self.camera_info)


def list_images(folder: Path) -> list[Path]:
    """The images of ``folder`` sorted by name.

    Raises:
        FileNotFoundError: it does not exist.
        ValueError: it holds no image.
    """
    if not folder.exists():
        raise FileNotFoundError(f"input not found: {shown(folder)}")
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
        raise ValueError(
            f"no images in folder {shown(folder)} (looked for {', '.join(IMAGE_EXTENSIONS)} "
            "files, not in subfolders)"
        )
    return files


def output_stems(names: Sequence[str]) -> list[str]:
    """Output stems: the name without its extension, or the whole name with '_' for '.'
    where two names share a stem (``a.png``, ``a.jpg`` -> ``a_png``, ``a_jpg``)."""
    stems = [Path(n).stem for n in names]
    counts = Counter(stems)
    return [
        s if counts[s] == 1 else n.replace(".", "_").replace("/", "_") for s, n in zip(stems, names)
    ]


def _decode(data: np.ndarray, what: str, max_pixels: int) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) uint8 RGB; ValueError naming ``what``."""
    if data.size == 0:
        raise ValueError(f"{what} is empty")
    problem = size_problem(data, max_pixels)
    if problem:
        raise ValueError(f"{what}: {problem}")
    try:
        bgr = cv2.imdecode(np.ascontiguousarray(data), cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None or bgr.size == 0:
        raise ValueError(f"{what} is not an image OpenCV can decode")
    if bgr.dtype != np.uint8:
        bgr = (
            np.right_shift(bgr, 8).astype(np.uint8)
            if bgr.dtype == np.uint16
            else bgr.astype(np.uint8)
        )
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(bgr[:, :, 2::-1])


def read_image_file(path: Path, max_pixels: int) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (OpenCV ``IMREAD_COLOR``: grey and alpha
    images become RGB, 16-bit ones 8-bit); more than ``max_pixels`` pixels (0 = no
    limit), read from the header, is refused before decoding.

    Raises:
        OSError: the file cannot be read.
        ValueError: not decodable, or too large.
    """
    return _decode(np.fromfile(str(path), dtype=np.uint8), shown(path.name), max_pixels)


def folder_frames(
    folder: Path, max_pixels: int, skips: FrameSkips, camera_info: Any = None
) -> Iterator[Frame]:
    """The readable images of ``folder``, sorted by name; unreadable ones are skipped and
    named in ``skips``. ``camera_info``: a CameraInfo for every image (``--camera-info``),
    kept with the images of its size."""
    paths = list_images(folder)
    index = 0
    for path, stem in zip(paths, output_stems([p.name for p in paths])):
        try:
            rgb = read_image_file(path, max_pixels)
        except (ValueError, OSError) as exc:
            _LOG.warning("skipping %s: %s", shown(path.name), exc)
            skips.images.append(str(exc))
            continue
        k = _camera_matrix(camera_info, rgb.shape[:2]) if camera_info is not None else None
        yield Frame(index, path.name, stem, rgb, None, k)
        index += 1


def bag_frames(
    bag: Path,
    image_topic: str,
    max_pixels: int,
    skips: FrameSkips,
    camera_info: Any = None,
) -> Iterator[Frame]:
    """The readable images of ``image_topic`` in ``bag`` (ROS 1 or 2), in bag order,
    with their header stamps and the latest good camera_info of the camera (the image
    topic's sibling ``camera_info``) when the bag has one, else ``camera_info`` (a
    CameraInfo, ``--camera-info``).

    Raises:
        ValueError: not a bag, or the topic is not an image topic of it.
    """
    # Bags only: rosbags, the message types and the camera model are loaded here.
    from dpt_ros.ros.bagio import (
        CAMERA_INFO_TYPE,
        COMPRESSED_TYPE,
        absolute_topic,
        default_namespace,
        image_topics,
        open_bag,
    )
    from dpt_ros.ros.image_codec import (  # bags only: the message types
        ImageDecodeError,
        compressed_to_rgb,
        image_to_rgb,
    )

    reader = open_bag(bag)
    try:
        topic = absolute_topic(image_topic)
        images = image_topics(reader)
        if topic not in images:
            raise ValueError(
                f"image topic {topic} is not an image topic of {shown(bag)}; its image "
                f"topics: {', '.join(images) or 'none'}"
            )
        msgtype = images[topic]
        info_topic = default_namespace(topic, msgtype) + "/camera_info"
        connections = [
            c
            for c in reader.connections
            if (c.topic == topic and c.msgtype == msgtype)
            or (c.topic == info_topic and c.msgtype == CAMERA_INFO_TYPE)
        ]
        decode_info = _camera_info_decoder(reader)
        latest_info: Any = None
        index = 0
        for conn, timestamp, raw in reader.messages(connections=connections):
            if conn.topic == info_topic:
                try:
                    latest_info = decode_info(raw)
                except Exception as exc:  # rosbags raises several types for bad bytes
                    skips.camera_info += 1
                    _LOG.warning("skipping an undecodable camera_info at %d ns: %s", timestamp, exc)
                continue
            try:
                msg = reader.deserialize(raw, conn.msgtype)
                decode = compressed_to_rgb if msgtype == COMPRESSED_TYPE else image_to_rgb
                rgb = decode(msg, max_pixels)
                stamp = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
            except (ImageDecodeError, ValueError, TypeError, AttributeError) as exc:
                skips.images.append(f"message at {timestamp} ns: {exc}")
                _LOG.warning("skipping an undecodable image at %d ns: %s", timestamp, exc)
                continue
            except Exception as exc:  # rosbags' deserialisation of cut bytes
                skips.images.append(f"message at {timestamp} ns: {type(exc).__name__}: {exc}")
                continue
            info = latest_info if latest_info is not None else camera_info
            k = _camera_matrix(info, rgb.shape[:2]) if info is not None else None
            yield Frame(index, f"{topic}@{stamp}", f"{index:06d}", rgb, stamp, k)
            index += 1
    finally:
        reader.close()


def _camera_info_decoder(reader: Any) -> Any:
    """Decodes one raw CameraInfo of ``reader``'s bag into a message with ROS 2's field
    names. A ROS 1 bag's CameraInfo has ROS 1's (``K``, ``P``, ``D``, ``R``, upper case),
    which the camera model does not read: its calibration was ignored, and with it
    ``--camera-info``. It is converted to ROS 2's layout, as ``dpt-ros bag`` converts every
    ROS 1 message, and decoded as rclpy's message."""
    # bags only: rosbags
    from dpt_ros.ros.bagio import CAMERA_INFO_TYPE, cdr_converter, ros2_typestore

    if reader.is2:
        return lambda raw: reader.deserialize(raw, CAMERA_INFO_TYPE)
    # ROS 1 bags only: rclpy's message type and its decoding
    from sensor_msgs.msg import CameraInfo

    from dpt_ros.ros.messages import deserialized  # ROS 1 bags only: rclpy

    to_cdr = cdr_converter(reader, ros2_typestore(reader), CAMERA_INFO_TYPE)
    return lambda raw: deserialized(to_cdr(raw), CameraInfo)


def bag_image_count(bag: Path, image_topic: str) -> int:
    """How many messages ``image_topic`` has in ``bag`` (its index says; nothing is
    decoded); 0 when the topic is not in it (:func:`bag_frames` says why)."""
    from dpt_ros.ros.bagio import absolute_topic, open_bag  # bags only: rosbags

    reader = open_bag(bag)
    try:
        topic = absolute_topic(image_topic)
        return sum(c.msgcount for c in reader.connections if c.topic == topic)
    finally:
        reader.close()


def window_count(frames: int, size: int, overlap: int) -> int:
    """How many windows :func:`windows` makes of ``frames`` frames (all readable)."""
    if frames <= 0:
        return 0
    return 1 + -(-max(0, frames - size) // (size - overlap))


def _camera_matrix(info: Any, image_hw: Sequence[int]) -> np.ndarray | None:
    """(3, 3) intrinsics of an (H, W) image from a camera_info, or None when it does not
    fit the image (another size, uncalibrated)."""
    # with a calibration only: the message types load with it
    from dpt_ros.ros.camera import Intrinsics, check_camera_info_matches

    try:
        check_camera_info_matches(info, int(image_hw[1]), int(image_hw[0]))
        c = Intrinsics.from_camera_info(info)
    except (ValueError, AttributeError, TypeError):
        return None
    return np.array([[c.fx, 0.0, c.cx], [0.0, c.fy, c.cy], [0.0, 0.0, 1.0]])


def windows(frames: Iterator[Frame], size: int, overlap: int) -> Iterator[list[Frame]]:
    """Consecutive windows of ``size`` frames sharing ``overlap`` frames; the last one
    holds what is left (shorter, said once in the log). Frames are read as the windows
    need them.

    Raises:
        ValueError: ``overlap`` not in [0, size); a frame of another size than its
            window's first frame.
    """
    if size < 1:
        raise ValueError(f"--window must be at least 1, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(
            f"--overlap {overlap} must be at least 0 and smaller than --window {size} "
            "(consecutive windows share that many frames)"
        )
    buffer: list[Frame] = []
    new = 0  # frames of the buffer not yet in any window
    emitted = 0
    for frame in frames:
        if buffer and frame.rgb.shape != buffer[0].rgb.shape:
            first = buffer[0]
            raise ValueError(
                f"{shown(frame.name)} is {_size(frame)} but {shown(first.name)}, the first "
                f"frame of its window, is {_size(first)}: the frames of one window must have "
                "one size (resize them, or start a new reconstruction at the change)"
            )
        buffer.append(frame)
        new += 1
        if len(buffer) == size:
            yield list(buffer)
            emitted += 1
            buffer = buffer[size - overlap :] if overlap else []
            new = 0
    if new:
        if emitted == 0:
            _LOG.warning(
                "%d frame(s), fewer than --window %d: one window of %d",
                len(buffer),
                size,
                len(buffer),
            )
        else:
            _LOG.warning(
                "the last window holds %d frame(s), fewer than --window %d", len(buffer), size
            )
        yield list(buffer)


def _size(frame: Frame) -> str:
    return f"{frame.rgb.shape[1]}x{frame.rgb.shape[0]}"


def check_output_folder(output: Path, inputs: Sequence[Path]) -> None:
    """Refuses an output folder that is an input or holds one (its files would mix
    with the input's, and a second run would read them), or that lies inside a
    rosbag2 folder.

    Raises:
        ValueError: naming the input.
    """
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"output exists and is not a folder: {shown(output)}")
    out = output.expanduser().resolve()
    for path in inputs:
        inp = path.expanduser().resolve()
        if inp == out or inp.is_relative_to(out):
            raise ValueError(
                f"output folder {shown(output)} holds the input {shown(path)}; choose "
                "an output folder outside the inputs"
            )
        bag_dir = inp if inp.is_dir() else inp.parent
        if (bag_dir / "metadata.yaml").is_file() and out.is_relative_to(bag_dir):
            raise ValueError(
                f"output folder {shown(output)} is inside the bag folder {shown(bag_dir)}; "
                "choose a folder outside it"
            )
