"""What the frame pipeline does with each frame: the options that can change at run time
(the node's ``output_size``, ``rectify``, ``relative_depth.*`` and ``cloud.*``
parameters, the bag tool's flags of the same names). No torch or ROS import here."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

#: ``cloud_stride`` 0 (auto) keeps at most this many points across: a robot's camera at
#: about the density of ika's Depth Anything 3 node (252 x 140, every 2nd point of its
#: 504 x 280 network output), and about 5 cm apart at 8 m across a 70 degree field of
#: view, the cell of a 5 cm costmap at the official tutorial's obstacle_max_range.
AUTO_CLOUD_COLUMNS = 256


@dataclass(frozen=True)
class PipelineOptions:
    """Per-frame behaviour (everything that can change at run time).

    Attributes:
        output_size: ``input`` (the camera image's size) or ``network`` (the network
            input size; cheaper to publish and back-project).
        rectify: rectify images whose camera_info has distortion (``D`` != 0) before
            the models, with ``K``, ``D``, ``R`` and ``P`` (:mod:`dpt_ros.ros.rectify`).
        relative_depth_scale, relative_depth_shift: metric depth from a relative model as
            ``1 / (scale * x + shift)`` metres; scale 0 = not calibrated, no metric depth.
        relative_depth_alignment: ``fixed`` (the scale and shift above) or an online
            method (:mod:`dpt_ros.alignment.online`), whose calibrations the caller passes to
            :meth:`FramePipeline.process_batch` frame by frame.
        cloud_enabled: publish ``points`` (needs metric depth and camera_info).
        cloud_stride: keep every n-th pixel in both directions; 0 = auto
            (:meth:`cloud_stride_for`).
        cloud_max_depth: drop points farther than this (metres); 0 = no limit.
        cloud_min_depth: drop points nearer than this (metres); 0 = no limit.
        cloud_edge_filter: drop flying pixels (between a near and a far surface) from
            ``points``.
        cloud_edge_threshold: the filter's relative depth step (0.1 = 10 %).
        cloud_color: add the image colour (``rgb`` field).
        cloud_labels: add the segmentation id (``label`` field) when segmentation runs.
        cloud_min_confidence: drop points whose depth confidence (Depth Anything 3's
            any-view types: ``1 + exp``, >= 1) is below this; 0 = keep every point.
        cloud_confident_threshold: ``points_confident`` keeps the points of ``points``
            whose depth confidence is at least this (every point for a model without a
            confidence output, and for 0).
    """

    output_size: str = "input"
    rectify: bool = False
    relative_depth_scale: float = 0.0
    relative_depth_shift: float = 0.0
    relative_depth_alignment: str = "fixed"
    cloud_enabled: bool = True
    cloud_stride: int = 0
    cloud_max_depth: float = 0.0
    cloud_min_depth: float = 0.0
    cloud_edge_filter: bool = True
    cloud_edge_threshold: float = 0.1
    cloud_color: bool = True
    cloud_labels: bool = True
    cloud_min_confidence: float = 0.0
    cloud_confident_threshold: float = 2.0

    #: Valid values of the text fields.
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"output_size": ("input", "network")}
    #: Valid ranges (inclusive) of the numeric fields; the node's parameter ranges.
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "relative_depth_scale": (0.0, 1e6),
        "relative_depth_shift": (-1e6, 1e6),
        "cloud_stride": (0, 64),
        "cloud_max_depth": (0.0, 1e4),
        "cloud_min_depth": (0.0, 1e4),
        "cloud_edge_threshold": (0.001, 10.0),
        "cloud_min_confidence": (0.0, 1e6),
        "cloud_confident_threshold": (0.0, 1e6),
    }

    def problems(self) -> list[str]:
        """Every problem with these options (empty = valid)."""
        found = [
            f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}"
            for name, choices in self.CHOICES.items()
            if getattr(self, name) not in choices
        ]
        found += [
            f"{name}={getattr(self, name)} is outside {lo}..{hi}"
            for name, (lo, hi) in self.RANGES.items()
            if not lo <= getattr(self, name) <= hi
        ]
        if 0 < self.cloud_max_depth <= self.cloud_min_depth:
            found.append(
                f"cloud.min_depth={self.cloud_min_depth} must be below "
                f"cloud.max_depth={self.cloud_max_depth} (metres; 0 = no limit)"
            )
        return found

    def cloud_stride_for(self, width: int, segmentation: bool) -> int:
        """The stride of ``points`` for images ``width`` pixels wide (the published
        size): ``cloud_stride`` where given, else (0, auto) 1 while segmentation runs,
        since Nav2's semantic layer needs the cloud pixel-aligned with the labels, and
        otherwise the smallest stride that leaves at most :data:`AUTO_CLOUD_COLUMNS`
        points across (640 -> 3: 214 x 160 points at 640 x 480; 1280 -> 5; 504 -> 2)."""
        if self.cloud_stride > 0:
            return self.cloud_stride
        if segmentation:
            return 1
        return max(1, math.ceil(width / AUTO_CLOUD_COLUMNS))

    def with_every_output(self) -> PipelineOptions:
        """These options with every output that a run-time change can turn on: the
        cloud, and a relative model's metric depth (a calibration)."""
        return dataclasses.replace(
            self, cloud_enabled=True, relative_depth_scale=self.relative_depth_scale or 1.0
        )
