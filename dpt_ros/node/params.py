"""Parameters of ``dpt_node``: declared in one place, read once into a frozen dataclass.

Parameters marked read-only need a model reload; the others can be changed at run
time with ``ros2 param set`` and are validated before they take effect.
"""

from __future__ import annotations

import array
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from dpt_ros.alignment.online import AlignmentOptions
from dpt_ros.alignment.temporal import TemporalOptions
from dpt_ros.anyview.options import AnyViewOptions
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.registry import MODEL_SPECS, TASKS, model_names
from dpt_ros.options import declared
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
OPTIONS_GROUPS: dict[str, Any] = {
    "predictor": PredictorOptions,
    "pipeline": PipelineOptions,
    "alignment": AlignmentOptions,
    "temporal": TemporalOptions,
    "any_view": AnyViewOptions,
}


def _declared(
    fills: str | tuple[str, ...], groups: Mapping[str, Any] = OPTIONS_GROUPS, **more: Any
) -> ParamDef:
    """The parameter of an options field declared with :func:`dpt_ros.options.option`
    (the first of ``fills``, ``<group>.<field>``): its name, default, description,
    summary, range and choices all from that one declaration, so that the node, the bag
    tool and the Python API share one rule. ``more``: the node's own settings
    (``read_only``, a list's ``array_of``)."""
    fills = (fills,) if isinstance(fills, str) else fills
    group, field = fills[0].split(".")
    f, spec = declared(groups[group])[field]
    if spec.range is not None and isinstance(f.default, int):
        more["int_range"] = (int(spec.range[0]), int(spec.range[1]), 1)
    elif spec.range is not None:
        more["float_range"] = (float(spec.range[0]), float(spec.range[1]))
    if spec.choices is not None:
        more["choices"] = spec.choices
    return ParamDef(
        spec.param,
        f.default,
        spec.help,
        fills=fills,
        summary=spec.summary,
        example=spec.example,
        **more,
    )


_DEPTH = ", ".join(model_names("depth"))
_SEG = ", ".join(model_names("segmentation"))

#: The parameters in the order of the docs; :data:`PARAMS` adds those of any options
#: field declared with a ``param`` and not listed here.
_LISTED: tuple[ParamDef, ...] = (
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
    _declared("predictor.device"),
    _declared("predictor.precision"),
    _declared("predictor.compile"),
    _declared("predictor.backend"),
    _declared("predictor.engine_build"),
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
    _declared("predictor.keep_aspect_ratio"),
    _declared("pipeline.output_size", read_only=False),
    _declared("pipeline.rectify", read_only=False),
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
    _declared("pipeline.relative_depth_scale", read_only=False),
    _declared("pipeline.relative_depth_shift", read_only=False),
    _declared(("alignment.method", "pipeline.relative_depth_alignment")),
    _declared("alignment.stamp_tolerance", read_only=False),
    _declared("alignment.smoothing", read_only=False),
    _declared("alignment.max_fit_age", read_only=False),
    _declared("alignment.camera_height", read_only=False),
    _declared("alignment.ground_normal", read_only=False, array_of=float),
    _declared("alignment.ground_band", read_only=False),
    _declared("temporal.enabled", read_only=False),
    _declared("temporal.smoothing", read_only=False),
    _declared("temporal.min_inliers", read_only=False),
    _declared("temporal.max_residual", read_only=False),
    _declared("temporal.reset_after", read_only=False),
    _declared("pipeline.cloud_enabled", read_only=False),
    _declared("pipeline.cloud_stride", read_only=False),
    _declared("pipeline.cloud_max_depth", read_only=False),
    _declared("pipeline.cloud_min_depth", read_only=False),
    _declared("pipeline.cloud_edge_filter", read_only=False),
    _declared("pipeline.cloud_edge_threshold", read_only=False),
    _declared("pipeline.cloud_color", read_only=False),
    _declared("pipeline.cloud_labels", read_only=False),
    _declared("pipeline.cloud_min_confidence", read_only=False),
    _declared("pipeline.cloud_confident_threshold", read_only=False),
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


def params_of(groups: Mapping[str, Any], listed: Collection[str]) -> tuple[ParamDef, ...]:
    """The parameters of the options fields of ``groups`` ({group: options class})
    declared with a ``param`` that is not in ``listed``: a new options field becomes a
    parameter (read-only: applied at the next start) by its declaration alone."""
    return tuple(
        _declared(f"{group}.{name}", groups)
        for group, options in groups.items()
        for name, (_, spec) in declared(options).items()
        if spec.param and spec.param not in listed
    )


PARAMS: tuple[ParamDef, ...] = _LISTED + params_of(OPTIONS_GROUPS, {p.name for p in _LISTED})
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
        any_view: windows of views (``any_view.*``; ``model_type`` is the depth model's).
        The rest: the node's own parameters of the same names (dots as underscores).
    """

    depth: PredictorOptions | None
    segmentation: PredictorOptions | None
    pipeline: PipelineOptions
    alignment: AlignmentOptions
    temporal: TemporalOptions
    any_view: AnyViewOptions
    frame_id: str
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


#: Parameters that become fields of :class:`NodeConfig` itself (dots become underscores).
_NODE_PARAMS = (
    "frame_id",
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


def any_view_options(values: dict[str, Any]) -> AnyViewOptions:
    """The ``any_view.*`` options from the parameter values, for the depth model."""
    return AnyViewOptions(**_filled(values, "any_view"), model_type=values["depth.model_type"])


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
    problems += alignment_options(values).problems("param")
    problems += TemporalOptions(**_filled(values, "temporal")).problems("param")
    problems += PipelineOptions(**_filled(values, "pipeline")).problems("param")
    any_view = any_view_options(values)
    problems += any_view.problems("param")
    if any_view.enabled and not values["depth.model_type"]:
        problems.append(
            f"any_view.window={any_view.window} needs depth.model_type, a model with windows"
        )
    if any_view.enabled and values["segmentation.model_type"]:
        problems.append(
            f"any_view.window={any_view.window} runs depth alone: windows with "
            "segmentation.model_type are not supported yet (set it empty)"
        )
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
        any_view=any_view_options(typed),
        **{_field(name): typed[name] for name in _NODE_PARAMS},
    )
