"""Our topics and the shipped YAML through an emulation of Nav2's semantic layer
(test/support/semantic_layer_emulation.py): LabelInfo defines every class, every frame at
cloud.stride 1 is buffered (at 2 none is), and the decay window of the example lets a
CPU-speed pipeline mark lethal cells (the old 2.0 s did not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from helpers import rgb_msg, small_image, spin_until
from rclpy.parameter import Parameter
from semantic_cases import SEGMENTATION, Layer, semantic_camera_info
from semantic_layer_emulation import Source, optical_to_base

from dpt_ros.node.node import DptNode
from dpt_ros.ros.label_info import class_map
from dpt_ros.viz.ade20k import CLASS_NAMES

YAML = Path(__file__).resolve().parents[2] / "config" / "nav2_semantic_costmap.yaml"


def shipped_source() -> Source:
    params = yaml.safe_load(YAML.read_text())["local_costmap"]["local_costmap"]
    layer = params["ros__parameters"]["semantic_layer"]
    return Source(layer[layer["observation_sources"]])


def test_label_info_defines_every_class_of_the_shipped_yaml():
    source = shipped_source()
    source.label_info(class_map())
    assert source.log == []  # no "CRITICAL ERROR: Class ... not defined"
    assert len(source.ids) == len(CLASS_NAMES) == 150
    # What we published before: (0, "unlabelled") and nine classes in no type.
    old = Source({**source.params, "class_types": ["traversable", "obstacle"]})
    old.label_info([(0, "unlabelled"), *class_map()])
    assert sum("CRITICAL ERROR" in line for line in old.log) == 10


def node_frames(ros, stride: int, count: int = 2):
    executor, add = ros
    # About 2 m everywhere (1 / (1e-6 x + 0.5)): inside the layer's 0.3..4.0 m.
    overrides = SEGMENTATION + [
        Parameter("cloud.stride", value=stride),
        Parameter("relative_depth.scale", value=1e-6),
        Parameter("relative_depth.shift", value=0.5),
    ]
    add(DptNode(parameter_overrides=overrides))
    layer = Layer(add)
    assert spin_until(executor, lambda: layer.image_pub.get_subscription_count() > 0, 10)
    layer.info_pub.publish(semantic_camera_info(64, 48))
    for i in range(count):
        layer.image_pub.publish(rgb_msg(small_image(48, 64), 30 + i))
        assert spin_until(
            executor, lambda i=i: all(len(layer.got[t]) > i for t in layer.got), 60
        ), layer.got
    return [tuple(layer.got[t][i] for t in layer.got) for i in range(count)]


def test_every_frame_of_the_node_is_buffered_at_stride_1(ros):
    source = shipped_source()
    frames = node_frames(ros, stride=1)
    labels, confidence, cloud = frames[0]
    assert source.frame(labels, confidence, cloud, optical_to_base()) is False
    assert source.log == ["WARN Class map is empty"]  # LabelInfo first, as latched
    source.log.clear()
    source.label_info(class_map())
    for labels, confidence, cloud in frames:
        assert labels.header == confidence.header == cloud.header  # exact time sync
        assert source.frame(labels, confidence, cloud, optical_to_base())
    assert source.log == [] and source.tiles  # observations in the tile map


def test_stride_2_frames_are_all_dropped(ros):
    source = shipped_source()
    source.label_info(class_map())
    for labels, confidence, cloud in node_frames(ros, stride=2, count=1):
        assert not source.frame(labels, confidence, cloud, optical_to_base())
    assert source.log == ["WARN Pointcloud and segmentation sizes are different"]


def test_decay_window_marks_lethal_at_the_budgets_frame_rate():
    """A wall (id 1) 2 m ahead, seen confidently in frames 1.5 s apart (the node's
    processing_time_budget), each counted 1.5 s after its stamp: lethal with the
    example's 5.0 s; with 2.0 s the tile never holds the 3 observations."""
    wall = CLASS_NAMES.index("wall") + 1
    xyz = np.zeros((4, 3))
    xyz[:, 2] = 2.0  # 2 m ahead on the optical axis
    labels, confidence = np.full(4, wall), np.full(4, 200)

    def lethal(decay: float) -> bool:
        source = shipped_source()
        source.decay = decay
        source.label_info(class_map())
        costs = {}
        for k in range(3):
            stamp = 10.0 + 1.5 * k
            source.buffer(labels, confidence, xyz, stamp, optical_to_base())
            costs = source.update_bounds(stamp + 1.5)
        assert len(costs) == 1
        return next(iter(costs.values())) == 254

    assert shipped_source().decay == 5.0
    assert lethal(5.0)
    assert not lethal(2.0)


def test_mark_confidence_is_strictly_greater():
    """Mean confidence equal to mark_confidence (128) stays at base_cost."""
    wall = CLASS_NAMES.index("wall") + 1
    xyz = np.array([[0.0, 0.0, 2.0]])
    for conf, want in ((128, 100), (129, 254)):
        source = shipped_source()
        source.label_info(class_map())
        for k in range(3):
            source.buffer(np.array([wall]), np.array([conf]), xyz, 10.0 + k, optical_to_base())
        assert list(source.update_bounds(12.5).values()) == [want]
