"""One camera frame in, every output message out: the processing shared by the node
and the offline bag tool. No rclpy Node here; messages are plain sensor_msgs.

Output topics (relative to the camera's namespace), see ``OUTPUT_TOPICS``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from .ade20k import PALETTE
from .colormap import StableRange, colorize, overlay_labels
from .models import Predictor
from .models.transforms import network_input_size
from .ros.camera import Intrinsics, check_camera_info_matches, scale_camera_info
from .ros.image_codec import (copy_header, depth_to_image_msg, labels_to_image_msg,
                              rgb_to_image_msg)
from .ros.pointcloud import backproject, make_pointcloud2

#: Output topic name -> message type, relative to the camera namespace.
OUTPUT_TOPICS: Dict[str, type] = {
    "depth/image": Image,
    "depth/relative": Image,
    "depth/camera_info": CameraInfo,
    "depth/colored": Image,
    "segmentation/labels": Image,
    "segmentation/colored": Image,
    "points": PointCloud2,
}


@dataclass(frozen=True)
class PipelineOptions:
    """Per-frame behaviour (everything that can change at run time).

    Attributes:
        output_size: ``input`` (the camera image's size) or ``network`` (the network
            input size; cheaper to publish and back-project).
        relative_scale, relative_shift: metric depth from a relative model as
            ``1 / (scale * x + shift)`` metres; scale 0 = not calibrated, no metric depth.
        cloud_enabled: publish ``points`` (needs metric depth and camera_info).
        cloud_stride: keep every n-th pixel in both directions.
        cloud_max_depth: drop points farther than this (metres); 0 = no limit.
        cloud_color: add the image colour (``rgb`` field).
        cloud_labels: add the segmentation id (``label`` field) when segmentation runs.
    """

    output_size: str = "input"
    relative_scale: float = 0.0
    relative_shift: float = 0.0
    cloud_enabled: bool = True
    cloud_stride: int = 1
    cloud_max_depth: float = 0.0
    cloud_color: bool = True
    cloud_labels: bool = True


@dataclass
class FrameOutput:
    """Messages for one frame, keyed by ``OUTPUT_TOPICS`` names, plus timings in ms."""

    messages: Dict[str, object] = field(default_factory=dict)
    timings_ms: Dict[str, float] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)


def relative_to_metric(inverse_depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """Metres from calibrated relative inverse depth: ``1 / (scale * x + shift)``.

    Args:
        inverse_depth: (H, W) float32 relative inverse depth.
        scale, shift: the user's calibration (scale > 0).

    Returns:
        (H, W) float32 metres; NaN where ``scale * x + shift <= 0``.
    """
    denom = scale * inverse_depth.astype(np.float32) + np.float32(shift)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(1.0) / denom
    depth[~(denom > 0)] = np.nan
    return depth


class FramePipeline:
    """Runs the depth and/or segmentation model on one frame and builds the messages.

    Both models see the same image, and every message carries the input header.

    Args:
        depth: depth predictor or None.
        segmentation: segmentation predictor or None.
        options: initial ``PipelineOptions``.
    """

    def __init__(self, depth: Optional[Predictor], segmentation: Optional[Predictor],
                 options: PipelineOptions = PipelineOptions()) -> None:
        if depth is None and segmentation is None:
            raise ValueError("at least one of depth and segmentation must be enabled")
        if depth is not None and not depth.is_depth:
            raise ValueError(f"{depth.spec.name} is not a depth model")
        if segmentation is not None and segmentation.is_depth:
            raise ValueError(f"{segmentation.spec.name} is not a segmentation model")
        self.depth = depth
        self.segmentation = segmentation
        self.options = options
        self._range = StableRange(alpha=0.1)

    def topics(self, options: Optional[PipelineOptions] = None) -> List[str]:
        """The output topics this configuration can publish."""
        o = options or self.options
        out: List[str] = []
        if self.depth is not None:
            metric = self.depth.spec.is_metric or o.relative_scale > 0
            if metric:
                out.append("depth/image")
            if not self.depth.spec.is_metric:
                out.append("depth/relative")
            out += ["depth/colored", "depth/camera_info"]
            if metric and o.cloud_enabled:
                out.append("points")
        if self.segmentation is not None:
            out += ["segmentation/labels", "segmentation/colored"]
            if self.depth is None:
                out.append("depth/camera_info")
        return out

    def output_hw(self, image_hw: Sequence[int]) -> Tuple[int, int]:
        """(H, W) of the published images for a camera image of ``image_hw``."""
        if self.options.output_size == "network":
            model = self.depth or self.segmentation
            return network_input_size(image_hw, model.net_hw, model.keep_aspect_ratio)
        return int(image_hw[0]), int(image_hw[1])

    def process(self, rgb: np.ndarray, header: Header,
                camera_info: Optional[CameraInfo] = None) -> FrameOutput:
        """Runs the models on ``rgb`` and builds every enabled output message.

        Args:
            rgb: (H, W, 3) uint8 RGB camera image.
            header: the camera image's header; copied onto every output.
            camera_info: the camera's calibration for this image size, or None.

        Returns:
            FrameOutput; a camera_info of another resolution is reported in ``warnings``
            and the outputs that need it (``depth/camera_info``, ``points``) are skipped.
        """
        o = self.options
        result = FrameOutput()
        h, w = rgb.shape[:2]
        out_h, out_w = self.output_hw((h, w))
        t0 = time.perf_counter()

        inverse = metric = labels = None
        if self.depth is not None:
            inverse, metric = self._split_depth(self.depth.predict(rgb, (out_h, out_w)), o)
        t1 = time.perf_counter()
        if self.segmentation is not None:
            labels = self.segmentation.predict(rgb, (out_h, out_w))
        t2 = time.perf_counter()
        result.timings_ms["depth_model"] = (t1 - t0) * 1e3
        result.timings_ms["segmentation_model"] = (t2 - t1) * 1e3
        self._build_messages(result, o, rgb, header, camera_info, inverse, metric, labels)
        return result

    def process_batch(self, rgbs: Sequence[np.ndarray], headers: Sequence[Header],
                      infos: Sequence[Optional[CameraInfo]]) -> List[FrameOutput]:
        """``process`` for several frames, running the models on batches.

        Frames of the same size go through each model as one batch; the messages are
        then built frame by frame, in order, exactly as ``process`` builds them (the
        colour range follows the frames in the order given). The options are read once
        for the whole batch. Model timings are the batch's time divided among its frames.

        Args:
            rgbs: (H, W, 3) uint8 RGB camera images (sizes may differ).
            headers: each image's header.
            infos: each image's camera_info, or None.

        Returns:
            One FrameOutput per frame, in the order given.
        """
        if not (len(rgbs) == len(headers) == len(infos)):
            raise ValueError(f"process_batch needs as many headers and camera_infos as images, "
                             f"got {len(rgbs)} images, {len(headers)} headers, "
                             f"{len(infos)} camera_infos")
        o = self.options
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, rgb in enumerate(rgbs):
            groups.setdefault((int(rgb.shape[0]), int(rgb.shape[1])), []).append(i)
        depth: List[Optional[np.ndarray]] = [None] * len(rgbs)
        labels: List[Optional[np.ndarray]] = [None] * len(rgbs)
        results = [FrameOutput() for _ in rgbs]
        for hw, idx in groups.items():
            out_hw = self.output_hw(hw)
            batch = np.stack([rgbs[i] for i in idx])
            t0 = time.perf_counter()
            if self.depth is not None:
                for i, d in zip(idx, self.depth.predict_batch(batch, out_hw)):
                    depth[i] = d
            t1 = time.perf_counter()
            if self.segmentation is not None:
                for i, lab in zip(idx, self.segmentation.predict_batch(batch, out_hw)):
                    labels[i] = lab
            t2 = time.perf_counter()
            for i in idx:
                results[i].timings_ms["depth_model"] = (t1 - t0) * 1e3 / len(idx)
                results[i].timings_ms["segmentation_model"] = (t2 - t1) * 1e3 / len(idx)
        for i, result in enumerate(results):
            inverse = metric = None
            if depth[i] is not None:
                inverse, metric = self._split_depth(depth[i], o)
            self._build_messages(result, o, rgbs[i], headers[i], infos[i], inverse, metric,
                                 labels[i])
        return results

    def _split_depth(self, raw: np.ndarray, o: PipelineOptions
                     ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """(relative inverse depth or None, metric depth or None) of a depth model output."""
        if self.depth.spec.is_metric:
            return None, raw
        if o.relative_scale > 0:
            return raw, relative_to_metric(raw, o.relative_scale, o.relative_shift)
        return raw, None

    def _build_messages(self, result: FrameOutput, o: PipelineOptions, rgb: np.ndarray,
                        header: Header, camera_info: Optional[CameraInfo],
                        inverse: Optional[np.ndarray], metric: Optional[np.ndarray],
                        labels: Optional[np.ndarray]) -> None:
        """Fills ``result`` with every message of one frame from the model outputs."""
        h, w = rgb.shape[:2]
        out_h, out_w = self.output_hw((h, w))
        t2 = time.perf_counter()
        msgs = result.messages
        if metric is not None:
            msgs["depth/image"] = depth_to_image_msg(metric, header)
        if inverse is not None:
            msgs["depth/relative"] = depth_to_image_msg(inverse, header)
        if metric is not None or inverse is not None:
            if metric is not None:
                # Depth in metres: near = warm, so the range runs far -> near.
                lo, hi = self._range.update(metric)
                colored = colorize(metric, hi, lo)
            else:
                # Inverse depth: larger = nearer = warm.
                lo, hi = self._range.update(inverse)
                colored = colorize(inverse, lo, hi)
            msgs["depth/colored"] = rgb_to_image_msg(colored, header)
        small_rgb = None
        if labels is not None:
            msgs["segmentation/labels"] = labels_to_image_msg(labels, header)
            small_rgb = _resize_rgb(rgb, out_h, out_w)
            msgs["segmentation/colored"] = rgb_to_image_msg(
                overlay_labels(small_rgb, labels, PALETTE), header)

        intrinsics = None
        if camera_info is not None:
            try:
                check_camera_info_matches(camera_info, w, h)
                intrinsics = Intrinsics.from_camera_info(camera_info).scaled(out_w, out_h)
                scaled_info = scale_camera_info(camera_info, out_w, out_h)
                scaled_info.header = copy_header(header)
                msgs["depth/camera_info"] = scaled_info
            except ValueError as exc:
                result.warnings.append(f"camera_info rejected: {exc}")
        t3 = time.perf_counter()

        if metric is not None and intrinsics is not None and o.cloud_enabled:
            xyz = backproject(metric, intrinsics, o.cloud_stride, o.cloud_max_depth)
            s = o.cloud_stride
            colors = None
            if o.cloud_color:
                if small_rgb is None:
                    small_rgb = _resize_rgb(rgb, out_h, out_w)
                colors = np.ascontiguousarray(small_rgb[::s, ::s])
            cloud_labels = labels[::s, ::s] if (labels is not None and o.cloud_labels) else None
            msgs["points"] = make_pointcloud2(header, xyz, colors, cloud_labels)
        t4 = time.perf_counter()
        result.timings_ms["messages"] = (t3 - t2) * 1e3
        result.timings_ms["pointcloud"] = (t4 - t3) * 1e3


def _resize_rgb(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
