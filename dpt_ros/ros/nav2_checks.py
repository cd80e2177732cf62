"""Does a Nav2 configuration work with dpt_node? Checks on plain dicts (YAML as loaded),
by the rules of the consumers' source; ``dpt-ros doctor nav2`` prints them.

The rules, each from the consumer that decides it:

- kiwicampus semantic_segmentation_layer (Humble, Jazzy and rolling branches): a frame
  whose cloud has another width x height than its label image is dropped ("Pointcloud
  and segmentation sizes are different"), so ``cloud.stride`` must be 1; a class name
  from LabelInfo that no class type lists is logged as "CRITICAL ERROR" on every
  LabelInfo and its pixels are ignored; observations older than
  ``tile_map_decay_time`` (default 5.0 s) are purged (age > decay), and a tile takes
  ``max_cost`` only with at least ``samples_to_max_cost`` observations whose mean
  confidence is strictly greater than ``mark_confidence``.
- nav2_costmap_2d: an observation source keeps points with ``min_obstacle_height <= z
  <= max_obstacle_height`` (the source's own, default 0.0), the voxel layer also drops
  ``z > max_obstacle_height`` of the layer (default 2.0) and marks a point only if its
  voxel index ``int((z - origin_z) / z_resolution)`` is below ``z_voxels`` (at most 16;
  a clearing ray to a point above the column is clipped to it, not dropped);
  ``inf_is_valid`` has no effect on a PointCloud2 source (a note, not a finding).
- a topic that is not one of dpt_node's may still carry its data (depth_image_proc's
  ``point_cloud_xyz`` on dpt_node's ``depth/image``): the doctor says it cannot tell,
  and flags only near misses of dpt_node's own names under its namespace.
- parameter types: rclcpp refuses an override whose type differs from the declared
  default's, and the plugin (or the manager) does not start: ``mark_confidence: 128.0``
  (declared int), ``tile_map_decay_time: 5`` (declared double), ``bond_timeout: 4``
  (declared double). :data:`DECLARED_TYPES` lists each plugin's declarations.
- staleness: an obstacle, voxel, STVL or semantic source with ``expected_update_rate``
  (seconds, despite the name) > 0 is "not current" once its last cloud arrived longer
  ago (observation_buffer.cpp ``isCurrent``), and the controller or planner gives up
  waiting for the costmap ("Costmap timed out waiting for update"); the collision monitor stops the
  robot ("invalid source") when its newest cloud's stamp is older than
  ``source_timeout`` (default 2.0 s; 1.0 in nav2_bringup's jazzy params). dpt_node's
  times come from :mod:`dpt_ros.ros.node_speed`: measured on a running node, else the
  documented figures; where neither says, the doctor cannot tell.
- costmap layers read x, y and z only (the voxel and obstacle layers keep a point by its
  height, a NaN point neither marks nor clears): confidence-aware marking is a marking
  source on ``points_confident`` beside a clearing source on ``points``.
- dpt_node publishes ``points`` and ``depth/image`` only with metres: a metric model, a
  relative one with ``relative_depth.scale`` > 0, or online alignment.
- nav2_lifecycle_manager: with ``bond_timeout > 0`` (default 4.0 s) it waits
  ``bond_timeout / 2`` after ACTIVATE for a bond whose id is the node's entry in
  ``node_names`` and aborts the bring-up without one; dpt_lifecycle_node's bond id is
  its name, as for Nav2's own nodes.

The node side comes from its parameter values (``dpt_ros.node.params`` names); for the
semantic layer's decay, ``processing_time_budget`` stands for its processing time per
frame (the node warns in /diagnostics above it).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dpt_ros.models.registry import MODEL_SPECS, get_spec, model_names
from dpt_ros.ros.node_speed import CloudTiming, estimate
from dpt_ros.viz.ade20k import CLASS_NAMES

#: The dpt_node topics a semantic layer reads, by the plugin's parameter name.
SEMANTIC_TOPICS = {
    "segmentation_topic": "segmentation/labels",
    "confidence_topic": "segmentation/confidence",
    "labels_topic": "segmentation/label_info",
    "pointcloud_topic": "points",
}
#: Topics whose names only dpt_node uses: the namespace is learnt from these alone.
NAMESPACE_EVIDENCE = ("segmentation/labels", "segmentation/label_info", "segmentation/confidence")
SEMANTIC_PLUGIN = "SemanticSegmentationLayer"
STVL_PLUGIN = "SpatioTemporalVoxelLayer"
VOXEL_PLUGIN = "nav2_costmap_2d::VoxelLayer"
OBSTACLE_PLUGIN = "nav2_costmap_2d::ObstacleLayer"
#: The plugin's default tile_map_decay_time (s).
DEFAULT_DECAY_S = 5.0
#: nav2_voxel_grid keeps at most 16 voxels in a column.
MAX_Z_VOXELS = 16
#: nav2_lifecycle_manager's default bond_timeout (s).
DEFAULT_BOND_TIMEOUT_S = 4.0
#: nav2_collision_monitor's default source_timeout (s).
DEFAULT_SOURCE_TIMEOUT_S = 2.0

_D, _I, _B, _S, _SA = "double", "int", "bool", "string", "string[]"
_OBSERVATION = {
    "topic": _S,
    "sensor_frame": _S,
    "observation_persistence": _D,
    "expected_update_rate": _D,
    "min_obstacle_height": _D,
    "max_obstacle_height": _D,
    "inf_is_valid": _B,
    "marking": _B,
    "clearing": _B,
}
#: The types each consumer declares its parameters with (rclcpp refuses others), by
#: (consumer, level): semantic_segmentation_layer (humble and jazzy branches,
#: src/semantic_segmentation_layer.cpp), nav2_costmap_2d (jazzy: plugins/voxel_layer.cpp,
#: plugins/obstacle_layer.cpp), spatio_temporal_voxel_layer (main), nav2_lifecycle_manager
#: and nav2_collision_monitor (jazzy).
DECLARED_TYPES: dict[tuple[str, str], dict[str, str]] = {
    ("semantic", "layer"): {
        "enabled": _B,
        "combination_method": _I,
        "observation_sources": _S,
        "publish_debug_topics": _B,
        "use_approximate_time_sync": _B,
    },
    ("semantic", "source"): {
        "segmentation_topic": _S,
        "confidence_topic": _S,
        "labels_topic": _S,
        "pointcloud_topic": _S,
        "observation_persistence": _D,
        "expected_update_rate": _D,
        "class_types": _SA,
        "max_obstacle_distance": _D,
        "min_obstacle_distance": _D,
        "tile_map_decay_time": _D,
        "visualize_tile_map": _B,
        "use_cost_selection": _B,
    },
    ("semantic", "class"): {
        "classes": _SA,
        "base_cost": _I,
        "max_cost": _I,
        "mark_confidence": _I,
        "samples_to_max_cost": _I,
        "dominant_priority": _B,
    },
    ("obstacle", "layer"): {
        "enabled": _B,
        "footprint_clearing_enabled": _B,
        "min_obstacle_height": _D,
        "max_obstacle_height": _D,
        "combination_method": _I,
        "observation_sources": _S,
    },
    ("voxel", "layer"): {
        "enabled": _B,
        "footprint_clearing_enabled": _B,
        "min_obstacle_height": _D,
        "max_obstacle_height": _D,
        "z_voxels": _I,
        "origin_z": _D,
        "z_resolution": _D,
        "unknown_threshold": _I,
        "mark_threshold": _I,
        "combination_method": _I,
        "publish_voxel_map": _B,
        "observation_sources": _S,
    },
    ("obstacle", "source"): {
        **_OBSERVATION,
        "data_type": _S,
        "obstacle_max_range": _D,
        "obstacle_min_range": _D,
        "raytrace_max_range": _D,
        "raytrace_min_range": _D,
    },
    ("stvl", "layer"): {
        "observation_sources": _S,
        "transform_tolerance": _D,
        "enabled": _B,
        "publish_voxel_map": _B,
        "voxel_size": _D,
        "combination_method": _I,
        "mark_threshold": _I,
        "update_footprint_enabled": _B,
        "decay_model": _I,
        "voxel_decay": _D,
        "mapping_mode": _B,
        "map_save_duration": _D,
    },
    ("stvl", "source"): {
        **_OBSERVATION,
        "obstacle_range": _D,
        "min_z": _D,
        "max_z": _D,
        "vertical_fov_angle": _D,
        "vertical_fov_padding": _D,
        "horizontal_fov_angle": _D,
        "decay_acceleration": _D,
        "filter": _S,
        "voxel_min_points": _I,
        "clear_after_reading": _B,
        "enabled": _B,
        "model_type": _I,
    },
    ("manager", "node"): {
        "node_names": _SA,
        "autostart": _B,
        "bond_timeout": _D,
        "bond_respawn_max_duration": _D,
        "attempt_respawn_reconnection": _B,
    },
    ("collision_monitor", "node"): {"source_timeout": _D},
    ("collision_monitor", "source"): {
        "type": _S,
        "topic": _S,
        "source_timeout": _D,
        "min_height": _D,
        "max_height": _D,
        "enabled": _B,
    },
}


def yaml_type(value: Any) -> str | None:
    """The ROS parameter type a YAML value loads as (rcl_yaml_param_parser's rules),
    or None where it cannot be told (an empty list)."""
    if isinstance(value, bool):
        return _B
    if isinstance(value, int):
        return _I
    if isinstance(value, float):
        return _D
    if isinstance(value, str):
        return _S
    if isinstance(value, list) and value:
        inner = {yaml_type(v) for v in value}
        return f"{inner.pop()}[]" if len(inner) == 1 else "mixed[]"
    return None


@dataclass(frozen=True)
class Finding:
    """One mismatch: where (dotted YAML path or parameter), what, and the fix."""

    where: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.where}: {self.problem}; fix: {self.fix}"


@dataclass
class Report:
    findings: list[Finding]
    #: Things worth knowing that break nothing.
    notes: list[str]
    #: What the doctor cannot tell from the files, each with the reason.
    unsure: list[str] = dataclasses.field(default_factory=list)


def _number(value: Any, default: float) -> float:
    """``value`` as a number (the default where absent or not a number: its type is
    reported apart)."""
    if value is None or isinstance(value, bool):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _walk(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every mapping in ``tree`` with its key path."""
    if isinstance(tree, Mapping):
        yield path, dict(tree)
        for key, value in tree.items():
            yield from _walk(value, (*path, str(key)))


def _dotted(path: Sequence[str]) -> str:
    return ".".join(k for k in path if k != "ros__parameters")


def node_topics(namespace: str, cameras: Sequence[str]) -> list[str]:
    """The namespaces dpt_node publishes under: the node's, or each camera's."""
    base = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if not cameras:
        return [base]
    return [c.rstrip("/") if c.startswith("/") else f"{base}/{c.strip('/')}" for c in cameras]


def _samples_needed(n: int, budget: float, max_rate: float) -> float:
    """Seconds that ``n`` consecutive observations span when the last is counted:
    (n - 1) frame intervals plus the last frame's processing time."""
    interval = max(budget, 1.0 / max_rate if max_rate > 0 else 0.0)
    return (n - 1) * interval + budget


class _Checker:
    def __init__(
        self,
        nav2: Mapping[str, Any],
        node: Mapping[str, Any],
        namespace: str | None,
        node_name: str,
        bond_available: bool,
        class_names: Sequence[str],
        timing: CloudTiming | None = None,
    ) -> None:
        self.nav2, self.node, self.node_name = nav2, node, node_name
        self.timing = timing if timing is not None else estimate(node)
        self.bond_available = bond_available
        self.class_names = list(class_names)
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.namespace = namespace
        self.prefixes: list[str] | None = (
            node_topics(namespace, node.get("cameras", ())) if namespace is not None else None
        )
        self.checked = 0
        self.unsure: list[str] = []
        #: Whether some consumer reads dpt_node's metric outputs (points, depth).
        self.reads_metres = False

    def add(self, where: str, problem: str, fix: str) -> None:
        self.findings.append(Finding(where, problem, fix))

    def types(self, where: str, params: Mapping[str, Any], kind: tuple[str, str]) -> bool:
        """Every parameter of ``params`` that ``kind`` declares has the declared type;
        False (and a finding each) where one does not."""
        ok = True
        for name, declared in DECLARED_TYPES[kind].items():
            if name not in params:
                continue
            given = yaml_type(params[name])
            if given is None or given == declared:
                continue
            ok = False
            value = params[name]
            if declared == _D and given == _I:
                fix = f"write it as a double: {name}: {float(value)!r}"
            elif declared == _I and given == _D and float(value).is_integer():
                fix = f"write it as an integer: {name}: {int(value)}"
            else:
                fix = f"give it a {declared} value"
            self.add(
                f"{where}.{name}",
                f"{value!r} is a {given} but the plugin declares a {declared}: rclcpp "
                "refuses it and the plugin does not start",
                fix,
            )
        return ok

    # -- topics -------------------------------------------------------------------
    def _prefix_of(self, topic: str, name: str) -> str | None:
        suffix = "/" + name
        return topic[: -len(suffix)] if topic.endswith(suffix) else None

    def our_topic(self, where: str, topic: str, name: str) -> bool | None:
        """Whether ``topic`` is dpt_node's ``name``: True; False with a finding for a
        near miss of its names under its namespace; None (and why, in :attr:`unsure`)
        where the files cannot tell (another node's topic may carry the same data)."""
        prefix = self._prefix_of(topic, name)
        if self.prefixes is None:
            if prefix is not None and name in NAMESPACE_EVIDENCE:
                self.prefixes = [prefix]  # a name only dpt_node publishes
                return True
            self.unsure.append(
                f"{where}: cannot tell whether {topic!r} is dpt_node's {name!r}: its "
                "namespace is unknown (give --namespace)"
            )
            return None
        wanted = [f"{p}/{name}" for p in self.prefixes]
        if topic in wanted:
            return True
        if prefix is not None and name in NAMESPACE_EVIDENCE:  # only dpt_node has it
            self.add(
                where,
                f"{topic!r} is not under dpt_node's namespace",
                f"use {' or '.join(repr(w) for w in wanted)}",
            )
            return False
        for p in self.prefixes:
            rest = topic[len(p) + 1 :] if topic.startswith(p + "/") else None
            if rest is not None and difflib.get_close_matches(rest, [name], n=1, cutoff=0.8):
                self.add(
                    where,
                    f"{topic!r} is not a topic dpt_node publishes",
                    f"use {' or '.join(repr(w) for w in wanted)}",
                )
                return False
        self.unsure.append(
            f"{where}: cannot tell what publishes {topic!r}: not dpt_node's "
            f"{' or '.join(repr(w) for w in wanted)} (another node may feed it from "
            "dpt_node's outputs, e.g. depth_image_proc's point_cloud_xyz on depth/image)"
        )
        return None

    # -- semantic layer -----------------------------------------------------------
    def semantic_layer(self, path: tuple[str, ...], layer: dict) -> None:
        self.checked += 1
        self.reads_metres = True
        where = _dotted(path)
        self.types(where, layer, ("semantic", "layer"))
        node = self.node
        if not node.get("segmentation.model_type"):
            self.add(
                "node segmentation.model_type",
                "is empty: dpt_node publishes no labels for the semantic layer",
                "set segmentation.model_type: dpt_hybrid_ade20k (or dpt_large_ade20k)",
            )
        if not node.get("cloud.enabled", True):
            self.add("node cloud.enabled", "is false: no 'points'", "set cloud.enabled: true")
        stride = int(node.get("cloud.stride", 1))
        if stride > 1:
            self.add(
                "node cloud.stride",
                f"is {stride}: the cloud has 1/{stride} of the labels' width and height, "
                "and the semantic layer drops every such frame ('Pointcloud and "
                "segmentation sizes are different')",
                "set cloud.stride: 1",
            )
        for source in str(layer.get("observation_sources", "")).split():
            cfg = layer.get(source)
            if not isinstance(cfg, Mapping):
                self.add(
                    f"{where}.{source}",
                    "is listed in observation_sources but not configured",
                    f"add {where}.{source} with its topics and class_types",
                )
                continue
            self.semantic_source(f"{where}.{source}", dict(cfg))

    def semantic_source(self, where: str, cfg: dict) -> None:
        self.types(where, cfg, ("semantic", "source"))
        self.update_rate(where, cfg)
        for key, name in sorted(
            SEMANTIC_TOPICS.items(), key=lambda kv: kv[1] != "segmentation/labels"
        ):
            topic = str(cfg.get(key, ""))
            if key == "confidence_topic" and not topic:
                self.notes.append(
                    f"{where}.confidence_topic is empty: the layer counts every "
                    "observation as confidence 255"
                )
                continue
            if key == "confidence_topic" and self.prefixes and topic.endswith("/depth/confidence"):
                self.add(
                    f"{where}.confidence_topic",
                    f"{topic!r} is depth confidence as 32FC1 floats; the layer reads one "
                    "byte per pixel (mono8), so it would take float bytes for confidences",
                    f"use {self.prefixes[0]}/segmentation/confidence (the labels' "
                    f"probabilities, mono8) or {self.prefixes[0]}/depth/confidence_mono8 "
                    "(the depth confidence, mono8)",
                )
                continue
            self.our_topic(f"{where}.{key}", topic, name)
        types = cfg.get("class_types") or []
        if not types:
            self.add(
                f"{where}.class_types",
                "is empty: the plugin exits ('no class types defined')",
                "list the class types, e.g. [traversable, obstacle, overhead]",
            )
            return
        seen: dict[str, str] = {}
        for class_type in types:
            group = cfg.get(class_type)
            typed = isinstance(group, Mapping) and self.types(
                f"{where}.{class_type}", group, ("semantic", "class")
            )
            if not isinstance(group, Mapping) or not group.get("classes"):
                self.add(
                    f"{where}.{class_type}.classes",
                    "is missing or empty: the plugin ignores this class type",
                    "list its ADE20K class names",
                )
                continue
            for name in group["classes"]:
                if name in seen:
                    self.add(
                        f"{where}.{class_type}.classes",
                        f"{name!r} is already in {seen[name]}: the plugin keeps the first",
                        "list each class in one class type",
                    )
                elif name not in self.class_names:
                    close = difflib.get_close_matches(name, self.class_names, n=1)
                    self.add(
                        f"{where}.{class_type}.classes",
                        f"{name!r} is not an ADE20K class name: it never matches",
                        f"use {close[0]!r}" if close else "remove it",
                    )
                else:
                    seen[name] = class_type
            if typed:
                self.class_type(f"{where}.{class_type}", dict(group), cfg)
        missing = [n for n in self.class_names if n not in seen]
        if missing:
            shown = ", ".join(missing[:12]) + (", ..." if len(missing) > 12 else "")
            self.add(
                f"{where}.class_types",
                f"{len(missing)} ADE20K class(es) in no class type ({shown}): the plugin "
                "logs 'CRITICAL ERROR: Class ... not defined' for each on every LabelInfo "
                "and ignores their pixels",
                "put every class in a class type (a zero-cost group for the ones that "
                "do not matter)",
            )

    def class_type(self, where: str, group: dict, cfg: dict) -> None:
        base, top = _number(group.get("base_cost"), 0), _number(group.get("max_cost"), 0)
        if top == base:
            return
        n = int(_number(group.get("samples_to_max_cost"), 0))
        confidence = int(_number(group.get("mark_confidence"), 0))
        if confidence >= 255:
            self.add(
                f"{where}.mark_confidence",
                f"is {confidence}: the mean confidence (at most 255) must be strictly "
                "greater, so max_cost is never reached",
                "use a value below 255 (128: the class's probability above one half)",
            )
        if n < 2:
            return
        decay = _number(cfg.get("tile_map_decay_time"), DEFAULT_DECAY_S)
        budget = float(self.node.get("processing_time_budget", 0.0))
        max_rate = float(self.node.get("max_rate", 0.0))
        if budget <= 0:
            self.add(
                "node processing_time_budget",
                "is 0: the frame time that tile_map_decay_time must cover is unknown",
                "set it to dpt_node's processing time per frame (s)",
            )
            return
        span = _samples_needed(n, budget, max_rate)
        if span > decay:
            self.add(
                f"{where.rsplit('.', 1)[0]}.tile_map_decay_time",
                f"{decay:g} s cannot hold the {n} observations that {where} needs for "
                f"max_cost at dpt_node's processing_time_budget {budget:g} s"
                + (f" and max_rate {max_rate:g} Hz" if max_rate > 0 else "")
                + f" (they span {span:g} s)",
                f"tile_map_decay_time >= {math.ceil(span * 10) / 10:g} s (the plugin's "
                "default is 5.0), or a faster pipeline",
            )

    # -- obstacle and voxel layers ------------------------------------------------
    def point_sources(self, path: tuple[str, ...], layer: dict) -> None:
        where = _dotted(path)
        plugin = str(layer.get("plugin", ""))
        voxel = plugin == VOXEL_PLUGIN
        stvl = STVL_PLUGIN in plugin
        kind = "stvl" if stvl else "voxel" if voxel else "obstacle"
        self.types(where, layer, (kind, "layer"))
        for source in str(layer.get("observation_sources", "")).split():
            cfg = layer.get(source)
            default_type = "PointCloud2" if stvl else "LaserScan"
            if not isinstance(cfg, Mapping) or cfg.get("data_type", default_type) != "PointCloud2":
                continue
            topic = str(cfg.get("topic", ""))
            src = f"{where}.{source}"
            if not self.point_topic(f"{src}.topic", topic):
                continue
            self.checked += 1
            self.types(src, cfg, ("stvl" if stvl else "obstacle", "source"))
            self.update_rate(src, cfg)
            self.confident_source(src, topic)
            if cfg.get("inf_is_valid"):
                self.notes.append(
                    f"{src}.inf_is_valid has no effect on a PointCloud2 source (Nav2 "
                    "warns and ignores it; it applies to LaserScan sources)"
                )
            if stvl:
                if str(cfg.get("filter", "passthrough")) not in ("passthrough", "voxel"):
                    self.add(
                        f"{src}.filter",
                        f"is {cfg.get('filter')!r}: dpt_node's cloud keeps NaN points (sky, "
                        "no depth) in place, and only STVL's passthrough or voxel filter "
                        "drops them",
                        "filter: passthrough",
                    )
                continue
            if "max_obstacle_height" not in cfg:
                self.add(
                    f"{src}.max_obstacle_height",
                    "is not set: Nav2 reads 0.0 and keeps no point above 0 m",
                    "set it (m), e.g. 2.0",
                )
            if voxel:
                self.voxel_column(where, src, layer, dict(cfg))

    def point_topic(self, where: str, topic: str) -> bool:
        """Whether a PointCloud2 source reads dpt_node's ``points`` or
        ``points_confident`` (checked as ours). With an unknown namespace a topic named
        ``.../points`` (or ``.../points_confident``) is taken for it, said in
        :attr:`unsure`; another name is some other sensor's, said nothing of."""
        name = cloud_name(topic)
        if self.prefixes is None:
            if topic.endswith("/" + name) or topic == name:
                self.unsure.append(
                    f"{where}: took {topic!r} for dpt_node's {name!r} by its name; its "
                    "namespace is unknown (give --namespace to be sure)"
                )
                self.reads_metres = True
                return True
            return False
        if not any(topic.startswith(p + "/") for p in self.prefixes):
            return False  # another sensor's
        ours = self.our_topic(where, topic, name) is True
        self.reads_metres = self.reads_metres or ours
        return ours

    def confident_source(self, where: str, topic: str) -> None:
        """A source on ``points_confident`` marks confidence-aware only with a model
        that has a depth confidence and a threshold above 0: say so where it does not."""
        if cloud_name(topic) != "points_confident":
            return

        model = str(self.node.get("depth.model_type", "") or "")
        spec = MODEL_SPECS.get(model)
        if spec is not None and "confidence" not in spec.maps:
            self.notes.append(
                f"{where} reads points_confident, but {model} has no depth confidence: "
                "every point of 'points' is in it (confidence-aware with "
                "depth_anything_3_small, _base or _large)"
            )
        elif _number(self.node.get("cloud.confident_threshold"), 2.0) <= 0:
            self.notes.append(
                f"{where} reads points_confident, but cloud.confident_threshold is 0: "
                "every point of 'points' is in it"
            )

    def update_rate(self, where: str, cfg: Mapping[str, Any]) -> None:
        """``expected_update_rate`` (s) must exceed the time between dpt_node's clouds:
        ObservationBuffer::isCurrent is false once the last one arrived longer ago."""
        expected = _number(cfg.get("expected_update_rate"), 0.0)
        if expected <= 0:
            return
        timing = self.timing
        verdict = timing.interval.against(expected)
        if verdict == "unknown":
            self.unsure.append(
                f"{where}.expected_update_rate: cannot tell whether {expected:g} s holds "
                f"dpt_node's time between clouds ({timing.interval.text()}): "
                f"{timing.source}"
            )
        elif verdict == "over":
            slack = _round_up(2 * _known(timing.interval))
            self.add(
                f"{where}.expected_update_rate",
                f"{expected:g} s is below dpt_node's time between clouds "
                f"({timing.interval.text()}, {timing.source}): the layer reports the "
                "source as not current, and the controller (local costmap) or the "
                "planner (global) gives up with 'Costmap timed out waiting for update'",
                f"expected_update_rate: {slack:g} (two clouds), or 0.0 (no check)",
            )

    # -- collision monitor --------------------------------------------------------
    def collision_monitor(self, path: tuple[str, ...], params: dict) -> None:
        where = _dotted(path)
        self.types(where, params, ("collision_monitor", "node"))
        timeout = _number(params.get("source_timeout"), DEFAULT_SOURCE_TIMEOUT_S)
        sources = params.get("observation_sources") or []
        for source in sources if isinstance(sources, list) else []:
            cfg = params.get(source)
            if not isinstance(cfg, Mapping) or cfg.get("type") != "pointcloud":
                continue
            src = f"{where}.{source}"
            if not self.point_topic(f"{src}.topic", str(cfg.get("topic", ""))):
                continue
            self.checked += 1
            self.types(src, cfg, ("collision_monitor", "source"))
            limit = _number(cfg.get("source_timeout"), timeout)
            if limit <= 0:
                continue  # 0 = no check (source.cpp)
            timing = self.timing
            verdict = timing.age.against(limit)
            if verdict == "unknown":
                self.unsure.append(
                    f"{src}: cannot tell whether source_timeout {limit:g} s holds the age "
                    f"of dpt_node's newest cloud ({timing.age.text()}): {timing.source}"
                )
            elif verdict == "over":
                # One missed cloud of slack: the age plus an interval.
                slack = _round_up(_known(timing.age) + _known(timing.interval))
                self.add(
                    f"{src}.source_timeout",
                    f"{limit:g} s is shorter than dpt_node's newest cloud can be old "
                    f"({timing.age.text()}: its latency plus the time between clouds, "
                    f"{timing.source}): the collision monitor stops the robot ('invalid "
                    "source')",
                    f"source_timeout: {slack:g} on this source, or a faster pipeline",
                )

    def voxel_column(self, where: str, src: str, layer: dict, cfg: dict) -> None:
        z_voxels = int(_number(layer.get("z_voxels"), 10))
        z_res = _number(layer.get("z_resolution"), 0.2)
        origin_z = _number(layer.get("origin_z"), 0.0)
        if z_voxels > MAX_Z_VOXELS:
            self.add(
                f"{where}.z_voxels",
                f"is {z_voxels}: the voxel grid keeps at most {MAX_Z_VOXELS}",
                f"z_voxels <= {MAX_Z_VOXELS} with a coarser z_resolution",
            )
            z_voxels = MAX_Z_VOXELS
        top = min(
            _number(layer.get("max_obstacle_height"), 2.0),
            _number(cfg.get("max_obstacle_height"), 0.0),
        )
        if top <= origin_z or voxel_index(top, origin_z, z_res) < z_voxels:
            return
        if not cfg.get("marking", True):
            return  # a clearing ray to a point above the column is clipped, not dropped
        column = origin_z + z_voxels * z_res
        needed = (top - origin_z) / MAX_Z_VOXELS
        fix_res = math.floor(needed / 0.05 + 1) * 0.05  # the next 5 cm step above
        self.add(
            f"{where}.z_voxels",
            f"z_voxels {z_voxels} x z_resolution {z_res:g} m covers {origin_z:g} to "
            f"{column:g} m, below max_obstacle_height {top:g} m of {src}: points from "
            f"{column:g} to {top:g} m are dropped",
            f"z_resolution: {fix_res:.2f} with z_voxels: "
            f"{min(MAX_Z_VOXELS, math.floor((top - origin_z) / fix_res) + 1)}, or a lower "
            "max_obstacle_height",
        )

    def metres(self) -> None:
        problem = metric_problem(self.node)
        if problem:
            self.add(
                "node depth.model_type",
                problem,
                "a metric model (dpt_hybrid_nyu indoors, dpt_hybrid_kitti on roads, "
                "depth_anything_v2_metric_*), or calibrate the relative model "
                "(relative_depth.scale and relative_depth.shift), or align it online "
                "(relative_depth.alignment: reference_depth, reference_points or "
                "ground_plane)",
            )

    # -- lifecycle manager --------------------------------------------------------
    def lifecycle_manager(self, path: tuple[str, ...], params: dict) -> None:
        names = params.get("node_names") or []
        ours = [n for n in names if str(n).rstrip("/").rsplit("/", 1)[-1] == self.node_name]
        if not ours:
            return
        self.checked += 1
        where = _dotted(path)
        self.types(where, params, ("manager", "node"))
        timeout = _number(params.get("bond_timeout"), DEFAULT_BOND_TIMEOUT_S)
        period = _number(self.node.get("bond_heartbeat_period"), 0.1)
        if timeout <= 0:
            self.notes.append(
                f"{where}.bond_timeout is {timeout:g}: the manager does not watch "
                f"{self.node_name}'s bond (4.0, Nav2's default, notices a crash)"
            )
            return
        for entry in ours:
            if entry != self.node_name:
                self.add(
                    f"{where}.node_names",
                    f"lists {entry!r}, but {self.node_name}'s bond id is its name "
                    f"{self.node_name!r} (as for Nav2's own nodes): the bond never forms "
                    "and the bring-up aborts",
                    f"run the manager in the node's namespace and list {self.node_name!r}",
                )
        if period <= 0:
            self.add(
                f"{where}.bond_timeout",
                f"is {timeout:g} s but the node's bond_heartbeat_period is 0 (no bond): "
                "the manager aborts the bring-up",
                "set bond_heartbeat_period: 0.1 on the node, or bond_timeout: 0.0",
            )
        elif period >= timeout:
            self.add(
                "node bond_heartbeat_period",
                f"{period:g} s is not below the manager's bond_timeout {timeout:g} s: "
                "the bond breaks between heartbeats",
                "bond_heartbeat_period: 0.1",
            )
        if not self.bond_available:
            self.notes.append(
                "the bond messages do not import here: a dpt_lifecycle_node started in "
                f"this environment keeps no bond, and {where} (bond_timeout "
                f"{timeout:g}) would abort; ROS installs have ros-$ROS_DISTRO-bond"
            )

    def run(self) -> Report:
        walked = list(_walk(self.nav2))
        for path, tree in walked:  # semantic layers first: they set the namespace
            if SEMANTIC_PLUGIN in str(tree.get("plugin", "")):
                self.semantic_layer(path, tree)
        for path, tree in walked:
            plugin = str(tree.get("plugin", ""))
            if plugin in (VOXEL_PLUGIN, OBSTACLE_PLUGIN) or STVL_PLUGIN in plugin:
                self.point_sources(path, tree)
            params = tree.get("ros__parameters")
            if isinstance(params, Mapping) and "node_names" in params:
                self.lifecycle_manager((*path, "ros__parameters"), dict(params))
            if isinstance(params, Mapping) and path and path[-1] == "collision_monitor":
                self.collision_monitor((*path, "ros__parameters"), dict(params))
        if self.reads_metres:
            self.metres()
        if not self.checked:
            self.add(
                "nav2 parameters",
                f"nothing uses dpt_node: no semantic layer, no PointCloud2 source on its "
                f"'points' and no lifecycle manager listing {self.node_name!r}",
                "pass the Nav2 parameters file that configures the costmap or the manager",
            )
        return Report(self.findings, self.notes, self.unsure)


def _known(r: Any) -> float:
    """The larger known bound of a :class:`~dpt_ros.ros.node_speed.Range`."""
    return float(r.high if r.high is not None else r.low)


def _round_up(seconds: float) -> float:
    """``seconds`` rounded up to the next 0.1 s."""
    return math.ceil(round(seconds * 10, 6)) / 10


def cloud_name(topic: str) -> str:
    """Which of dpt_node's clouds a topic names: ``points_confident`` or ``points``."""
    return "points_confident" if topic.rstrip("/").endswith("points_confident") else "points"


def metric_problem(node: Mapping[str, Any]) -> str:
    """Why dpt_node with these parameters publishes no ``points`` and no ``depth/image``
    (no metres), or ""."""
    model = str(node.get("depth.model_type", "") or "")
    if not model:
        return "depth.model_type is empty: no depth, so no 'points' and no 'depth/image'"
    if model not in model_names():
        return ""  # reported with the node's parameters
    if get_spec(model).is_metric:
        return ""
    if _number(node.get("relative_depth.scale"), 0.0) > 0:
        return ""
    if str(node.get("relative_depth.alignment", "fixed")) != "fixed":
        return ""
    return (
        f"depth.model_type {model} is a relative model with no calibration "
        "(relative_depth.scale 0) and no online alignment: dpt_node publishes no 'points' "
        "and no 'depth/image', so Nav2 receives nothing"
    )


def voxel_index(z: float, origin_z: float, z_resolution: float) -> int:
    """The voxel layer's column index of height ``z`` (worldToMap3D's truncation;
    points below origin_z count at origin_z)."""
    return int((max(z, origin_z) - origin_z) / z_resolution)


def check_nav2(
    nav2: Mapping[str, Any],
    node: Mapping[str, Any],
    *,
    namespace: str | None = None,
    node_name: str = "dpt_node",
    bond_available: bool = True,
    class_names: Sequence[str] = CLASS_NAMES,
    timing: CloudTiming | None = None,
) -> Report:
    """Every mismatch between a Nav2 parameters tree and dpt_node's parameters.

    Args:
        nav2: a Nav2 params YAML as loaded (several files merged).
        node: every dpt_node parameter by name (defaults where the file has none).
        namespace: dpt_node's namespace; None = learnt from the semantic layer's
            first topic of ours.
        node_name: the node's name (its bond id and entry in node_names).
        bond_available: whether the bond messages import where the node will run.
        class_names: the label names the node's LabelInfo publishes.
        timing: how often dpt_node publishes its cloud and how old it can be (a running
            node's, :func:`dpt_ros.ros.node_speed.measured`); None = the documented
            figures for its parameters (:func:`dpt_ros.ros.node_speed.estimate`).
    """
    return _Checker(nav2, node, namespace, node_name, bond_available, class_names, timing).run()


def merge(trees: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """YAML trees merged in order, later values winning (as later params files)."""
    out: dict[str, Any] = {}
    for tree in trees:
        for key, value in tree.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = merge([out[key], value])
            else:
                out[key] = value
    return out


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def node_parameters(tree: Mapping[str, Any], node_name: str = "dpt_node") -> dict[str, Any]:
    """The parameters a ROS params file gives ``node_name``: the ``ros__parameters`` of
    every key that names it (``/**``, ``dpt_node``, ``/ns/dpt_node``, ``/**/dpt_node``),
    in file order, nested names joined with dots.

    Raises:
        ValueError: no key of the file names the node.
    """
    found: list[dict[str, Any]] = []
    for path, sub in _walk(tree):
        params = sub.get("ros__parameters")
        if not isinstance(params, Mapping):
            continue
        key = "/".join(k.strip("/") for k in path if k.strip("/"))
        last = key.rsplit("/", 1)[-1] if key else ""
        if key in ("**", "*") or last == node_name:
            found.append(_flatten(params))
    if not found:
        keys = ", ".join(str(k) for k in tree) or "none"
        raise ValueError(
            f"no ros__parameters for {node_name} (top-level keys: {keys}); a ROS params "
            f"file names the node ('/**', '{node_name}' or '/<namespace>/{node_name}')"
        )
    return merge(found)


def stride_warning(stride: int, segmentation: bool) -> str:
    """What dpt_node says (at start and in /diagnostics) when its cloud cannot feed a
    semantic layer; "" when it can."""
    if stride <= 1 or not segmentation:
        return ""
    return (
        f"cloud.stride is {stride} with segmentation: Nav2's semantic_segmentation_layer "
        "drops every frame whose cloud is smaller than its label image; set "
        "cloud.stride: 1 for it"
    )


def processing_warning(median_s: float, budget_s: float, segmentation: bool) -> str:
    """The /diagnostics warning when segmentation runs (the semantic costmap's input)
    and the median processing time per frame exceeds ``processing_time_budget`` (0 = no
    check); "" otherwise."""
    if not segmentation or budget_s <= 0 or median_s <= budget_s:
        return ""
    return (
        f"processing {median_s:.2f} s per frame exceeds processing_time_budget "
        f"{budget_s:g} s: a semantic costmap's tile_map_decay_time may hold fewer "
        "observations than samples_to_max_cost needs"
    )
