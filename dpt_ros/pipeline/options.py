"""What the frame pipeline does with each frame: the options that can change at run time
(the node's ``output_size``, ``rectify``, ``relative_depth.*`` and ``cloud.*``
parameters, the bag tool's flags of the same names). No torch or ROS import here."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from dpt_ros.options import Naming, Options, option

#: ``cloud_stride`` 0 (auto) keeps at most this many points across: a robot's camera at
#: about the density of ika's Depth Anything 3 node (252 x 140, every 2nd point of its
#: 504 x 280 network output), and about 5 cm apart at 8 m across a 70 degree field of
#: view, the cell of a 5 cm costmap at the official tutorial's obstacle_max_range.
AUTO_CLOUD_COLUMNS = 256


@dataclass(frozen=True)
class PipelineOptions(Options):
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

    NAMING: ClassVar[Naming] = "field"

    output_size: str = option(
        "input",
        "Size of published images: input (camera resolution) or network (network input).",
        choices=("input", "network"),
        param="output_size",
        flag="--output-size",
    )
    rectify: bool = option(
        False,
        "Rectify raw images whose camera_info has distortion (D != 0) before the "
        "models, from K, D, R and P (plumb_bob, rational_polynomial, equidistant; no "
        "binning or ROI), as image_proc does; off = the image must already be rectified.",
        param="rectify",
        summary=(
            "Rectify images whose camera_info has distortion before the models, as image_proc "
            "does; off = the image must already be rectified."
        ),
    )
    relative_depth_scale: float = option(
        0.0,
        "Metric depth from a relative model: depth = 1/(scale*x + shift) metres; "
        "0 = not calibrated, no depth/image or points from relative models.",
        range=(0.0, 1e6),
        param="relative_depth.scale",
        flag="--relative-depth-scale",
        metavar="S",
    )
    relative_depth_shift: float = option(
        0.0,
        "Shift of the relative-depth calibration (1/metres).",
        range=(-1e6, 1e6),
        unit="1/m",
        param="relative_depth.shift",
        flag="--relative-depth-shift",
        metavar="T",
    )
    #: Declared with :class:`~dpt_ros.alignment.online.AlignmentOptions`'s ``method``,
    #: which the same parameter and flag set.
    relative_depth_alignment: str = option(
        "fixed",
        "How a relative model's output becomes metres (alignment.method).",
        param="relative_depth.alignment",
    )
    cloud_enabled: bool = option(
        True,
        "Publish 'points' (needs metric depth and camera_info).",
        param="cloud.enabled",
        flag="--no-cloud",
    )
    cloud_stride: int = option(
        0,
        "Keep every n-th pixel in both directions in 'points'; 0 = auto: 1 while "
        "segmentation runs (Nav2's semantic layer needs the cloud pixel-aligned with the "
        "labels), else the smallest stride leaving at most 256 points across (3 at 640 "
        "wide: 214 x 160 points, about the density of ika's Depth Anything 3 node).",
        range=(0, 64),
        param="cloud.stride",
        flag="--cloud-stride",
        metavar="N",
        summary=(
            "Keep every n-th pixel both ways in 'points'; 0 = auto: 1 with segmentation, "
            "else at most 256 points across."
        ),
    )
    cloud_max_depth: float = option(
        0.0,
        "Drop points farther than this (metres); 0 = no limit.",
        range=(0.0, 1e4),
        unit="m",
        param="cloud.max_depth",
    )
    cloud_min_depth: float = option(
        0.0,
        "Drop points nearer than this (metres); 0 = no limit.",
        range=(0.0, 1e4),
        unit="m",
        param="cloud.min_depth",
    )
    cloud_edge_filter: bool = option(
        True,
        "Drop flying pixels from 'points': pixels whose depth differs from both "
        "neighbours (left and right, or above and below) by more than "
        "cloud.edge_threshold times their depth, i.e. points in the air between a near "
        "and a far surface.",
        param="cloud.edge_filter",
        summary=(
            "Drop flying pixels from 'points' (depth steps above cloud.edge_threshold to both "
            "neighbours)."
        ),
    )
    cloud_edge_threshold: float = option(
        0.1,
        "Relative depth step of cloud.edge_filter (0.1 = 10 %).",
        range=(0.001, 10.0),
        param="cloud.edge_threshold",
    )
    cloud_color: bool = option(
        True, "Add the image colour to 'points' (rgb field).", param="cloud.color"
    )
    cloud_labels: bool = option(
        True, "Add segmentation ids to 'points' (label field).", param="cloud.labels"
    )
    cloud_min_confidence: float = option(
        0.0,
        "Drop points whose depth confidence (depth/confidence: Depth Anything 3's "
        "any-view types, 1 + exp, >= 1, larger = more confident) is below this; "
        "0 = keep every point. The authors suggest 1.5 to 3.",
        range=(0.0, 1e6),
        param="cloud.min_confidence",
        flag="--cloud-min-confidence",
        metavar="C",
        summary=(
            "Drop points whose depth confidence (Depth Anything 3 any-view types) is below this; 0"
            " = keep all."
        ),
    )
    cloud_confident_threshold: float = option(
        2.0,
        "'points_confident' is 'points' with NaN for every point whose depth confidence "
        "is below this (2.0 = 128 in depth/confidence_mono8): a marking source for Nav2's "
        "voxel and obstacle layers, which read no confidence field. A model without a "
        "confidence output, or 0, keeps every point. Built only while subscribed.",
        range=(0.0, 1e6),
        param="cloud.confident_threshold",
        summary=(
            "Depth confidence below which 'points_confident' has NaN (2.0 = 128 in "
            "depth/confidence_mono8): a marking source for Nav2."
        ),
    )

    def combined_problems(self, naming: Naming | None = None) -> list[str]:
        """The cloud's depth limits in the wrong order."""
        if 0 < self.cloud_max_depth <= self.cloud_min_depth:
            low, high = (
                self.label(n, naming or "param") for n in ("cloud_min_depth", "cloud_max_depth")
            )
            return [
                f"{low}={self.cloud_min_depth} must be below "
                f"{high}={self.cloud_max_depth} (metres; 0 = no limit)"
            ]
        return []

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
