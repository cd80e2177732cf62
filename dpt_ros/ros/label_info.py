"""``vision_msgs/LabelInfo``: the names of the published label ids.

Semantic costmap layers (Nav2's semantic_segmentation_layer, for one) map class names to
costs and need this message once, reliable and transient local, before the first label
image. vision_msgs is part of every ROS distribution but on no package registry, so it
is optional here: the node publishes LabelInfo where ``vision_msgs`` imports, and the
bag tool writes it through rosbags' typestore from the message definitions below, which
need no ROS install.

The map: the ADE20K ids 1..150 with their SceneParsing names (``dpt_ros.viz.ade20k``),
exactly the values of ``segmentation/labels``, where every pixel has a class.
``vision_msgs/VisionClass`` reserves the largest id of the label type (255 for mono8)
for UNLABELED; no pixel has it and it is not listed, as the convention implies it, so a
consumer that must define every listed name (Nav2's semantic_segmentation_layer logs an
error for each one it does not know) needs only the 150 ADE20K names.

``header.frame_id`` is the camera's frame (the frame of the label images).
"""

from __future__ import annotations

from typing import Any

from dpt_ros.viz.ade20k import NUM_CLASSES, label_name

LABEL_INFO_TYPE = "vision_msgs/msg/LabelInfo"
VISION_CLASS_TYPE = "vision_msgs/msg/VisionClass"

#: The fields of the vision_msgs (ROS 2) definitions, for typestores without them.
MSG_DEFINITIONS: dict[str, str] = {
    VISION_CLASS_TYPE: "uint16 class_id\nstring class_name\n",
    LABEL_INFO_TYPE: "std_msgs/Header header\nVisionClass[] class_map\nfloat32 threshold\n",
}

#: ``threshold`` of the message: no confidence threshold is applied to the labels.
THRESHOLD = 0.0
#: The id vision_msgs reserves for UNLABELED in uint8 labels (never published here).
UNLABELED_ID = 255


def class_map() -> list[tuple[int, str]]:
    """(id, name) of every published label value: the ADE20K ids 1..150."""
    return [(i, label_name(i)) for i in range(1, NUM_CLASSES + 1)]


def import_vision_msgs() -> tuple[Any, Any] | str:
    """(LabelInfo, VisionClass) message classes, or why they cannot be had."""
    try:
        # optional dependency: vision_msgs
        from vision_msgs.msg import LabelInfo, VisionClass
    except ImportError as exc:
        return (
            f"vision_msgs cannot be imported ({exc}); install it with your ROS distribution "
            "(apt install ros-$ROS_DISTRO-vision-msgs)"
        )
    return LabelInfo, VisionClass


def label_info_message(label_info_cls: Any, vision_class_cls: Any, header: Any) -> Any:
    """The rclpy LabelInfo message.

    Args:
        label_info_cls, vision_class_cls: the classes from :func:`import_vision_msgs`.
        header: its header (stamp: when it is published; frame_id: the camera's).
    """
    msg = label_info_cls()
    msg.header = header
    msg.class_map = [vision_class_cls(class_id=i, class_name=name) for i, name in class_map()]
    msg.threshold = THRESHOLD
    return msg


def register_label_info(typestore: Any) -> None:
    """Adds VisionClass and LabelInfo to a rosbags typestore (once)."""
    # optional dependency: rosbags
    from rosbags.typesys import get_types_from_msg

    if LABEL_INFO_TYPE in typestore.fielddefs:
        return
    types: dict[str, Any] = {}
    for name, text in MSG_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)


def label_info_cdr(typestore: Any, stamp_ns: int, frame_id: str = "") -> bytes:
    """LabelInfo serialised (CDR) with a typestore that :func:`register_label_info` has
    seen, stamped ``stamp_ns`` nanoseconds."""
    types = typestore.types
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](
            sec=int(stamp_ns // 10**9), nanosec=int(stamp_ns % 10**9)
        ),
        frame_id=frame_id,
    )
    vision_class = types[VISION_CLASS_TYPE]
    msg = types[LABEL_INFO_TYPE](
        header=header,
        class_map=[vision_class(class_id=i, class_name=name) for i, name in class_map()],
        threshold=THRESHOLD,
    )
    return bytes(typestore.serialize_cdr(msg, LABEL_INFO_TYPE))
