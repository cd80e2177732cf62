"""dpt_node as the source of a semantic costmap layer, over real rclpy: per-pixel
confidence, pixel alignment of labels and cloud, and LabelInfo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import rgb_msg, small_image, spin_until
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from semantic_cases import SEGMENTATION, TOPICS, Layer, semantic_camera_info
from sensor_msgs.msg import Image

from dpt_ros.models.transforms import label_confidence, resize_output
from dpt_ros.node.node import DptNode
from dpt_ros.pipeline import frames
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays
from dpt_ros.viz.ade20k import CLASS_NAMES

HAVE_VISION_MSGS = importlib.util.find_spec("vision_msgs") is not None


def expected_labels_and_confidence(predictor, rgb: np.ndarray, out_hw) -> tuple:
    """From the network's logits: labels and round(255 * softmax probability)."""
    with torch.inference_mode():
        x = predictor.preprocess(torch.from_numpy(rgb)[None])
        logits = resize_output(predictor.network(x), out_hw).double()
    probability = torch.softmax(logits, dim=1).amax(dim=1)[0].numpy()
    labels = (logits.argmax(dim=1)[0] + 1).numpy().astype(np.uint8)
    return labels, np.round(probability * 255).astype(np.uint8)


def run_one_frame(ros, output_size: str, weights, confidence: bool = True):
    """One frame through a node whose segmentation model has the fixtures' deterministic
    weights (random initial weights give near-uniform logits: a constant confidence)."""
    executor, add = ros
    overrides = SEGMENTATION + [
        Parameter("output_size", value=output_size),
        Parameter("segmentation.random_weights", value=False),
        Parameter("segmentation.weights", value=str(weights)),
    ]
    node = add(DptNode(parameter_overrides=overrides))
    layer = Layer(add, confidence)
    wanted = [t for t in TOPICS if t != "segmentation/confidence" or confidence]
    assert spin_until(
        executor,
        lambda: (
            layer.image_pub.get_subscription_count() > 0
            and all(node.cameras[0].publishers[t].get_subscription_count() > 0 for t in wanted)
        ),
        10,
    )
    rgb = small_image(48, 64)
    layer.info_pub.publish(semantic_camera_info(64, 48))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    layer.image_pub.publish(rgb_msg(rgb, 21))
    assert spin_until(executor, lambda: all(layer.got[t] for t in wanted))
    return node, layer, rgb


@pytest.mark.parametrize("output_size", ["input", "network"])
def test_confidence_and_pixel_aligned_cloud(ros, output_size, det_checkpoint):
    node, layer, rgb = run_one_frame(ros, output_size, det_checkpoint("dpt_hybrid_ade20k"))
    labels_msg = layer.got["segmentation/labels"][0]
    confidence_msg = layer.got["segmentation/confidence"][0]
    cloud = layer.got["points"][0]
    out_hw = (48, 64) if output_size == "input" else node.pipeline.output_hw((48, 64))
    # Same header, same size: pixel (u, v) of the mask is point (u, v) of the cloud.
    assert labels_msg.header == confidence_msg.header == cloud.header
    assert labels_msg.header.stamp.sec == 21
    assert (labels_msg.height, labels_msg.width) == out_hw
    assert (confidence_msg.height, confidence_msg.width, confidence_msg.encoding) == (
        *out_hw,
        "mono8",
    )
    assert (cloud.height, cloud.width) == out_hw
    labels = image_msg_to_array(labels_msg)
    fields = pointcloud2_to_arrays(cloud)
    np.testing.assert_array_equal(fields["label"], labels)
    assert all(np.isfinite(fields[axis]).all() for axis in "xyz")

    want_labels, want_confidence = expected_labels_and_confidence(
        node.pipeline.segmentation, rgb, out_hw
    )
    confidence = image_msg_to_array(confidence_msg)
    assert np.mean(labels == want_labels) >= 0.999
    # float32 on the device vs float64 here: rounding may differ by one step.
    assert np.abs(confidence.astype(int) - want_confidence).max() <= 1
    assert np.mean(confidence == want_confidence) >= 0.99
    assert confidence.min() >= round(255 / 150) and np.unique(confidence).size > 20


def test_confidence_is_computed_only_when_subscribed(ros, monkeypatch):
    executor, add = ros
    node = add(DptNode(parameter_overrides=SEGMENTATION))
    asked: list[bool] = []
    segment = node.pipeline.segmentation.infer_on_device

    def spy(images, *args, **kwargs):  # one segmentation pass: no confidence yet
        asked.append(False)
        return segment(images, *args, **kwargs)

    def spy_confidence(logits):  # the pass's label confidence was computed
        asked[-1] = True
        return label_confidence(logits)

    monkeypatch.setattr(node.pipeline.segmentation, "infer_on_device", spy)
    monkeypatch.setattr(frames, "label_confidence", spy_confidence)
    layer = Layer(add, confidence=False)
    pub = node.cameras[0].publishers["segmentation/labels"]
    assert spin_until(executor, lambda: pub.get_subscription_count() > 0, 10)
    layer.image_pub.publish(rgb_msg(small_image(48, 64), 1))
    assert spin_until(executor, lambda: layer.got["segmentation/labels"])
    confidence = node.cameras[0].publishers["segmentation/confidence"]
    assert asked == [False] and confidence.get_subscription_count() == 0

    got: list[Image] = []
    layer.node.create_subscription(Image, "segmentation/confidence", got.append, 10)
    conf_pub = node.cameras[0].publishers["segmentation/confidence"]
    assert spin_until(executor, lambda: conf_pub.get_subscription_count() > 0, 10)
    layer.image_pub.publish(rgb_msg(small_image(48, 64), 2))
    assert spin_until(executor, lambda: got)
    assert asked[-1] is True and got[0].header.stamp.sec == 2


