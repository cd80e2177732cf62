"""The node's own parameters (those that fill no shared options class), declared once
(:func:`dpt_ros.options.option`) like :class:`~dpt_ros.pipeline.options.PipelineOptions`:
the node's parameter table (:mod:`dpt_ros.node.params`), ``config/dpt.yaml`` and the
docs are made from these fields. ``max_input_pixels`` is also the ``--max-input-pixels``
flag of the command-line tools. No torch or ROS import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dpt_ros.models.registry import model_names
from dpt_ros.options import Naming, Options, option
from dpt_ros.ros.image_size import DEFAULT_MAX_INPUT_PIXELS

#: Reliabilities of the ``qos.*.reliability`` parameters.
RELIABILITIES = ("best_effort", "reliable")

_DEPTH = ", ".join(model_names("depth"))
_SEG = ", ".join(model_names("segmentation"))
_NETWORK_SIZE = (
    "Network input {side} in pixels; 0 = the model's default. Multiple of 32 (DPT) "
    "or of 14 (Depth Anything V2, where N x N is the original's input_size N; Depth "
    "Anything 3, whose process_res is the larger side)."
)
_NETWORK_SIZE_SUMMARY = (
    "Network input {side} in pixels; 0 = the model's default. Multiple of 32 (DPT) or 14 "
    "(Depth Anything V2 and 3)."
)


@dataclass(frozen=True)
class NodeOptions(Options):
    """The parameters that ``dpt_node`` reads itself, each field its parameter's name
    with dots as underscores (``qos.input.depth`` -> ``qos_input_depth``).

    The ``<task>_*`` fields and ``network_width``/``network_height`` make each task's
    :class:`~dpt_ros.models.options.PredictorOptions`
    (:func:`dpt_ros.node.params.predictor_options`); the rest are fields of
    :class:`~dpt_ros.node.params.NodeConfig` of the same names.
    """

    NAMING: ClassVar[Naming] = "param"

    depth_model_type: str = option(
        "dpt_hybrid",
        f"Depth model type ({_DEPTH}); empty disables depth.",
        param="depth.model_type",
        summary="Depth model type, a depth row of [models.md](models.md); empty disables depth.",
    )
    depth_weights: str = option(
        "",
        "Depth weights file, or a transformers save_pretrained folder; empty = "
        "$DPT_ROS_CACHE or ~/.cache/dpt_ros, downloading the official file there if missing.",
        param="depth.weights",
    )
    depth_random_weights: bool = option(
        False,
        "Use random weights for depth (demos and benchmarks only; outputs meaningless).",
        param="depth.random_weights",
    )
    segmentation_model_type: str = option(
        "",
        f"Segmentation model type ({_SEG}); empty disables segmentation.",
        param="segmentation.model_type",
    )
    segmentation_weights: str = option(
        "",
        "Segmentation weights file, or a transformers save_pretrained folder; empty = "
        "cache/download.",
        param="segmentation.weights",
    )
    segmentation_random_weights: bool = option(
        False,
        "Use random weights for segmentation (demos and benchmarks only).",
        param="segmentation.random_weights",
    )
    depth_engine: str = option(
        "",
        "Depth engine file (.onnx or .engine) for backend onnxruntime/tensorrt.",
        param="depth.engine",
    )
    segmentation_engine: str = option(
        "",
        "Segmentation engine file (.onnx or .engine) for backend onnxruntime/tensorrt.",
        param="segmentation.engine",
    )
    warmup_width: int = option(
        640,
        "Camera image width (pixels) to warm up for at start, so the first frame is not "
        "slow; 0 = skip the warm-up.",
        range=(0, 8192),
        unit="pixels",
        param="warmup_width",
    )
    warmup_height: int = option(
        480,
        "Camera image height (pixels) to warm up for at start.",
        range=(0, 8192),
        unit="pixels",
        param="warmup_height",
    )
    network_width: int = option(
        0,
        _NETWORK_SIZE.format(side="width"),
        range=(0, 4096),
        unit="pixels",
        param="network_width",
        summary=_NETWORK_SIZE_SUMMARY.format(side="width"),
    )
    network_height: int = option(
        0,
        _NETWORK_SIZE.format(side="height"),
        range=(0, 4096),
        unit="pixels",
        param="network_height",
        summary=_NETWORK_SIZE_SUMMARY.format(side="height"),
    )
    input_transport: str = option(
        "raw",
        "raw: sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage "
        "(jpeg/png) on 'image/compressed'.",
        choices=("raw", "compressed"),
        param="input_transport",
    )
    max_input_pixels: int = option(
        DEFAULT_MAX_INPUT_PIXELS,
        "Largest input image (width x height, pixels) decoded; larger ones are rejected "
        "from their header before any decoding (a small PNG can hold gigabytes), and so "
        "are compressed formats whose header gives no size. 0 = no limit.",
        range=(0, 2**31 - 1),
        unit="pixels",
        param="max_input_pixels",
        flag="--max-input-pixels",
        metavar="N",
        summary=(
            "Largest input image (width x height, pixels) decoded, checked from its header; 0 = no"
            " limit."
        ),
    )
    cameras: tuple[str, ...] = option(
        (),
        'Camera namespaces served by one node, relative or absolute (e.g. ["front", '
        '"rear"] or ["/robot/front_camera"]): each NS subscribes NS/image (or '
        "NS/image/compressed) and NS/camera_info and publishes its outputs under NS/; the "
        "latest frames of all cameras share one forward pass. Empty (unset) = one camera "
        "on 'image' and, unless remapped, the image topic's sibling camera_info.",
        param="cameras",
        summary=(
            "Camera namespaces served by one node: NS/image in, outputs under NS/; empty = one "
            "camera on 'image'."
        ),
        example='["front", "rear"]',
    )
    frame_id: str = option(
        "",
        "Frame of every output header, for drivers with an empty or wrong frame_id "
        "(the camera's optical frame); empty = the image's own frame_id.",
        param="frame_id",
    )
    qos_input_reliability: str = option(
        "best_effort",
        "Reliability of the image and camera_info subscriptions.",
        choices=RELIABILITIES,
        param="qos.input.reliability",
    )
    qos_input_depth: int = option(
        5, "History depth of the input subscriptions.", range=(1, 100), param="qos.input.depth"
    )
    qos_output_reliability: str = option(
        "reliable",
        "Reliability of the output publishers.",
        choices=RELIABILITIES,
        param="qos.output.reliability",
    )
    qos_output_depth: int = option(
        5, "History depth of the output publishers.", range=(1, 100), param="qos.output.depth"
    )
    max_rate: float = option(
        0.0,
        "Most frames processed per second (Hz); 0 = as fast as they come.",
        range=(0.0, 1000.0),
        unit="Hz",
        param="max_rate",
    )
    diagnostics_period: float = option(
        1.0,
        "Seconds between /diagnostics messages.",
        range=(0.1, 60.0),
        unit="s",
        param="diagnostics_period",
    )
    log_period: float = option(
        10.0,
        "Seconds between status log lines; 0 = never.",
        range=(0.0, 3600.0),
        unit="s",
        param="log_period",
    )
    processing_time_budget: float = option(
        1.5,
        "Seconds of processing per frame (median, arrival to publish) above which "
        "/diagnostics warns while segmentation runs; 0 = no check. A semantic costmap needs "
        "samples_to_max_cost frames within tile_map_decay_time: (n - 1) frame times plus the "
        "last one's processing, so 1.5 s suits the shipped example (3 samples in 5.0 s).",
        range=(0.0, 3600.0),
        unit="s",
        param="processing_time_budget",
        summary=(
            "Median seconds per frame above which /diagnostics warns while segmentation runs; 0 = "
            "no check."
        ),
    )
    bond_heartbeat_period: float = option(
        0.1,
        "dpt_lifecycle_node only: seconds between bond heartbeats to Nav2's "
        "lifecycle_manager while active (Nav2's nodes: 0.1 on Humble to Kilted, 0.25 on "
        "main); 0 = no bond (the manager then needs bond_timeout: 0.0).",
        range=(0.0, 1.0),
        unit="s",
        param="bond_heartbeat_period",
        summary=(
            "dpt_lifecycle_node only: seconds between bond heartbeats to Nav2's lifecycle_manager;"
            " 0 = no bond."
        ),
    )

    def combined_problems(self, naming: Naming | None = None) -> list[str]:
        """A warm-up size with one side 0; no model at all."""
        problems = []
        if bool(self.warmup_width) != bool(self.warmup_height):
            width, height = (self.label(n, naming) for n in ("warmup_width", "warmup_height"))
            problems.append(f"{width} and {height} must both be 0 (no warm-up) or both set")
        if not self.depth_model_type and not self.segmentation_model_type:
            depth, seg = (
                self.label(n, naming) for n in ("depth_model_type", "segmentation_model_type")
            )
            problems.append(f"{depth} and {seg} are both empty: nothing to run")
        return problems
