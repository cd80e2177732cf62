"""kiwicampus semantic_segmentation_layer (rolling branch, as of 2026-04; Humble and
Jazzy differ in ROS API only), its callbacks emulated line by line in Python for the
tests: what the plugin does with our topics and the shipped YAML.

- ``onInitialize``: per source, its class types; a type without classes is skipped;
  each class name maps to its type's cost parameters (``unordered_map::insert``: the
  first type listing a name wins); no class at all exits.
- ``labelinfoCb`` -> ``createSegmentationCostMultimap``: each LabelInfo name that no
  type defines logs "CRITICAL ERROR: Class '...' from label_info is not defined" and is
  left out; the rest map id -> cost parameters.
- ``syncSegmConfPointcloudCb``: drops a frame whose cloud width * height differs from
  the label image's, whose label data is short, or that arrives before any LabelInfo
  ("Class map is empty"); else ``bufferSegmentation``.
- ``bufferSegmentation``: the cloud in the global frame, walked in step with the mask's
  pixels (row-major); non-finite z skipped; squared distance to the sensor origin at
  or beyond max^2 or at or within min^2 skipped; per tile (floor(x / resolution)) one
  pixel, the one with the larger max_cost (use_cost_selection) or confidence; purge
  observations older than the decay time at the cloud's stamp; push the tile's pixel
  if its class id is defined (dominant_priority classes clear the others).
- ``updateBounds``: purge at the node's time; a tile takes max_cost when its dominant
  class has at least samples_to_max_cost observations and their mean confidence is
  strictly greater than mark_confidence, else base_cost.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32


@dataclass
class Cost:
    base_cost: int
    max_cost: int
    mark_confidence: int
    samples_to_max_cost: int
    dominant_priority: bool


class ObservationQueue:
    """TemporalObservationQueue: per class a deque of (confidence, stamp)."""

    def __init__(self) -> None:
        self.queues: dict[int, deque] = {}
        self.sums: dict[int, float] = {}
        self.dominant = -1
        self.dominant_size = 0

    def push(self, class_id: int, confidence: float, stamp: float, dominant: bool) -> None:
        queue = self.queues.setdefault(class_id, deque())
        queue.append((confidence, stamp))
        self.sums[class_id] = self.sums.get(class_id, 0.0) + confidence
        if dominant or len(queue) > self.dominant_size:
            if self.dominant not in (-1, class_id):
                for other in [c for c in self.queues if c != class_id]:
                    del self.queues[other]
                    del self.sums[other]
            self.dominant, self.dominant_size = class_id, len(queue)

    def purge(self, now: float, decay: float) -> None:
        removed = False
        for class_id in list(self.queues):
            queue = self.queues[class_id]
            while queue and now - queue[0][1] > decay:
                self.sums[class_id] -= queue.popleft()[0]
            if not queue:
                removed |= class_id == self.dominant
                del self.queues[class_id]
                del self.sums[class_id]
        if removed:
            self.dominant, self.dominant_size = -1, 0
            for class_id, queue in self.queues.items():
                if len(queue) > self.dominant_size:
                    self.dominant, self.dominant_size = class_id, len(queue)
        elif self.dominant != -1:
            if self.dominant in self.queues:
                self.dominant_size = len(self.queues[self.dominant])
            else:
                self.dominant, self.dominant_size = -1, 0


@dataclass
class Source:
    """One observation source of the layer, from its parameters."""

    params: dict
    resolution: float = 0.05
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        p = self.params
        self.decay = float(p.get("tile_map_decay_time", 5.0))
        self.max_d = float(p.get("max_obstacle_distance", 5.0))
        self.min_d = float(p.get("min_obstacle_distance", 0.3))
        self.use_cost_selection = bool(p.get("use_cost_selection", True))
        self.names: dict[str, Cost] = {}
        for class_type in p.get("class_types", []):
            group = p.get(class_type, {})
            if not group.get("classes"):
                self.log.append(f"ERROR no classes defined on type {class_type}")
                continue
            cost = Cost(
                int(group.get("base_cost", 0)),
                int(group.get("max_cost", 0)),
                int(group.get("mark_confidence", 0)),
                int(group.get("samples_to_max_cost", 0)),
                bool(group.get("dominant_priority", False)),
            )
            for name in group["classes"]:
                self.names.setdefault(name, cost)
        if not self.names:
            raise SystemExit("No classes defined for source")
        self.ids: dict[int, Cost] = {}
        self.tiles: dict[tuple[int, int], ObservationQueue] = {}

    def label_info(self, class_map: list[tuple[int, str]]) -> None:
        ids = {}
        for class_id, name in class_map:
            if name not in self.names:
                self.log.append(
                    f"ERROR CRITICAL ERROR: Class '{name}' from label_info is not defined "
                    "in the costmap parameters! This class will be ignored."
                )
                continue
            ids[class_id % 256] = self.names[name]  # the plugin keeps uint8 ids
        self.ids = ids

    def frame(self, labels, confidence, cloud, to_global) -> bool:
        """syncSegmConfPointcloudCb; True when the frame was buffered."""
        if labels.width * labels.height != cloud.width * cloud.height:
            self.log.append("WARN Pointcloud and segmentation sizes are different")
            return False
        if len(labels.data) < labels.width * labels.height:
            self.log.append("WARN segmentation arrays have wrong sizes")
            return False
        if not self.ids:
            self.log.append("WARN Class map is empty")
            return False
        xyz = read_xyz(cloud)
        stamp = cloud.header.stamp.sec + cloud.header.stamp.nanosec * 1e-9
        self.buffer(np.asarray(labels.data), np.asarray(confidence.data), xyz, stamp, to_global)
        return True

    def buffer(self, labels, confidence, xyz, stamp, to_global) -> None:
        origin = to_global(np.zeros((1, 3)))[0]
        pts = to_global(xyz)
        best: dict[tuple[int, int], int] = {}
        for idx in range(labels.size):
            x, y, z = pts[idx]
            if not math.isfinite(z):
                continue
            sq = float(np.sum((pts[idx] - origin) ** 2))
            if sq >= self.max_d**2 or sq <= self.min_d**2:
                continue
            tile = (math.floor(x / self.resolution), math.floor(y / self.resolution))
            if tile in best:
                old = best[tile]
                if self.use_cost_selection:
                    if self._cost(labels[idx]).max_cost > self._cost(labels[old]).max_cost:
                        best[tile] = idx
                elif confidence[idx] > confidence[old]:
                    best[tile] = idx
            else:
                best[tile] = idx
        for queue in self.tiles.values():
            queue.purge(stamp, self.decay)
        for tile, idx in best.items():
            class_id = int(labels[idx])
            if class_id in self.ids:
                queue = self.tiles.setdefault(tile, ObservationQueue())
                queue.push(
                    class_id, float(confidence[idx]), stamp, self.ids[class_id].dominant_priority
                )

    def _cost(self, class_id) -> Cost:
        # getCostById of an id the map lacks: default parameters (all 0).
        return self.ids.get(int(class_id), Cost(0, 0, 0, 0, False))

    def update_bounds(self, now: float) -> dict[tuple[int, int], int]:
        """The cost of each observed tile at the node's time ``now``."""
        costs = {}
        for tile, queue in self.tiles.items():
            queue.purge(now, self.decay)
            if queue.dominant == -1:
                continue
            cost = self.ids[queue.dominant]
            mean = queue.sums[queue.dominant] / queue.dominant_size
            if queue.dominant_size >= cost.samples_to_max_cost and mean > cost.mark_confidence:
                costs[tile] = cost.max_cost
            else:
                costs[tile] = cost.base_cost
        return costs


def read_xyz(cloud) -> np.ndarray:
    """(N, 3) float: x, y, z of every point in data order (PointCloud2ConstIterator)."""
    offsets = {f.name: f for f in cloud.fields}
    n = cloud.width * cloud.height
    data = np.frombuffer(bytes(cloud.data), dtype=np.uint8)
    out = np.empty((n, 3))
    for i, axis in enumerate("xyz"):
        f = offsets[axis]
        assert f.datatype == FLOAT32, axis
        column = np.lib.stride_tricks.as_strided(
            data[f.offset :], shape=(n, 4), strides=(cloud.point_step, 1)
        )
        out[:, i] = np.ascontiguousarray(column).view("<f4")[:, 0]
    return out


def optical_to_base(height: float = 0.5):
    """A camera looking along the base's x axis, ``height`` m up: x = z_opt, y = -x_opt,
    z = height - y_opt (the tf the layer's message filter would apply)."""

    def transform(p: np.ndarray) -> np.ndarray:
        return np.stack([p[:, 2], -p[:, 0], height - p[:, 1]], axis=1)

    return transform
