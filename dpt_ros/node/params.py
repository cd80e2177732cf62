"""Parameters of ``dpt_node``: declared in one place, read once into a frozen dataclass.

Parameters marked read-only need a model reload; the others can be changed at run
time with ``ros2 param set`` and are validated before they take effect.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from dpt_ros.alignment.online import ALIGNMENT_METHODS, AlignmentOptions
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


_DEPTH = ", ".join(model_names("depth"))
_SEG = ", ".join(model_names("segmentation"))

PARAMS: tuple[ParamDef, ...] = (
    ParamDef(
        "depth.model_type", "dpt_hybrid", f"Depth model type ({_DEPTH}); empty disables depth."
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
    ParamDef("device", "auto", "Inference device: auto, cpu, cuda or cuda:N."),
    ParamDef(
        "precision",
        "auto",
        "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.",
        choices=PRECISIONS,
    ),
    ParamDef(
        "compile",
        "none",
        "torch.compile mode: none, default, reduce-overhead (adds CUDA graphs) or "
        "max-autotune; compiles at start (warm-up), minutes on a Jetson.",
        choices=COMPILE_MODES,
    ),
    ParamDef(
        "backend",
        "auto",
        "Inference backend: auto (tensorrt on CUDA where installed, else onnxruntime at "
        "fp32 where installed, else torch), torch, onnxruntime or tensorrt. An engine "
        "backend runs <task>.engine, or without one builds an engine per network size "
        "once into $DPT_ROS_CACHE/engines and reuses it on later starts; a failed "
        "build falls back to torch with a warning.",
        choices=BACKENDS,
    ),
    ParamDef(
        "engine_build",
        "eager",
        "When a missing cached engine is built: eager = at start (warm-up; minutes on "
        "a Jetson), lazy = in the background while torch runs, never = cached engines "
        "only.",
        choices=ENGINE_BUILDS,
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
        "or of 14 (Depth Anything V2, where N x N is the original's input_size N).",
        int_range=(0, 4096, 1),
    ),
    ParamDef(
        "network_height",
        0,
        "Network input height in pixels; 0 = the model's default. Multiple of 32 (DPT) "
        "or of 14 (Depth Anything V2, where N x N is the original's input_size N).",
        int_range=(0, 4096, 1),
    ),
    ParamDef(
        "keep_aspect_ratio",
        True,
        "Resize the image by one scale for both axes before the network (as the original).",
    ),
    ParamDef(
        "output_size",
        "input",
        "Size of published images: input (camera resolution) or network (network input).",
        read_only=False,
        choices=("input", "network"),
    ),
    ParamDef(
        "rectify",
        False,
        "Rectify raw images whose camera_info has distortion (D != 0) before the "
        "models, from K, D, R and P (plumb_bob, rational_polynomial, equidistant; no "
        "binning or ROI), as image_proc does; off = the image must already be rectified.",
        read_only=False,
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
    ParamDef(
        "relative_depth.scale",
        0.0,
        "Metric depth from a relative model: depth = 1/(scale*x + shift) metres; "
        "0 = not calibrated, no depth/image or points from relative models.",
        read_only=False,
        float_range=(0.0, 1e6),
    ),
    ParamDef(
        "relative_depth.shift",
        0.0,
        "Shift of the relative-depth calibration (1/metres).",
        read_only=False,
        float_range=(-1e6, 1e6),
    ),
    ParamDef(
        "relative_depth.alignment",
        "fixed",
        "How a relative model's output becomes metres: fixed (relative_depth.scale and "
        "shift), reference_depth (fitted online to alignment/depth: 32FC1 metres or 16UC1 "
        "millimetres registered to the image, any resolution), reference_points (fitted to "
        "alignment/points, a PointCloud2 in the image's frame or transformed with tf2), "
        "ground_plane (fitted to the ground seen relative_depth.camera_height below the "
        "camera). Metric models ignore it.",
        choices=ALIGNMENT_METHODS,
    ),
    ParamDef(
        "relative_depth.stamp_tolerance",
        0.05,
        "Largest stamp difference (s) between an image and the reference matched to it.",
        read_only=False,
        float_range=(0.0, 10.0),
    ),
    ParamDef(
        "relative_depth.smoothing",
        0.3,
        "Weight of each new fit in the temporal filter of scale and shift (0..1]; 1 = "
        "no filtering.",
        read_only=False,
        float_range=(0.01, 1.0),
    ),
    ParamDef(
        "relative_depth.max_fit_age",
        2.0,
        "Seconds (of image stamps) the last good fit is used while new fits fail its "
        "quality checks; then metric outputs stop and /diagnostics says why.",
        read_only=False,
        float_range=(0.0, 3600.0),
    ),
    ParamDef(
        "relative_depth.camera_height",
        0.0,
        "Camera height above the ground (metres), for ground_plane.",
        read_only=False,
        float_range=(0.0, 100.0),
    ),
    ParamDef(
        "relative_depth.ground_normal",
        (),
        "The ground's unit normal pointing up, in the camera optical frame (x right, y "
        "down, z forward), for ground_plane: a level camera [0, -1, 0]; pitched down by p: "
        "[0, -cos p, -sin p]. Empty (unset) = fit it, assuming the model's shift is 0.",
        read_only=False,
        array_of=float,
        example="[0.0, -1.0, 0.0]",
    ),
    ParamDef(
        "relative_depth.ground_band",
        0.25,
        "Without segmentation, the bottom fraction of the image that ground_plane takes as ground.",
        read_only=False,
        float_range=(0.01, 1.0),
    ),
    ParamDef(
        "cloud.enabled",
        True,
        "Publish 'points' (needs metric depth and camera_info).",
        read_only=False,
    ),
    ParamDef(
        "cloud.stride",
        1,
        "Keep every n-th pixel in both directions in 'points'.",
        read_only=False,
        int_range=(1, 64, 1),
    ),
    ParamDef(
        "cloud.max_depth",
        0.0,
        "Drop points farther than this (metres); 0 = no limit.",
        read_only=False,
        float_range=(0.0, 1e4),
    ),
    ParamDef(
        "cloud.min_depth",
        0.0,
        "Drop points nearer than this (metres); 0 = no limit.",
        read_only=False,
        float_range=(0.0, 1e4),
    ),
    ParamDef(
        "cloud.edge_filter",
        True,
        "Drop flying pixels from 'points': pixels whose depth differs from both "
        "neighbours (left and right, or above and below) by more than "
        "cloud.edge_threshold times their depth, i.e. points in the air between a near "
        "and a far surface.",
        read_only=False,
    ),
    ParamDef(
        "cloud.edge_threshold",
        0.1,
        "Relative depth step of cloud.edge_filter (0.1 = 10 %).",
        read_only=False,
        float_range=(0.001, 10.0),
    ),
    ParamDef("cloud.color", True, "Add the image colour to 'points' (rgb field).", read_only=False),
    ParamDef(
        "cloud.labels", True, "Add segmentation ids to 'points' (label field).", read_only=False
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
        values: every parameter by its ROS name, as given.
        The rest: the node's own parameters of the same names.
    """

    depth: PredictorOptions | None
    segmentation: PredictorOptions | None
    pipeline: PipelineOptions
    alignment: AlignmentOptions
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


