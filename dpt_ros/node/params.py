"""Parameters of ``dpt_node``: declared in one place, read once into a frozen dataclass.

Parameters marked read-only need a model reload; the others can be changed at run
time with ``ros2 param set`` and are validated before they take effect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from dpt_ros.models.predictor import BACKENDS, COMPILE_MODES
from dpt_ros.models.registry import model_names

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
    int_range: Tuple[int, int, int] | None = None
    float_range: Tuple[float, float] | None = None
    choices: Tuple[str, ...] | None = None


_DEPTH = ", ".join(model_names("depth"))
_SEG = ", ".join(model_names("segmentation"))

PARAMS: Tuple[ParamDef, ...] = (
    ParamDef("depth.model_type", "dpt_hybrid",
             f"Depth model type ({_DEPTH}); empty disables depth."),
    ParamDef("depth.weights", "",
             "Depth weights file; empty = $DPT_ROS_CACHE or ~/.cache/dpt_ros, downloading "
             "the official file there if missing."),
    ParamDef("depth.random_weights", False,
             "Use random weights for depth (demos and benchmarks only; outputs meaningless)."),
    ParamDef("segmentation.model_type", "",
             f"Segmentation model type ({_SEG}); empty disables segmentation."),
    ParamDef("segmentation.weights", "", "Segmentation weights file; empty = cache/download."),
    ParamDef("segmentation.random_weights", False,
             "Use random weights for segmentation (demos and benchmarks only)."),
    ParamDef("device", "auto", "Inference device: auto, cpu, cuda or cuda:N."),
    ParamDef("precision", "auto", "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.",
             choices=("auto", "fp32", "fp16", "bf16")),
    ParamDef("compile", "none",
             "torch.compile mode: none, default, reduce-overhead (adds CUDA graphs) or "
             "max-autotune; compiles at start (warm-up), minutes on a Jetson.",
             choices=COMPILE_MODES),
    ParamDef("backend", "torch",
             "Inference backend: torch, onnxruntime or tensorrt (an engine exported with "
             "'dpt-ros export' for this model, network size and batch).", choices=BACKENDS),
    ParamDef("depth.engine", "",
             "Depth engine file (.onnx or .engine) for backend onnxruntime/tensorrt."),
    ParamDef("segmentation.engine", "",
             "Segmentation engine file (.onnx or .engine) for backend onnxruntime/tensorrt."),
    ParamDef("warmup_width", 640,
             "Camera image width (pixels) to warm up for at start, so the first frame is not "
             "slow; 0 = skip the warm-up.", int_range=(0, 8192, 1)),
    ParamDef("warmup_height", 480, "Camera image height (pixels) to warm up for at start.",
             int_range=(0, 8192, 1)),
    ParamDef("network_width", 0, "Network input width in pixels; 0 = the model's default. "
             "Multiple of 32.", int_range=(0, 4096, 32)),
    ParamDef("network_height", 0, "Network input height in pixels; 0 = the model's default. "
             "Multiple of 32.", int_range=(0, 4096, 32)),
    ParamDef("keep_aspect_ratio", True,
             "Resize the image by one scale for both axes before the network (as the original)."),
    ParamDef("output_size", "input",
             "Size of published images: input (camera resolution) or network (network input).",
             read_only=False, choices=("input", "network")),
    ParamDef("input_transport", "raw",
             "raw: sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage "
             "(jpeg/png) on 'image/compressed'.", choices=("raw", "compressed")),
    ParamDef("cameras", (),
             "Camera namespaces served by one node, relative or absolute (e.g. [\"front\", "
             "\"rear\"] or [\"/robot/front_camera\"]): each NS subscribes NS/image (or "
             "NS/image/compressed) and NS/camera_info and publishes its outputs under NS/; the "
             "latest frames of all cameras share one forward pass. Empty (unset) = one camera "
             "on 'image' and 'camera_info'."),
    ParamDef("qos.input.reliability", "best_effort",
             "Reliability of the image and camera_info subscriptions.", choices=RELIABILITIES),
    ParamDef("qos.input.depth", 5, "History depth of the input subscriptions.",
             int_range=(1, 100, 1)),
    ParamDef("qos.output.reliability", "reliable", "Reliability of the output publishers.",
             choices=RELIABILITIES),
    ParamDef("qos.output.depth", 5, "History depth of the output publishers.",
             int_range=(1, 100, 1)),
    ParamDef("relative_depth.scale", 0.0,
             "Metric depth from a relative model: depth = 1/(scale*x + shift) metres; "
             "0 = not calibrated, no depth/image or points from relative models.",
             read_only=False, float_range=(0.0, 1e6)),
    ParamDef("relative_depth.shift", 0.0, "Shift of the relative-depth calibration (1/metres).",
             read_only=False, float_range=(-1e6, 1e6)),
    ParamDef("cloud.enabled", True, "Publish 'points' (needs metric depth and camera_info).",
             read_only=False),
    ParamDef("cloud.stride", 1, "Keep every n-th pixel in both directions in 'points'.",
             read_only=False, int_range=(1, 64, 1)),
    ParamDef("cloud.max_depth", 0.0, "Drop points farther than this (metres); 0 = no limit.",
             read_only=False, float_range=(0.0, 1e4)),
    ParamDef("cloud.color", True, "Add the image colour to 'points' (rgb field).",
             read_only=False),
    ParamDef("cloud.labels", True, "Add segmentation ids to 'points' (label field).",
             read_only=False),
    ParamDef("max_rate", 0.0, "Most frames processed per second (Hz); 0 = as fast as they come.",
             read_only=False, float_range=(0.0, 1000.0)),
    ParamDef("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
             float_range=(0.1, 60.0)),
    ParamDef("log_period", 10.0, "Seconds between status log lines; 0 = never.",
             float_range=(0.0, 3600.0)),
)

PARAM_DEFS: Dict[str, ParamDef] = {p.name: p for p in PARAMS}


@dataclass(frozen=True)
class NodeConfig:
    """All parameters of ``dpt_node``, validated."""

    depth_model_type: str
    depth_weights: str
    depth_random_weights: bool
    segmentation_model_type: str
    segmentation_weights: str
    segmentation_random_weights: bool
    device: str
    precision: str
    compile: str
    backend: str
    depth_engine: str
    segmentation_engine: str
    warmup_width: int
    warmup_height: int
    network_width: int
    network_height: int
    keep_aspect_ratio: bool
    output_size: str
    input_transport: str
    cameras: Tuple[str, ...]
    qos_input_reliability: str
    qos_input_depth: int
    qos_output_reliability: str
    qos_output_depth: int
    relative_depth_scale: float
    relative_depth_shift: float
    cloud_enabled: bool
    cloud_stride: int
    cloud_max_depth: float
    cloud_color: bool
    cloud_labels: bool
    max_rate: float
    diagnostics_period: float
    log_period: float

    @staticmethod
    def field_name(param: str) -> str:
        return param.replace(".", "_")


def normalise_namespace(name: str) -> str:
    """``name`` with repeated slashes collapsed and trailing ones removed (``"front/"`` ->
    ``"front"``, ``"//robot/cam"`` -> ``"/robot/cam"``, ``"/"`` -> ``""``)."""
    return re.sub("/+", "/", name).rstrip("/")


def camera_problems(cameras: Sequence[str]) -> List[str]:
    """Problems with a ``cameras`` list: empty names, invalid names, duplicates."""
    problems: List[str] = []
    first: Dict[str, int] = {}
    for i, raw in enumerate(cameras):
        name = normalise_namespace(raw)
        if not name:
            problems.append(f"cameras[{i}]={raw!r} names no camera namespace (give one such "
                            "as 'front' or '/robot/front_camera')")
        elif not _NAMESPACE.fullmatch(name):
            problems.append(f"cameras[{i}]={raw!r} is not a valid ROS namespace (tokens of "
                            "letters, digits and _ separated by /, none starting with a digit)")
        elif name in first:
            j = first[name]
            problems.append(f"cameras[{i}]={raw!r} repeats cameras[{j}]={cameras[j]!r}")
        else:
            first[name] = i
    return problems


def descriptor(p: ParamDef) -> ParameterDescriptor:
    """The ParameterDescriptor of a definition (description, ranges, read-only)."""
    d = ParameterDescriptor(description=p.description, read_only=p.read_only)
    if isinstance(p.default, tuple):
        d.type = ParameterType.PARAMETER_STRING_ARRAY
    if p.choices:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    if p.int_range:
        d.integer_range = [IntegerRange(from_value=p.int_range[0], to_value=p.int_range[1],
                                        step=p.int_range[2])]
    if p.float_range:
        d.floating_point_range = [FloatingPointRange(from_value=p.float_range[0],
                                                     to_value=p.float_range[1], step=0.0)]
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
        node.declare_parameter(p.name, Parameter.Type.STRING_ARRAY, descriptor(p))
        try:
            value = node.get_parameter(p.name).value
        except ParameterUninitializedException:
            return p.default
        return p.default if value is None else value
    node.declare_parameter(p.name, p.default, descriptor(p))
    return node.get_parameter(p.name).value


def validate(values: Dict[str, Any]) -> List[str]:
    """Problems with a full or partial set of parameter values (empty list = valid)."""
    problems: List[str] = []
    for name, value in values.items():
        p = PARAM_DEFS.get(name)
        if p is None:
            continue
        if type(p.default) is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(p.default, tuple):
            if not (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
                problems.append(f"{name} must be a list of strings, got {value!r}")
            continue
        if type(value) is not type(p.default):
            problems.append(f"{name} must be a {type(p.default).__name__}, got {value!r}")
            continue
        if p.choices and value not in p.choices:
            problems.append(f"{name}={value!r} is not one of {', '.join(p.choices)}")
        if p.int_range and not (p.int_range[0] <= value <= p.int_range[1]):
            problems.append(f"{name}={value} is outside {p.int_range[0]}..{p.int_range[1]}")
        if p.float_range and not (p.float_range[0] <= value <= p.float_range[1]):
            problems.append(f"{name}={value} is outside {p.float_range[0]}..{p.float_range[1]}")
    for key in ("network_width", "network_height"):
        v = values.get(key)
        if isinstance(v, int) and v % 32:
            problems.append(f"{key}={v} must be 0 or a multiple of 32")
    for key, task in (("depth.model_type", "depth"), ("segmentation.model_type", "segmentation")):
        v = values.get(key)
        if isinstance(v, str) and v and v not in model_names(task):
            problems.append(f"{key}={v!r} is not a {task} model; valid: "
                            f"{', '.join(model_names(task))} (or empty to disable)")
    cameras = values.get("cameras")
    if isinstance(cameras, (list, tuple)) and all(isinstance(v, str) for v in cameras):
        problems += camera_problems(cameras)
    backend = values.get("backend")
    if backend not in (None, "torch"):
        if values.get("compile", "none") != "none":
            problems.append(f"compile={values['compile']!r} applies to backend torch only; "
                            f"an exported {backend} engine is already optimised")
        for task in ("depth", "segmentation"):
            if values.get(f"{task}.model_type") and not values.get(f"{task}.engine"):
                problems.append(f"backend={backend!r} needs {task}.engine (export it with "
                                f"'dpt-ros export --model-type {values[f'{task}.model_type']}')")
    ww, wh = values.get("warmup_width"), values.get("warmup_height")
    if isinstance(ww, int) and isinstance(wh, int) and bool(ww) != bool(wh):
        problems.append("warmup_width and warmup_height must both be 0 (no warm-up) or both "
                        "set")
    if values.get("depth.model_type") == "" and values.get("segmentation.model_type") == "":
        problems.append("depth.model_type and segmentation.model_type are both empty: "
                        "nothing to run")
    return problems


def type_of(p: ParamDef) -> ParameterType:
    return {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
            float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
            tuple: ParameterType.PARAMETER_STRING_ARRAY}[type(p.default)]


def config_from_values(values: Dict[str, Any]) -> NodeConfig:
    """Builds the config; ValueError lists every problem."""
    problems = validate(values)
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    kwargs = {}
    for p in PARAMS:
        v = values[p.name]
        if isinstance(p.default, float):
            v = float(v)
        elif isinstance(p.default, tuple):
            v = tuple(normalise_namespace(name) for name in v)
        kwargs[NodeConfig.field_name(p.name)] = v
    return NodeConfig(**kwargs)