def test_label_info_latched_where_vision_msgs_imports_else_off_with_the_reason(ros):
    """With vision_msgs (a ROS install): a late subscriber gets LabelInfo with every name.
    Without it (PyPI wheels, as here): no publisher, and /diagnostics says why."""
    executor, add = ros
    node = add(DptNode(parameter_overrides=SEGMENTATION))
    status = node.status()["label_info"]
    if not HAVE_VISION_MSGS:
        assert status.startswith("off: vision_msgs cannot be imported")
        assert "ros-$ROS_DISTRO-vision-msgs" in status
        assert "segmentation/label_info" not in node.cameras[0].publishers
        return
    from vision_msgs.msg import LabelInfo

    assert status == "published"
    late = add(Node("late_subscriber"))
    got: list = []
    qos = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    late.create_subscription(LabelInfo, "segmentation/label_info", got.append, qos)
    assert spin_until(executor, lambda: got, 10)
    names = [(c.class_id, c.class_name) for c in got[0].class_map]
    assert names == [(i + 1, n) for i, n in enumerate(CLASS_NAMES)]  # 255 = UNLABELED
    assert got[0].header.frame_id == ""  # no frame_id parameter: unknown until a frame
    layer = Layer(add)
    assert spin_until(executor, lambda: layer.image_pub.get_subscription_count() > 0, 10)
    layer.image_pub.publish(rgb_msg(small_image(48, 64), 3))
    assert spin_until(executor, lambda: len(got) == 2, 60)
    assert got[1].header.frame_id == "camera_optical_frame"  # the camera's, as the labels'
    assert [(c.class_id, c.class_name) for c in got[1].class_map] == names


def test_nav2_config_groups_every_class_once_and_uses_our_topics():
    import yaml

    from dpt_ros.pipeline.frames import OUTPUT_TOPICS

    path = Path(__file__).resolve().parents[2] / "config" / "nav2_semantic_costmap.yaml"
    params = yaml.safe_load(path.read_text())["local_costmap"]["local_costmap"]["ros__parameters"]
    camera = params["semantic_layer"]["camera"]
    groups = {name: camera[name]["classes"] for name in camera["class_types"]}
    listed = [name for names in groups.values() for name in names]
    # Each ADE20K class exactly once, in a class type: the plugin logs an error for
    # every LabelInfo name that no class type defines.
    assert sorted(listed) == sorted(CLASS_NAMES)
    assert camera["class_types"] == ["traversable", "obstacle", "overhead"]
    assert camera["overhead"]["max_cost"] == camera["overhead"]["base_cost"] == 0
    assert camera["tile_map_decay_time"] == 5.0  # the plugin's default
    assert {"floor", "road", "sidewalk", "grass", "path", "rug", "field"} <= set(
        groups["traversable"]
    )
    assert {"wall", "person", "car", "stairs", "water"} <= set(groups["obstacle"])
    ours = {f"/camera/{t}" for t in OUTPUT_TOPICS} | {"/camera/segmentation/label_info"}
    for key in ("segmentation_topic", "confidence_topic", "labels_topic", "pointcloud_topic"):
        assert camera[key] in ours, key
    assert params["voxel_layer"]["dpt_points"]["topic"] == "/camera/points"


def test_stride_and_slow_processing_warn_in_diagnostics(ros):
    """cloud.stride > 1 with segmentation (Nav2's semantic layer would drop every frame)
    and a processing time over processing_time_budget are WARN in /diagnostics."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    executor, add = ros
    overrides = SEGMENTATION + [
        Parameter("cloud.stride", value=2),
        Parameter("processing_time_budget", value=0.001),
        Parameter("diagnostics_period", value=0.2),
    ]
    node = add(DptNode(parameter_overrides=overrides))
    layer = Layer(add)
    diagnostics: list = []
    layer.node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    assert spin_until(executor, lambda: layer.image_pub.get_subscription_count() > 0, 10)
    layer.info_pub.publish(semantic_camera_info(64, 48))
    layer.image_pub.publish(rgb_msg(small_image(48, 64), 7))
    assert spin_until(executor, lambda: layer.got["points"] and layer.got["segmentation/labels"])
    cloud, labels = layer.got["points"][0], layer.got["segmentation/labels"][0]
    assert (cloud.width, cloud.height) == (labels.width // 2, labels.height // 2)

    def warned() -> str:
        for array in diagnostics:
            status = array.status[0]
            if status.level == DiagnosticStatus.WARN and "exceeds" in status.message:
                return status.message
        return ""

    assert spin_until(executor, warned, 10)
    message = warned()
    assert "cloud.stride is 2 with segmentation: Nav2's semantic_segmentation_layer" in message
    assert "exceeds processing_time_budget 0.001 s" in message

    node.set_parameters([Parameter("cloud.stride", value=1)])
    texts = [text for _, text in node.problems()]
    assert not any("cloud.stride" in t for t in texts)
    assert any("processing_time_budget" in t for t in texts)