#: Parameters that become fields of :class:`PipelineOptions` (dots become underscores).
PIPELINE_PARAMS = (
    "output_size",
    "rectify",
    "relative_depth.scale",
    "relative_depth.shift",
    "relative_depth.alignment",
    "cloud.enabled",
    "cloud.stride",
    "cloud.max_depth",
    "cloud.min_depth",
    "cloud.edge_filter",
    "cloud.edge_threshold",
    "cloud.color",
    "cloud.labels",
)
#: Parameters that are fields of :class:`NodeConfig` itself.
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
)


#: ``relative_depth.*`` parameters -> fields of :class:`AlignmentOptions`.
ALIGNMENT_PARAMS = {
    "relative_depth.alignment": "method",
    "relative_depth.stamp_tolerance": "stamp_tolerance",
    "relative_depth.smoothing": "smoothing",
    "relative_depth.max_fit_age": "max_fit_age",
    "relative_depth.camera_height": "camera_height",
    "relative_depth.ground_normal": "ground_normal",
    "relative_depth.ground_band": "ground_band",
}


def alignment_options(values: dict[str, Any]) -> AlignmentOptions:
    """The online alignment settings from the parameter values."""
    fields = {field: values[name] for name, field in ALIGNMENT_PARAMS.items()}
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


def _value_problems(name: str, value: Any) -> list[str]:
    """Type, choice and range problems of one parameter value."""
    p = PARAM_DEFS[name]
    if type(p.default) is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(p.default, tuple):
        kinds = (int, float) if p.array_of is float else (str,)
        items = value if isinstance(value, (list, tuple)) else None
        if items is None or not all(
            isinstance(v, kinds) and not isinstance(v, bool) for v in items
        ):
            what = "numbers" if p.array_of is float else "strings"
            return [f"{name} must be a list of {what}, got {value!r}"]
        return camera_problems(value) if name == "cameras" else []
    if type(value) is not type(p.default):
        return [f"{name} must be a {type(p.default).__name__}, got {value!r}"]
    problems = []
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
            problems += options.problems(task, engine_name=f"{task}.engine")
    problems += alignment_options(values).problems()
    if 0 < values["cloud.max_depth"] <= values["cloud.min_depth"]:
        problems.append(
            f"cloud.min_depth={values['cloud.min_depth']} must be below "
            f"cloud.max_depth={values['cloud.max_depth']} (metres; 0 = no limit)"
        )
    if bool(values["warmup_width"]) != bool(values["warmup_height"]):
        problems.append("warmup_width and warmup_height must both be 0 (no warm-up) or both set")
    if not values["depth.model_type"] and not values["segmentation.model_type"]:
        problems.append(
            "depth.model_type and segmentation.model_type are both empty: nothing to run"
        )
    return problems


def validate(values: dict[str, Any]) -> list[str]:
    """Problems with a full or partial set of parameter values (empty list = valid);
    a partial set (a run-time change) is checked parameter by parameter."""
    problems: list[str] = []
    for name, value in values.items():
        if name in PARAM_DEFS:
            problems += _value_problems(name, value)
    if not problems and all(p.name in values for p in PARAMS):
        problems += _config_problems(values)
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
    pipeline = PipelineOptions(**{_field(name): typed[name] for name in PIPELINE_PARAMS})
    return NodeConfig(
        depth=predictor_options(typed, "depth"),
        segmentation=predictor_options(typed, "segmentation"),
        pipeline=pipeline,
        alignment=alignment_options(typed),
        values=typed,
        **{_field(name): typed[name] for name in _NODE_PARAMS},
    )
