"""Messages, the pipeline's last stage: one frame's arrays (on the host, at the published
size) become its output messages, every one carrying the camera image's header, with
the colour maps and the point clouds. Which topics a configuration can publish is said
here too (``OUTPUT_TOPICS``)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Hashable

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from dpt_ros.models import Predictor
from dpt_ros.pipeline.intake import Frame
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.confidence import confidence_to_mono8, confident_points
from dpt_ros.ros.image_codec import depth_to_image_msg, labels_to_image_msg, rgb_to_image_msg
from dpt_ros.ros.pointcloud import make_pointcloud2
from dpt_ros.viz.ade20k import PALETTE
from dpt_ros.viz.colormap import StableRange, colorize, overlay_labels

#: Output topic name -> message type, relative to the camera namespace.
OUTPUT_TOPICS: dict[str, type] = {
    "depth/image": Image,
    "depth/relative": Image,
    "depth/camera_info": CameraInfo,
    "depth/colored": Image,
    "depth/confidence": Image,
    "depth/confidence_mono8": Image,
    "depth/sky": Image,
    "segmentation/labels": Image,
    "segmentation/colored": Image,
    "segmentation/confidence": Image,
    "points": PointCloud2,
    "points_confident": PointCloud2,
}

#: Outputs that the node skips while nobody subscribes to them (``skip``): building
#: them costs time on every frame and nothing else needs them.
SKIPPABLE_TOPICS: frozenset[str] = frozenset(
    {"points", "depth/colored", "segmentation/colored", "depth/confidence_mono8"}
)

#: Outputs built only when asked for (``on_demand``): the node asks when someone
#: subscribes, since they cost time on every frame. ``points_confident`` is ``points``
#: without the points less confident than ``cloud.confident_threshold`` (NaN there):
#: a marking source for a costmap layer that reads no confidence field.
ON_DEMAND_TOPICS: frozenset[str] = frozenset({"segmentation/confidence", "points_confident"})


def available_topics(
    depth: Predictor | None, segmentation: Predictor | None, o: PipelineOptions
) -> list[str]:
    """The output topics that these models can publish under the options ``o``."""
    out: list[str] = []
    if depth is not None:
        metric = (
            depth.is_metric or o.relative_depth_scale > 0 or o.relative_depth_alignment != "fixed"
        )
        if metric:
            out.append("depth/image")
        if not depth.is_metric:
            out.append("depth/relative")
        out += ["depth/colored", "depth/camera_info"]
        for name in depth.spec.maps:
            out.append(f"depth/{name}")
            if name == "confidence":
                out.append("depth/confidence_mono8")
        if metric and o.cloud_enabled:
            out += ["points", "points_confident"]
    if segmentation is not None:
        out += ["segmentation/labels", "segmentation/colored", "segmentation/confidence"]
        if depth is None:
            out.append("depth/camera_info")
    return out


def batch_options(
    o: PipelineOptions, on_demand: Collection[str], skip: Collection[str]
) -> PipelineOptions:
    """The options a batch runs under: ``o``, with the cloud off where none of its
    messages is built (``points`` skipped and ``points_confident`` not asked for)."""
    if "points" in skip and "points_confident" not in on_demand:
        return dataclasses.replace(o, cloud_enabled=False)
    return o


class ColourRanges:
    """The colour range of ``depth/colored`` for each stream, smoothed over its
    frames."""

    def __init__(self) -> None:
        self._ranges: dict[Hashable, StableRange] = {}

    def clear(self) -> None:
        """Forgets every stream's range (a new recording)."""
        self._ranges.clear()

    def colored_depth(
        self, metric: np.ndarray | None, inverse: np.ndarray | None, stream: Hashable
    ) -> np.ndarray:
        """(H, W, 3) uint8 colour map of the frame's depth, near = warm, in the stream's
        smoothed range (metric depth if there is any, else the relative output)."""
        colour_range = self._ranges.get(stream)
        if colour_range is None:
            colour_range = self._ranges[stream] = StableRange(alpha=0.1)
        if metric is not None:
            # Depth in metres: near = warm, so the range runs far -> near.
            lo, hi = colour_range.update(metric)
            return colorize(metric, hi, lo)
        assert inverse is not None, "called with some depth"
        # Inverse depth: larger = nearer = warm.
        lo, hi = colour_range.update(inverse)
        return colorize(inverse, lo, hi)


