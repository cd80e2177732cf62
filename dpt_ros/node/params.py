"""Parameters of ``dpt_node``: declared in one place, read once into a frozen dataclass.

Parameters marked read-only need a model reload; the others can be changed at run
time with ``ros2 param set`` and are validated before they take effect.
"""

from __future__ import annotations

import array
import dataclasses
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from dpt_ros.alignment.online import ALIGNMENT_METHODS, AlignmentOptions
from dpt_ros.alignment.temporal import TemporalOptions
from dpt_ros.models.options import (
    BACKENDS,
    COMPILE_MODES,
    ENGINE_BUILDS,
    PRECISIONS,
    PredictorOptions,
)
from dpt_ros.models.registry import MODEL_SPECS, TASKS, model_names
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.image_size import DEFAULT_MAX_INPUT_PIXELS

RELIABILITIES = ("best_effort", "reliable")

# A ROS namespace: optionally absolute ('/') or private ('~/'), then tokens of letters,
# digits and '_' that do not start with a digit, separated by single slashes.
_NAMESPACE = re.compile(r"(/|~/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class ParamDef:
    name: str
    default: Any
    description: str
    read_only: bool = True
    int_range: tuple[int, int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    #: Element type of a list parameter (a tuple default): str or float.
    array_of: type = str
    #: A list parameter's example value for the generated params file.
    example: str = ""
    #: The options fields it fills, ``<group>.<field>`` with a group of
    #: :data:`OPTIONS_GROUPS` (``predictor`` = each task's PredictorOptions).
    fills: tuple[str, ...] = ()
    #: A short form of ``description`` for the parameter table of docs/ros.md, which
    #: then gives the whole description below the table: needed where the description
    #: is longer than a table cell allows (scripts/gen_param_docs.py says so).
    summary: str = ""


#: The options classes that parameters fill, by the group name of ``ParamDef.fills``.
OPTIONS_GROUPS: dict[str, type] = {
    "predictor": PredictorOptions,
    "pipeline": PipelineOptions,
    "alignment": AlignmentOptions,
    "temporal": TemporalOptions,
}


def _filling(name: str, fills: str | tuple[str, ...], description: str, **more: Any) -> ParamDef:
    """A parameter that fills options fields: its default from the (first) field's
    default, its range from the options class's ``RANGES``, so that the node, the bag
    tool and the Python API share one rule."""
    fills = (fills,) if isinstance(fills, str) else fills
    group, field = fills[0].split(".")
    options = OPTIONS_GROUPS[group]
    default = {f.name: f.default for f in dataclasses.fields(options)}[field]
    bounds = getattr(options, "RANGES", {}).get(field)
    if bounds is not None and isinstance(default, int):
        more["int_range"] = (int(bounds[0]), int(bounds[1]), 1)
    elif bounds is not None:
        more["float_range"] = (float(bounds[0]), float(bounds[1]))
    choices = getattr(options, "CHOICES", {}).get(field)
    if choices is not None:
        more["choices"] = choices
    return ParamDef(name, default, description, fills=fills, **more)


_DEPTH = ", ".join(model_names("depth"))
_SEG = ", ".join(model_names("segmentation"))

PARAMS: tuple[ParamDef, ...] = (
    ParamDef(
        "depth.model_type",
        "dpt_hybrid",
        f"Depth model type ({_DEPTH}); empty disables depth.",
        summary="Depth model type, a depth row of [models.md](models.md); empty disables depth.",
    ),
    ParamDef(
        "depth.weights",
        "",
        "Depth weights file, or a transformers save_pretrained folder; empty = "
        "$DPT_ROS_CACHE or ~/.cache/dpt_ros, downloading the official file there if missing.",
    ),
    ParamDef(
        "depth.random_weights",
        False,
        "Use random weights for depth (demos and benchmarks only; outputs meaningless).",
    ),
    ParamDef(
        "segmentation.model_type",
        "",
        f"Segmentation model type ({_SEG}); empty disables segmentation.",
    ),
    ParamDef(
        "segmentation.weights",
        "",
        "Segmentation weights file, or a transformers save_pretrained folder; empty = "
        "cache/download.",
    ),
    ParamDef(
        "segmentation.random_weights",
        False,
        "Use random weights for segmentation (demos and benchmarks only).",
    ),
    _filling("device", "predictor.device", "Inference device: auto, cpu, cuda or cuda:N."),
    _filling(
        "precision",
        "predictor.precision",
        "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.",
        choices=PRECISIONS,
    ),
    _filling(
        "compile",
        "predictor.compile",
        "torch.compile mode: none, default, reduce-overhead (adds CUDA graphs) or "
        "max-autotune; compiles at start (warm-up), minutes on a Jetson.",
        choices=COMPILE_MODES,
    ),
    _filling(
        "backend",
        "predictor.backend",
        "Inference backend: auto (tensorrt on CUDA where installed, else onnxruntime at "
        "fp32 where installed, else torch), torch, onnxruntime or tensorrt. An engine "
        "backend runs <task>.engine, or without one builds an engine per network size "
        "once into $DPT_ROS_CACHE/engines and reuses it on later starts; a failed "
        "build falls back to torch with a warning.",
        choices=BACKENDS,
        summary=(
            "auto (the fastest engine this machine has), torch, onnxruntime or tensorrt; engines "
            "are built once and cached."
        ),
    ),
    _filling(
        "engine_build",
        "predictor.engine_build",
        "When a missing cached engine is built: lazy = in the background from the "
        "start, PyTorch serving frames until the engine takes over (the switch is logged "
        "and in /diagnostics' backend); eager = at start, before the first frame "
        "(minutes on a Jetson); never = cached engines only.",
        choices=ENGINE_BUILDS,
        summary=(
            "When a missing cached engine is built: lazy (in the background, PyTorch serving "
            "meanwhile), eager (at start) or never."
        ),
    ),
    ParamDef(
        "depth.engine", "", "Depth engine file (.onnx or .engine) for backend onnxruntime/tensorrt."
    ),
    ParamDef(
        "segmentation.engine",
        "",
        "Segmentation engine file (.onnx or .engine) for backend onnxruntime/tensorrt.",
    ),
    ParamDef(
        "warmup_width",
        640,
        "Camera image width (pixels) to warm up for at start, so the first frame is not "
        "slow; 0 = skip the warm-up.",
        int_range=(0, 8192, 1),
    ),
    ParamDef(
        "warmup_height",
        480,
        "Camera image height (pixels) to warm up for at start.",
        int_range=(0, 8192, 1),
    ),
    ParamDef(
        "network_width",
        0,
        "Network input width in pixels; 0 = the model's default. Multiple of 32 (DPT) "
        "or of 14 (Depth Anything V2, where N x N is the original's input_size N; Depth "
        "Anything 3, whose process_res is the larger side).",
        int_range=(0, 4096, 1),
        summary=(
            "Network input width in pixels; 0 = the model's default. Multiple of 32 (DPT) or 14 "
            "(Depth Anything V2 and 3)."
        ),
    ),
    ParamDef(
        "network_height",
        0,
        "Network input height in pixels; 0 = the model's default. Multiple of 32 (DPT) "
        "or of 14 (Depth Anything V2, where N x N is the original's input_size N; Depth "
        "Anything 3, whose process_res is the larger side).",
        int_range=(0, 4096, 1),
        summary=(
            "Network input height in pixels; 0 = the model's default. Multiple of 32 (DPT) or 14 "
            "(Depth Anything V2 and 3)."
        ),
    ),
    _filling(
        "keep_aspect_ratio",
        "predictor.keep_aspect_ratio",
        "Resize the image by one scale for both axes before the network (as the original).",
    ),
    _filling(
        "output_size",
        "pipeline.output_size",
        "Size of published images: input (camera resolution) or network (network input).",
        read_only=False,
    ),
    _filling(
        "rectify",
        "pipeline.rectify",
        "Rectify raw images whose camera_info has distortion (D != 0) before the "
        "models, from K, D, R and P (plumb_bob, rational_polynomial, equidistant; no "
        "binning or ROI), as image_proc does; off = the image must already be rectified.",
        read_only=False,
        summary=(
            "Rectify images whose camera_info has distortion before the models, as image_proc "
            "does; off = the image must already be rectified."
        ),
    ),
    ParamDef(
        "input_transport",
        "raw",
        "raw: sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage "
        "(jpeg/png) on 'image/compressed'.",
        choices=("raw", "compressed"),
    ),
    ParamDef(
        "max_input_pixels",
        DEFAULT_MAX_INPUT_PIXELS,
        "Largest input image (width x height, pixels) decoded; larger ones are rejected "
        "from their header before any decoding (a small PNG can hold gigabytes), and so "
        "are compressed formats whose header gives no size. 0 = no limit.",
        read_only=False,
        summary=(
            "Largest input image (width x height, pixels) decoded, checked from its header; 0 = no"
            " limit."
        ),
        int_range=(0, 2**31 - 1, 1),
    ),
    ParamDef(
        "cameras",
        (),
        'Camera namespaces served by one node, relative or absolute (e.g. ["front", '
        '"rear"] or ["/robot/front_camera"]): each NS subscribes NS/image (or '
        "NS/image/compressed) and NS/camera_info and publishes its outputs under NS/; the "
        "latest frames of all cameras share one forward pass. Empty (unset) = one camera "
        "on 'image' and, unless remapped, the image topic's sibling camera_info.",
        summary=(
            "Camera namespaces served by one node: NS/image in, outputs under NS/; empty = one "
            "camera on 'image'."
        ),
        example='["front", "rear"]',
    ),
    ParamDef(
        "frame_id",
        "",
        "Frame of every output header, for drivers with an empty or wrong frame_id "
        "(the camera's optical frame); empty = the image's own frame_id.",
        read_only=False,
    ),
    ParamDef(
        "qos.input.reliability",
        "best_effort",
        "Reliability of the image and camera_info subscriptions.",
        choices=RELIABILITIES,
    ),
    ParamDef(
        "qos.input.depth", 5, "History depth of the input subscriptions.", int_range=(1, 100, 1)
    ),
    ParamDef(
        "qos.output.reliability",
        "reliable",
        "Reliability of the output publishers.",
        choices=RELIABILITIES,
    ),
    ParamDef(
        "qos.output.depth", 5, "History depth of the output publishers.", int_range=(1, 100, 1)
    ),
    _filling(
        "relative_depth.scale",
        "pipeline.relative_depth_scale",
        "Metric depth from a relative model: depth = 1/(scale*x + shift) metres; "
        "0 = not calibrated, no depth/image or points from relative models.",
        read_only=False,
    ),
    _filling(
        "relative_depth.shift",
        "pipeline.relative_depth_shift",
        "Shift of the relative-depth calibration (1/metres).",
        read_only=False,
    ),
    _filling(
        "relative_depth.alignment",
        ("pipeline.relative_depth_alignment", "alignment.method"),
        "How a relative model's output becomes metres: fixed (relative_depth.scale and "
        "shift), reference_depth (fitted online to alignment/depth: 32FC1 metres or 16UC1 "
        "millimetres registered to the image, any resolution), reference_points (fitted to "
        "alignment/points, a PointCloud2 in the image's frame or transformed with tf2), "
        "ground_plane (fitted to the ground seen relative_depth.camera_height below the "
        "camera). Metric models ignore it.",
        choices=ALIGNMENT_METHODS,
        summary=(
            "How a relative model's output becomes metres: fixed, reference_depth, "
            "reference_points or ground_plane; metric models ignore it."
        ),
    ),
    _filling(
        "relative_depth.stamp_tolerance",
        "alignment.stamp_tolerance",
        "Largest stamp difference (s) between an image and the reference matched to it.",
        read_only=False,
    ),
    _filling(
        "relative_depth.smoothing",
        "alignment.smoothing",
        "Weight of each new fit in the temporal filter of scale and shift (0..1]; 1 = "
        "no filtering.",
        read_only=False,
    ),
    _filling(
        "relative_depth.max_fit_age",
        "alignment.max_fit_age",
        "Seconds (of image stamps) the last good fit is used while new fits fail its "
        "quality checks; then metric outputs stop and /diagnostics says why.",
        read_only=False,
    ),
    _filling(
        "relative_depth.camera_height",
        "alignment.camera_height",
        "Camera height above the ground (metres), for ground_plane.",
        read_only=False,
    ),
    _filling(
        "relative_depth.ground_normal",
        "alignment.ground_normal",
        "The ground's unit normal pointing up, in the camera optical frame (x right, y "
        "down, z forward), for ground_plane: a level camera [0, -1, 0]; pitched down by p: "
        "[0, -cos p, -sin p]. Empty (unset) = fit it, assuming the model's shift is 0.",
        read_only=False,
        summary=(
            "The ground's upward unit normal in the camera optical frame, for ground_plane; empty "
            "= fit it."
        ),
        array_of=float,
        example="[0.0, -1.0, 0.0]",
    ),
    _filling(
        "relative_depth.ground_band",
        "alignment.ground_band",
        "Without segmentation, the bottom fraction of the image that ground_plane takes as ground.",
        read_only=False,
    ),
    _filling(
        "temporal.enabled",
        "temporal.enabled",
        "Stabilise each camera's depth over time, right after inference and before "
        "relative_depth.alignment: relative models by an affine map of inverse depth, "
        "metric models by a scale, fitted to the previous output and filtered. Off by "
        "default: depth/relative then means the units of a filtered level of recent "
        "frames, not of each frame alone. Changing any temporal.* parameter starts the "
        "streams afresh.",
        read_only=False,
        summary=(
            "Stabilise each camera's depth over time (relative: affine map of inverse depth; "
            "metric: a scale); off by default."
        ),
    ),
    _filling(
        "temporal.smoothing",
        "temporal.smoothing",
        "Least weight of each new frame's level in the tracker of the fitted maps that "
        "the output follows while the camera moves (more while the fits walk, as when "
        "turning; on a still camera a slowly growing mean of the frames takes over); "
        "smaller = steadier, 1 = raw frames.",
        read_only=False,
        summary=(
            "Weight of each new frame in the tracker the output follows while the camera moves; "
            "smaller = steadier, 1 = raw frames."
        ),
    ),
    _filling(
        "temporal.min_inliers",
        "temporal.min_inliers",
        "Smallest share of the sampled pixels that must agree with a frame's fit to the "
        "stream's reference (the mean of recent outputs); below it the stream starts "
        "again from that frame.",
        read_only=False,
        summary=(
            "Smallest share of sampled pixels agreeing with a frame's fit; below it the stream "
            "starts again."
        ),
    ),
    _filling(
        "temporal.max_residual",
        "temporal.max_residual",
        "Largest median relative residual of those pixels (0.05 = 5 % of depth); above "
        "it the stream starts again.",
        read_only=False,
    ),
    _filling(
        "temporal.reset_after",
        "temporal.reset_after",
        "Seconds between two frames' stamps beyond which the stream starts again; keep "
        "it above the camera's frame period.",
        read_only=False,
    ),
    _filling(
        "cloud.enabled",
        "pipeline.cloud_enabled",
        "Publish 'points' (needs metric depth and camera_info).",
        read_only=False,
    ),
    _filling(
        "cloud.stride",
        "pipeline.cloud_stride",
        "Keep every n-th pixel in both directions in 'points'; 0 = auto: 1 while "
        "segmentation runs (Nav2's semantic layer needs the cloud pixel-aligned with the "
        "labels), else the smallest stride leaving at most 256 points across (3 at 640 "
        "wide: 214 x 160 points, about the density of ika's Depth Anything 3 node).",
        read_only=False,
        summary=(
            "Keep every n-th pixel both ways in 'points'; 0 = auto: 1 with segmentation, "
            "else at most 256 points across."
        ),
    ),
    _filling(
        "cloud.max_depth",
        "pipeline.cloud_max_depth",
        "Drop points farther than this (metres); 0 = no limit.",
        read_only=False,
    ),
    _filling(
        "cloud.min_depth",
        "pipeline.cloud_min_depth",
        "Drop points nearer than this (metres); 0 = no limit.",
        read_only=False,
    ),
    _filling(
        "cloud.edge_filter",
        "pipeline.cloud_edge_filter",
        "Drop flying pixels from 'points': pixels whose depth differs from both "
        "neighbours (left and right, or above and below) by more than "
        "cloud.edge_threshold times their depth, i.e. points in the air between a near "
        "and a far surface.",
        read_only=False,
        summary=(
            "Drop flying pixels from 'points' (depth steps above cloud.edge_threshold to both "
            "neighbours)."
        ),
    ),
    _filling(
        "cloud.edge_threshold",
        "pipeline.cloud_edge_threshold",
        "Relative depth step of cloud.edge_filter (0.1 = 10 %).",
        read_only=False,
    ),
    _filling(
        "cloud.color",
        "pipeline.cloud_color",
        "Add the image colour to 'points' (rgb field).",
        read_only=False,
    ),
    _filling(
        "cloud.labels",
        "pipeline.cloud_labels",
        "Add segmentation ids to 'points' (label field).",
        read_only=False,
    ),
    _filling(
        "cloud.min_confidence",
        "pipeline.cloud_min_confidence",
        "Drop points whose depth confidence (depth/confidence: Depth Anything 3's "
        "any-view types, 1 + exp, >= 1, larger = more confident) is below this; "
        "0 = keep every point. The authors suggest 1.5 to 3.",
        read_only=False,
        summary=(
            "Drop points whose depth confidence (Depth Anything 3 any-view types) is below this; 0"
            " = keep all."
        ),
    ),
    _filling(
        "cloud.confident_threshold",
        "pipeline.cloud_confident_threshold",
        "'points_confident' is 'points' with NaN for every point whose depth confidence "
        "is below this (2.0 = 128 in depth/confidence_mono8): a marking source for Nav2's "
        "voxel and obstacle layers, which read no confidence field. A model without a "
        "confidence output, or 0, keeps every point. Built only while subscribed.",
        read_only=False,
        summary=(
            "Depth confidence below which 'points_confident' has NaN (2.0 = 128 in "
            "depth/confidence_mono8): a marking source for Nav2."
        ),
    ),
    ParamDef(
        "max_rate",
        0.0,
        "Most frames processed per second (Hz); 0 = as fast as they come.",
        read_only=False,
        float_range=(0.0, 1000.0),
    ),
    ParamDef(
        "diagnostics_period", 1.0, "Seconds between /diagnostics messages.", float_range=(0.1, 60.0)
    ),
    ParamDef(
        "log_period",
        10.0,
        "Seconds between status log lines; 0 = never.",
        float_range=(0.0, 3600.0),
    ),
    ParamDef(
        "processing_time_budget",
        1.5,
        "Seconds of processing per frame (median, arrival to publish) above which "
        "/diagnostics warns while segmentation runs; 0 = no check. A semantic costmap needs samples_to_max_cost "
        "frames within tile_map_decay_time: (n - 1) frame times plus the last one's "
        "processing, so 1.5 s suits the shipped example (3 samples in 5.0 s).",
        float_range=(0.0, 3600.0),
        summary=(
            "Median seconds per frame above which /diagnostics warns while segmentation runs; 0 = "
            "no check."
        ),
    ),
    ParamDef(
        "bond_heartbeat_period",
        0.1,
        "dpt_lifecycle_node only: seconds between bond heartbeats to Nav2's "
        "lifecycle_manager while active (Nav2's nodes: 0.1 on Humble to Kilted, 0.25 on "
        "main); 0 = no bond (the manager then needs bond_timeout: 0.0).",
        float_range=(0.0, 1.0),
        summary=(
            "dpt_lifecycle_node only: seconds between bond heartbeats to Nav2's lifecycle_manager;"
            " 0 = no bond."
        ),
    ),
)

PARAM_DEFS: dict[str, ParamDef] = {p.name: p for p in PARAMS}


@dataclass(frozen=True)
class NodeConfig:
    """All parameters of ``dpt_node``, validated, grouped by what uses them.

    Attributes:
        depth, segmentation: how each model runs (None = task disabled); built from
            ``<task>.model_type``, ``<task>.weights``, ``<task>.random_weights``,
            ``<task>.engine`` and the shared ``device``, ``precision``, ``compile``,
            ``backend``, ``network_width``/``network_height``, ``keep_aspect_ratio``.
        pipeline: the per-frame options (``output_size``, ``relative_depth.scale``,
            ``shift`` and ``alignment``, ``cloud.*``), which can change at run time.
        alignment: online alignment of relative depth (``relative_depth.*``).
        temporal: temporal stabilisation of depth (``temporal.*``).
        values: every parameter by its ROS name, as given.
        The rest: the node's own parameters of the same names.
    """

    depth: PredictorOptions | None
    segmentation: PredictorOptions | None
    pipeline: PipelineOptions
    alignment: AlignmentOptions
    temporal: TemporalOptions
    values: dict[str, Any]
    warmup_width: int
    warmup_height: int
    input_transport: str
    max_input_pixels: int
    cameras: tuple[str, ...]
    qos_input_reliability: str
    qos_input_depth: int
    qos_output_reliability: str
    qos_output_depth: int
    max_rate: float
    diagnostics_period: float
    log_period: float
    processing_time_budget: float
    bond_heartbeat_period: float


#: Parameters that become fields of :class:`PipelineOptions` (dots become underscores).
_NODE_PARAMS = (
    "warmup_width",
    "warmup_height",
    "input_transport",
    "max_input_pixels",
    "cameras",
    "qos.input.reliability",
    "qos.input.depth",
    "qos.output.reliability",
    "qos.output.depth",
    "max_rate",
    "diagnostics_period",
    "log_period",
    "processing_time_budget",
    "bond_heartbeat_period",
)


#: ``relative_depth.*`` parameters -> fields of :class:`AlignmentOptions`.
def _filled(values: dict[str, Any], group: str) -> dict[str, Any]:
    """The fields of ``group``'s options that parameters fill, from their values."""
    return {
        target.split(".", 1)[1]: values[p.name]
        for p in PARAMS
        for target in p.fills
        if target.split(".", 1)[0] == group
    }


def alignment_options(values: dict[str, Any]) -> AlignmentOptions:
    """The online alignment settings from the parameter values."""
    fields = _filled(values, "alignment")
    fields["ground_normal"] = tuple(float(v) for v in fields["ground_normal"])
    return AlignmentOptions(**fields)


def _field(param: str) -> str:
    return param.replace(".", "_")


def normalise_namespace(name: str) -> str:
    """``name`` with repeated slashes collapsed and trailing ones removed (``"front/"`` ->
    ``"front"``, ``"//robot/cam"`` -> ``"/robot/cam"``, ``"/"`` -> ``""``)."""
    return re.sub("/+", "/", name).rstrip("/")


def camera_problems(cameras: Sequence[str]) -> list[str]:
    """Problems with a ``cameras`` list: empty names, invalid names, duplicates."""
    problems: list[str] = []
    first: dict[str, int] = {}
    for i, raw in enumerate(cameras):
        name = normalise_namespace(raw)
        if not name:
            problems.append(
                f"cameras[{i}]={raw!r} names no camera namespace (give one such "
                "as 'front' or '/robot/front_camera')"
            )
        elif not _NAMESPACE.fullmatch(name):
            problems.append(
                f"cameras[{i}]={raw!r} is not a valid ROS namespace (tokens of "
                "letters, digits and _ separated by /, none starting with a digit)"
            )
        elif name in first:
            j = first[name]
            problems.append(f"cameras[{i}]={raw!r} repeats cameras[{j}]={cameras[j]!r}")
        else:
            first[name] = i
    return problems


def descriptor(p: ParamDef) -> ParameterDescriptor:
    """The ParameterDescriptor of a definition (description, ranges, read-only)."""
    # Float parameters take integers too (max_rate:=5): rclpy's static typing would
    # refuse them with "expected DOUBLE got INTEGER"; validate() checks the value.
    d = ParameterDescriptor(
        description=p.description, read_only=p.read_only, dynamic_typing=type(p.default) is float
    )
    if isinstance(p.default, tuple):
        d.type = (
            ParameterType.PARAMETER_DOUBLE_ARRAY
            if p.array_of is float
            else ParameterType.PARAMETER_STRING_ARRAY
        )
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.int_range:
        d.integer_range = [
            IntegerRange(from_value=p.int_range[0], to_value=p.int_range[1], step=p.int_range[2])
        ]
    if p.float_range:
        d.floating_point_range = [
            FloatingPointRange(from_value=p.float_range[0], to_value=p.float_range[1], step=0.0)
        ]
    return d


def declare(node: Any, p: ParamDef) -> Any:
    """Declares ``p`` on an rclpy ``node`` and returns its value (override or default).

    String lists are declared by type, not by value: rclpy infers a parameter's type
    from its default and would make an empty list a byte array, refusing a list of
    strings from a params file or the command line later. A string list that nobody
    set (or that a params file gives as ``[]``, which rcl reads as "not set") is the
    default. Declaring by type and ``ParameterUninitializedException`` exist since
    rclpy 3.0 (Humble).

    Raises:
        rclpy.exceptions.ParameterException: an override of the wrong type or range.
    """
    if isinstance(p.default, tuple):
        kind = Parameter.Type.DOUBLE_ARRAY if p.array_of is float else Parameter.Type.STRING_ARRAY
        node.declare_parameter(p.name, kind, descriptor(p))
        try:
            value = node.get_parameter(p.name).value
        except ParameterUninitializedException:
            return p.default
        return p.default if value is None else value
    node.declare_parameter(p.name, p.default, descriptor(p))
    return node.get_parameter(p.name).value


def value_problems(name: str, value: Any) -> list[str]:
    """Type, choice and range problems of one parameter value."""
    p = PARAM_DEFS[name]
    if type(p.default) is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(p.default, tuple):
        kinds = (int, float) if p.array_of is float else (str,)
        # A run-time change through the set_parameters service (``ros2 param set``)
        # holds a double array as array('d', ...), not a list.
        items = value if isinstance(value, (list, tuple, array.array)) else None
        if items is None or not all(
            isinstance(v, kinds) and not isinstance(v, bool) for v in items
        ):
            what = "numbers" if p.array_of is float else "strings"
            return [f"{name} must be a list of {what}, got {value!r}"]
        return camera_problems(value) if name == "cameras" else []
    if type(value) is not type(p.default):
        return [f"{name} must be a {type(p.default).__name__}, got {value!r}"]
    problems = []
    if name == "frame_id" and not value.isprintable():
        problems.append(f"frame_id={value!r} holds control characters (a newline, ...)")
    if p.choices and value not in p.choices:
        problems.append(f"{name}={value!r} is not one of {', '.join(p.choices)}")
    if p.int_range and not (p.int_range[0] <= value <= p.int_range[1]):
        problems.append(f"{name}={value} is outside {p.int_range[0]}..{p.int_range[1]}")
    if p.float_range and not (p.float_range[0] <= value <= p.float_range[1]):
        problems.append(f"{name}={value} is outside {p.float_range[0]}..{p.float_range[1]}")
    return problems


def predictor_options(values: dict[str, Any], task: str) -> PredictorOptions | None:
    """How the ``task`` model runs, from the parameter values (None = disabled).

    ``network_width``/``network_height`` of 0 take the model type's own size; an
    unknown model type keeps both (its options then report the model type).
    """
    model_type = values[f"{task}.model_type"]
    if not model_type:
        return None
    width, height = values["network_width"], values["network_height"]
    size = None
    if width or height:
        spec = MODEL_SPECS.get(model_type)
        size = (
            width or (spec.net_width if spec else 0),
            height or (spec.net_height if spec else 0),
        )
    return PredictorOptions(
        model_type=model_type,
        weights=values[f"{task}.weights"] or None,
        random_weights=values[f"{task}.random_weights"],
        device=values["device"],
        precision=values["precision"],
        network_size=size,
        keep_aspect_ratio=values["keep_aspect_ratio"],
        backend=values["backend"],
        engine=values[f"{task}.engine"] or None,
        engine_build=values["engine_build"],
        compile=values["compile"],
    )


def _config_problems(values: dict[str, Any]) -> list[str]:
    """Problems of a complete set of values that no single parameter shows."""
    problems: list[str] = []
    for task in TASKS:
        options = predictor_options(values, task)
        if options is not None:
            problems += options.problems(
                task,
                engine_name=f"{task}.engine",
                size_names=("network_width", "network_height"),
            )
    problems += alignment_options(values).problems()
    problems += TemporalOptions(**_filled(values, "temporal")).problems()
    problems += PipelineOptions(**_filled(values, "pipeline")).problems()
    if bool(values["warmup_width"]) != bool(values["warmup_height"]):
        problems.append("warmup_width and warmup_height must both be 0 (no warm-up) or both set")
    if not values["depth.model_type"] and not values["segmentation.model_type"]:
        problems.append(
            "depth.model_type and segmentation.model_type are both empty: nothing to run"
        )
    return problems


def validate(values: dict[str, Any], stand_ins: Collection[str] = ()) -> list[str]:
    """Problems with a full or partial set of parameter values (empty list = valid);
    a partial set (a run-time change) is checked parameter by parameter.

    A full set is also checked as a whole (model types and network sizes, pairs of
    values), every problem at once: a value with a problem of its own stands in as its
    default there, and problems of combinations that involve it are left out (they
    would name a value that was not given, and it is reported already).

    Args:
        values: {parameter name: value}.
        stand_ins: parameters whose values in ``values`` are defaults standing in for
            values refused elsewhere (rclpy refused the override), treated alike.
    """
    problems: list[str] = []
    bad = set(stand_ins)
    for name, value in values.items():
        if name in PARAM_DEFS:
            found = value_problems(name, value)
            problems += found
            if found:
                bad.add(name)
    if all(p.name in values for p in PARAMS):
        whole = {**values, **{name: PARAM_DEFS[name].default for name in bad}}
        problems += [
            text for text in _config_problems(whole) if not any(name in text for name in bad)
        ]
    return list(dict.fromkeys(problems))  # each problem once (shared by both tasks)


def config_from_values(values: dict[str, Any]) -> NodeConfig:
    """Builds the config; ValueError lists every problem."""
    problems = validate(values)
    missing = [p.name for p in PARAMS if p.name not in values]
    if missing:
        problems.append(f"no value for {', '.join(missing)}")
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    typed: dict[str, Any] = {
        p.name: (float(values[p.name]) if isinstance(p.default, float) else values[p.name])
        for p in PARAMS
    }
    typed["cameras"] = tuple(normalise_namespace(name) for name in typed["cameras"])
    typed["relative_depth.ground_normal"] = tuple(
        float(v) for v in typed["relative_depth.ground_normal"]
    )
    pipeline = PipelineOptions(**_filled(typed, "pipeline"))
    return NodeConfig(
        depth=predictor_options(typed, "depth"),
        segmentation=predictor_options(typed, "segmentation"),
        pipeline=pipeline,
        alignment=alignment_options(typed),
        temporal=TemporalOptions(**_filled(typed, "temporal")),
        values=typed,
        **{_field(name): typed[name] for name in _NODE_PARAMS},
    )
