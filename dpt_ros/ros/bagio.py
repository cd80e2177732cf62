"""Reading and writing rosbags with the ``rosbags`` package (no ROS install needed):
ROS 1 and ROS 2 (sqlite3, MCAP) input, CDR conversion, message types. Shared by
``dpt-ros bag``, ``play`` and ``demo``."""

from __future__ import annotations

import importlib
import io
import logging
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Final

_LOG = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
STORAGES = ("sqlite3", "mcap")

#: rosbag2 metadata version written (8: readable by Iron and newer, and by Humble's
#: rosbag2, which ignores the newer fields).
BAG_VERSION: Final = 8


def _typestores():
    # optional dependency: rosbags
    from rosbags.typesys import Stores, get_typestore

    return Stores, get_typestore


def output_typestore():
    """The rosbags typestore used for dpt_ros' own output types (ROS 2 Humble)."""
    Stores, get_typestore = _typestores()
    return get_typestore(Stores.ROS2_HUMBLE)


def open_bag(path: Path):
    """An open ``rosbags.highlevel.AnyReader`` of a ROS 1 or ROS 2 bag.

    Raises:
        OSError: the path does not exist.
        ValueError: not a readable bag.
    """
    # optional dependency: rosbags
    from rosbags.highlevel import AnyReader, AnyReaderError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input bag {str(path)!r} does not exist")
    try:
        reader = AnyReader([path], default_typestore=output_typestore())
        reader.open()
    except (AnyReaderError, FileNotFoundError) as exc:
        raise _unreadable(path, str(exc), exc) from None
    except Exception as exc:  # rosbags raises several types for foreign files
        raise _unreadable(path, f"{type(exc).__name__}: {exc}", exc) from None
    return reader


def _unreadable(path: Path, text: str, exc: Exception) -> ValueError:
    hint = _recovery_hint(path, exc)
    return ValueError(
        f"cannot read {str(path)!r} as a bag: " + (text.rstrip(".") + hint if hint else text)
    )


def _recovery_hint(path: Path, exc: Exception) -> str:
    """What to do about a cut-short MCAP file (a recorder killed before it closed the
    file): its summary and end magic are missing, its messages usually are not."""
    mcaps = [path] if path.suffix == ".mcap" else sorted(path.glob("*.mcap"))
    if not mcaps or "magic" not in str(exc).lower():
        return ""
    name = mcaps[0].name
    return (
        f"; the MCAP file looks cut short (a recording that was not closed): rebuild it "
        f"with the mcap CLI, 'mcap recover {name} -o recovered.mcap', and give the "
        "recovered file as input"
    )


def input_storage(path: Path) -> str:
    """``mcap`` or ``sqlite3``: the storage of a ROS 2 bag (sqlite3 for ROS 1 bags)."""
    path = Path(path)
    if path.is_dir():
        return "mcap" if any(path.glob("*.mcap")) else "sqlite3"
    return "mcap" if path.suffix == ".mcap" else "sqlite3"


def ros2_typestore(reader):
    """A typestore holding the reader's types with ROS 2 layouts (for ROS 1 bags:
    ``std_msgs/msg/Header`` without ``seq``)."""
    if reader.is2:
        return reader.typestore
    Stores, get_typestore = _typestores()
    store = get_typestore(Stores.EMPTY)
    header = get_typestore(Stores.ROS2_HUMBLE).fielddefs["std_msgs/msg/Header"]
    store.register({**reader.typestore.fielddefs, "std_msgs/msg/Header": header})
    return store


def cdr_converter(reader, dst_store, msgtype: str) -> Callable[[Any], bytes]:
    """A function turning one raw message of ``msgtype`` from ``reader`` into CDR bytes
    (the identity for ROS 2 bags)."""
    if reader.is2:
        return bytes
    # optional dependency: rosbags
    from rosbags.convert.converter import generate_message_converter

    with redirect_stdout(io.StringIO()) as text:  # it reports migrations on stdout
        convert = generate_message_converter(
            reader.typestore, dst_store, msgtype, msgtype, {}, src_is2=False, dst_is2=True
        )
    if text.getvalue().strip():
        _LOG.info(text.getvalue().strip())
    return lambda raw: bytes(convert(raw))


def image_topics(reader) -> dict[str, str]:
    """``{topic: message type}`` of the bag's Image and CompressedImage topics."""
    return {
        t: info.msgtype for t, info in sorted(reader.topics.items()) if info.msgtype in IMAGE_TYPES
    }


def message_class(msgtype: str) -> type:
    """The rclpy message class of a rosbags type name such as ``sensor_msgs/msg/Image``.

    Raises:
        ValueError: the type's Python package is not installed.
    """

    parts = msgtype.split("/")
    if len(parts) != 3:
        raise ValueError(f"unexpected message type name {msgtype!r}")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError):
        raise ValueError(
            f"message type {msgtype} is not available in this Python "
            f"environment (package {parts[0]} not installed)"
        ) from None


def absolute_topic(topic: str) -> str:
    """``topic`` with a leading slash (bag topics are absolute)."""
    topic = topic.strip()
    return topic if topic.startswith("/") else "/" + topic


def default_namespace(image_topic: str, msgtype: str) -> str:
    """The namespace of an image topic: ``/cam/image_raw`` -> ``/cam``,
    ``/cam/image_raw/compressed`` -> ``/cam``, ``/image`` -> ``""`` (root)."""
    topic = absolute_topic(image_topic).rstrip("/")
    if msgtype == COMPRESSED_TYPE and topic.endswith("/compressed"):
        topic = topic[: -len("/compressed")]
    return topic.rsplit("/", 1)[0]