def build_messages(
    frame: Frame,
    arrays: dict[str, np.ndarray],
    o: PipelineOptions,
    colours: ColourRanges,
    skip: Collection[str] = (),
    on_demand: Collection[str] = (),
) -> tuple[dict[str, object], dict[str, float]]:
    """Every message of one frame from its arrays, under the options the batch's
    inference used, except the topics in ``skip``, and the on-demand topics in
    ``on_demand``.

    Returns:
        (messages by ``OUTPUT_TOPICS`` name, timings in ms: ``messages`` and
        ``pointcloud``).
    """
    msgs: dict[str, object] = {}
    t0 = time.perf_counter()
    small_rgb = _image_messages(msgs, frame, arrays, colours, skip)
    t1 = time.perf_counter()
    xyz = arrays.get("xyz")
    if xyz is not None:
        if o.cloud_color and small_rgb is None:
            small_rgb = _resize_rgb(frame.rgb, *frame.sizes.output_hw)
        _cloud_messages(msgs, frame, arrays, xyz, small_rgb, o, skip, on_demand)
    t2 = time.perf_counter()
    return msgs, {"messages": (t1 - t0) * 1e3, "pointcloud": (t2 - t1) * 1e3}


def _image_messages(
    msgs: dict[str, object],
    frame: Frame,
    arrays: dict[str, np.ndarray],
    colours: ColourRanges,
    skip: Collection[str],
) -> np.ndarray | None:
    """The frame's images and camera_info into ``msgs``; returns its RGB at the
    published size where the segmentation overlay needed it, else None."""
    header = frame.header
    inverse, metric = arrays.get("inverse"), arrays.get("metric")
    labels = arrays.get("labels")
    if metric is not None:
        msgs["depth/image"] = depth_to_image_msg(metric, header)
    if inverse is not None:
        msgs["depth/relative"] = depth_to_image_msg(inverse, header)
    if (metric is not None or inverse is not None) and "depth/colored" not in skip:
        colored = colours.colored_depth(metric, inverse, frame.stream)
        msgs["depth/colored"] = rgb_to_image_msg(colored, header)
    small_rgb = None
    if labels is not None:
        msgs["segmentation/labels"] = labels_to_image_msg(labels, header)
        if "segmentation/colored" not in skip:
            small_rgb = _resize_rgb(frame.rgb, *frame.sizes.output_hw)
            overlay = overlay_labels(small_rgb, labels, PALETTE)
            msgs["segmentation/colored"] = rgb_to_image_msg(overlay, header)
    if arrays.get("confidence") is not None:
        # mono8 like the labels: the probability of each pixel's label, 0..255.
        msgs["segmentation/confidence"] = labels_to_image_msg(arrays["confidence"], header)
    depth_confidence = arrays.get("depth_confidence")
    if depth_confidence is not None:
        msgs["depth/confidence"] = depth_to_image_msg(depth_confidence, header)
        if "depth/confidence_mono8" not in skip:  # bounded, for mono8 readers
            mono8 = confidence_to_mono8(depth_confidence)
            msgs["depth/confidence_mono8"] = labels_to_image_msg(mono8, header)
    if arrays.get("sky") is not None:
        msgs["depth/sky"] = labels_to_image_msg(arrays["sky"], header)
    if frame.camera is not None:
        msgs["depth/camera_info"] = frame.camera.camera_info
    return small_rgb


def _cloud_messages(
    msgs: dict[str, object],
    frame: Frame,
    arrays: dict[str, np.ndarray],
    xyz: np.ndarray,
    small_rgb: np.ndarray | None,
    o: PipelineOptions,
    skip: Collection[str],
    on_demand: Collection[str],
) -> None:
    """``points`` (unless skipped) and ``points_confident`` (on demand) into ``msgs``,
    from the frame's points ``xyz`` and, every stride-th pixel, its colours (from
    ``small_rgb``, where ``cloud_color``), labels and depth confidence."""
    s = frame.sizes.cloud_stride
    labels, depth_confidence = arrays.get("labels"), arrays.get("depth_confidence")
    colors = None
    if o.cloud_color:
        assert small_rgb is not None, "called with the image at the published size"
        colors = np.ascontiguousarray(small_rgb[::s, ::s])
    cloud_labels = labels[::s, ::s] if (labels is not None and o.cloud_labels) else None
    confidence = None if depth_confidence is None else depth_confidence[::s, ::s]
    header = frame.header
    if "points" not in skip:
        msgs["points"] = make_pointcloud2(header, xyz, colors, cloud_labels, confidence=confidence)
    if "points_confident" in on_demand:
        confident = confident_points(xyz, confidence, o.cloud_confident_threshold)
        if confident is xyz and "points" in msgs:  # nothing to leave out: one message
            msgs["points_confident"] = msgs["points"]
        else:
            msgs["points_confident"] = make_pointcloud2(
                header, confident, colors, cloud_labels, confidence=confidence
            )


def _resize_rgb(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB at (h, w) (area interpolation), or as is at that size."""
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
