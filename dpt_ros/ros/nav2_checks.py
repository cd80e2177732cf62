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
  voxel index ``int((z - origin_z) / z_resolution)`` is below ``z_voxels`` (at most 16);
  ``inf_is_valid`` has no effect on a PointCloud2 source.
- nav2_lifecycle_manager: with ``bond_timeout > 0`` (default 4.0 s) it waits
  ``bond_timeout / 2`` after ACTIVATE for a bond whose id is the node's entry in
  ``node_names`` and aborts the bring-up without one; dpt_lifecycle_node's bond id is
  its name, as for Nav2's own nodes.

The node side comes from its parameter values (``dpt_ros.node.params`` names);
``processing_time_budget`` stands for its processing time per frame.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dpt_ros.viz.ade20k import CLASS_NAMES

#: The dpt_node topics a semantic layer reads, by the plugin's parameter name.
SEMANTIC_TOPICS = {
    "segmentation_topic": "segmentation/labels",
    "confidence_topic": "segmentation/confidence",
    "labels_topic": "segmentation/label_info",
    "pointcloud_topic": "points",
}
SEMANTIC_PLUGIN = "SemanticSegmentationLayer"
VOXEL_PLUGIN = "nav2_costmap_2d::VoxelLayer"
OBSTACLE_PLUGIN = "nav2_costmap_2d::ObstacleLayer"
#: The plugin's default tile_map_decay_time (s).
DEFAULT_DECAY_S = 5.0
#: nav2_voxel_grid keeps at most 16 voxels in a column.
MAX_Z_VOXELS = 16
#: nav2_lifecycle_manager's default bond_timeout (s).
DEFAULT_BOND_TIMEOUT_S = 4.0


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
    ) -> None:
        self.nav2, self.node, self.node_name = nav2, node, node_name
        self.bond_available = bond_available
        self.class_names = list(class_names)
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.namespace = namespace
        self.prefixes: list[str] | None = (
            node_topics(namespace, node.get("cameras", ())) if namespace is not None else None
        )
        self.checked = 0

    def add(self, where: str, problem: str, fix: str) -> None:
        self.findings.append(Finding(where, problem, fix))

    # -- topics -------------------------------------------------------------------
    def _prefix_of(self, topic: str, name: str) -> str | None:
        suffix = "/" + name
        return topic[: -len(suffix)] if topic.endswith(suffix) else None

    def our_topic(self, where: str, topic: str, name: str) -> None:
        """``topic`` must be dpt_node's ``name`` (under its namespace, where known)."""
        prefix = self._prefix_of(topic, name)
        if self.prefixes is None and prefix is not None:
            self.prefixes = [prefix]  # learnt from the first topic of ours
            return
        wanted = [f"{p}/{name}" for p in (self.prefixes or [""])]
        if topic not in wanted:
            self.add(
                where,
                f"{topic!r} is not a topic dpt_node publishes",
                f"use {' or '.join(repr(w) for w in wanted)}",
            )

    # -- semantic layer -----------------------------------------------------------
    def semantic_layer(self, path: tuple[str, ...], layer: dict) -> None:
        self.checked += 1
        where = _dotted(path)
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
        for key, name in SEMANTIC_TOPICS.items():
            topic = str(cfg.get(key, ""))
            if key == "confidence_topic" and not topic:
                self.notes.append(
                    f"{where}.confidence_topic is empty: the layer counts every "
                    "observation as confidence 255"
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
        base, top = int(group.get("base_cost", 0)), int(group.get("max_cost", 0))
        if top == base:
            return
        n = int(group.get("samples_to_max_cost", 0))
        confidence = int(group.get("mark_confidence", 0))
        if confidence >= 255:
            self.add(
                f"{where}.mark_confidence",
                f"is {confidence}: the mean confidence (at most 255) must be strictly "
                "greater, so max_cost is never reached",
                "use a value below 255 (128: the class's probability above one half)",
            )
        if n < 2:
            return
        decay = float(cfg.get("tile_map_decay_time", DEFAULT_DECAY_S))
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
        voxel = layer.get("plugin") == VOXEL_PLUGIN
        for source in str(layer.get("observation_sources", "")).split():
            cfg = layer.get(source)
            if not isinstance(cfg, Mapping) or cfg.get("data_type", "LaserScan") != "PointCloud2":
                continue
            topic = str(cfg.get("topic", ""))
            if not self._is_ours(topic):
                continue
            self.checked += 1
            src = f"{where}.{source}"
            self.our_topic(f"{src}.topic", topic, "points")
            if cfg.get("inf_is_valid"):
                self.add(
                    f"{src}.inf_is_valid",
                    "has no effect on a PointCloud2 source (Nav2 only warns)",
                    "remove it",
                )
            if "max_obstacle_height" not in cfg:
                self.add(
                    f"{src}.max_obstacle_height",
                    "is not set: Nav2 reads 0.0 and keeps no point above 0 m",
                    "set it (m), e.g. 2.0",
                )
            if voxel:
                self.voxel_column(where, src, layer, dict(cfg))

    def _is_ours(self, topic: str) -> bool:
        if self.prefixes is not None:
            return any(topic.startswith(p + "/") for p in self.prefixes)
        return topic.endswith("/points") or topic == "points"

    def voxel_column(self, where: str, src: str, layer: dict, cfg: dict) -> None:
        z_voxels = int(layer.get("z_voxels", 10))
        z_res = float(layer.get("z_resolution", 0.2))
        origin_z = float(layer.get("origin_z", 0.0))
        if z_voxels > MAX_Z_VOXELS:
            self.add(
                f"{where}.z_voxels",
                f"is {z_voxels}: the voxel grid keeps at most {MAX_Z_VOXELS}",
                f"z_voxels <= {MAX_Z_VOXELS} with a coarser z_resolution",
            )
            z_voxels = MAX_Z_VOXELS
        top = min(
            float(layer.get("max_obstacle_height", 2.0)),
            float(cfg.get("max_obstacle_height", 0.0)),
        )
        if top <= origin_z or voxel_index(top, origin_z, z_res) < z_voxels:
            return
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

    # -- lifecycle manager --------------------------------------------------------
    def lifecycle_manager(self, path: tuple[str, ...], params: dict) -> None:
        names = params.get("node_names") or []
        ours = [n for n in names if str(n).rstrip("/").rsplit("/", 1)[-1] == self.node_name]
        if not ours:
            return
        self.checked += 1
        where = _dotted(path)
        timeout = float(params.get("bond_timeout", DEFAULT_BOND_TIMEOUT_S))
        period = float(self.node.get("bond_heartbeat_period", 0.1))
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
            if tree.get("plugin") in (VOXEL_PLUGIN, OBSTACLE_PLUGIN):
                self.point_sources(path, tree)
            params = tree.get("ros__parameters")
            if isinstance(params, Mapping) and "node_names" in params:
                self.lifecycle_manager((*path, "ros__parameters"), dict(params))
        if not self.checked:
            self.add(
                "nav2 parameters",
                f"nothing uses dpt_node: no semantic layer, no PointCloud2 source on its "
                f"'points' and no lifecycle manager listing {self.node_name!r}",
                "pass the Nav2 parameters file that configures the costmap or the manager",
            )
        return Report(self.findings, self.notes)


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
    """
    return _Checker(nav2, node, namespace, node_name, bond_available, class_names).run()


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
