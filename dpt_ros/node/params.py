"""Parameters of ``dpt_node``: made from the options fields declared with a ``param``
(:mod:`dpt_ros.options`; the node's own in :mod:`dpt_ros.node.options`), read once into
a frozen dataclass.

Parameters marked read-only need a model reload; the others can be changed at run
time with ``ros2 param set`` and are validated before they take effect.
"""

from __future__ import annotations

import array
import dataclasses
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
from dpt_ros.models.registry import MODEL_SPECS, TASKS
from dpt_ros.node.options import NodeOptions
from dpt_ros.options import declared, value_problem
from dpt_ros.pipeline.options import PipelineOptions

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
    "node": NodeOptions,
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


#: The parameters in the order of the docs; :data:`PARAMS` adds those of any options
#: field declared with a ``param`` and not listed here.
_LISTED: tuple[ParamDef, ...] = (
    _declared("node.depth_model_type"),
    _declared("node.depth_weights"),
    _declared("node.depth_random_weights"),
    _declared("node.segmentation_model_type"),
    _declared("node.segmentation_weights"),
    _declared("node.segmentation_random_weights"),
    _declared("predictor.device"),
    _declared("predictor.precision"),
    _declared("predictor.compile"),
    _declared("predictor.backend"),
    _declared("predictor.engine_build"),
    _declared("node.depth_engine"),
    _declared("node.segmentation_engine"),
    _declared("node.warmup_width"),
    _declared("node.warmup_height"),
    _declared("node.network_width"),
    _declared("node.network_height"),
    _declared("predictor.keep_aspect_ratio"),
    _declared("pipeline.output_size", read_only=False),
    _declared("pipeline.rectify", read_only=False),
    _declared("node.input_transport"),
    _declared("node.max_input_pixels", read_only=False),
    _declared("node.cameras"),
    _declared("node.frame_id", read_only=False),
    _declared("node.qos_input_reliability"),
    _declared("node.qos_input_depth"),
    _declared("node.qos_output_reliability"),
    _declared("node.qos_output_depth"),
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
    _declared("node.max_rate", read_only=False),
    _declared("node.diagnostics_period"),
    _declared("node.log_period"),
    _declared("node.processing_time_budget"),
    _declared("node.bond_heartbeat_period"),
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
            ``backend``, ``network_width``/``network_height``, ``keep_aspect_ratio``;
            checked for their task, which the Predictor does not check again.
        pipeline: the per-frame options (``output_size``, ``relative_depth.scale``,
            ``shift`` and ``alignment``, ``cloud.*``), which can change at run time.
        alignment: online alignment of relative depth (``relative_depth.*``).
        temporal: temporal stabilisation of depth (``temporal.*``).
        any_view: windows of views (``any_view.*``; ``model_type`` is the depth model's).
        The rest: the node's own parameters, the fields of
            :class:`~dpt_ros.node.options.NodeOptions` of the same names.
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
    bounds = p.int_range[:2] if p.int_range else p.float_range
    problem = value_problem(name, value, p.choices, bounds)
    return problems + ([problem] if problem else [])


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


def _config_problems(
    values: dict[str, Any], models: dict[str, PredictorOptions | None]
) -> list[str]:
    """Problems of a complete set of values that no single parameter shows; ``models``
    gets each task's options, checked here for their task (the one check of the model
    types between the parameters and the networks: the Predictor and the pipeline do not
    check options again that were found valid)."""
    problems: list[str] = []
    for task in TASKS:
        options = models[task] = predictor_options(values, task)
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
    problems += NodeOptions(**_filled(values, "node")).problems("param")
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
    return _checked(values, stand_ins)[0]


def _checked(
    values: dict[str, Any], stand_ins: Collection[str] = ()
) -> tuple[list[str], dict[str, PredictorOptions | None]]:
    """:func:`validate`'s problems, and each task's options of a full set (checked)."""
    problems: list[str] = []
    models: dict[str, PredictorOptions | None] = {}
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
            text
            for text in _config_problems(whole, models)
            if not any(name in text for name in bad)
        ]
    return list(dict.fromkeys(problems)), models  # each problem once (shared by both tasks)


def config_from_values(values: dict[str, Any]) -> NodeConfig:
    """Builds the config; ValueError lists every problem."""
    problems, models = _checked(values)
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
    node = _filled(typed, "node")
    return NodeConfig(
        depth=models["depth"],
        segmentation=models["segmentation"],
        pipeline=pipeline,
        alignment=alignment_options(typed),
        temporal=TemporalOptions(**_filled(typed, "temporal")),
        any_view=any_view_options(typed),
        **{f.name: node[f.name] for f in dataclasses.fields(NodeConfig) if f.name in node},
    )
