"""How fast dpt_node delivers its cloud: what Nav2's freshness checks hold it to.

Nav2 judges a source by two times (``dpt_ros.ros.nav2_checks`` quotes the source):

- the time between two clouds, against an observation source's
  ``expected_update_rate`` (seconds, despite the name): ``ObservationBuffer::isCurrent``
  compares the time since the last cloud arrived with it;
- the age of the newest cloud, against the collision monitor's ``source_timeout``:
  ``Source::sourceValid`` compares the time since the cloud's stamp (the image's) with
  it, so the age runs up to the node's latency (stamp to publish) plus one interval.

Both come from, best first:

- :func:`measured`: a running node's /diagnostics values (``latency_ms_median``,
  ``processing_ms_median``, ``processed_rate_hz``), read by ``dpt-ros doctor nav2
  --live``;
- :func:`estimate`: the documented speed figures (:data:`SPEED_FIGURES`, checked
  against the documentation by the tests) for the configured model, device and
  backend. They are CPU figures of one machine, for a 640x480 camera at the model's
  default network size: anything else is a range or unknown, never a guess.

No rclpy, no torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SpeedFigure:
    """One documented speed figure: the median time of the whole node pipeline per
    640x480 frame (image in, every message out), CPU fp32.

    Attributes:
        model: the depth model type, at its default network size.
        backend: what ran the network: ``torch`` or ``onnxruntime`` (what ``backend:
            auto`` runs on a CPU where onnxruntime imports).
        pipeline_ms: the figure, milliseconds.
        row: the first cell of the documentation's table row that holds it.
        cell: the text in that row that gives it.
    """

    model: str
    backend: str
    pipeline_ms: float
    row: str
    cell: str


#: The machine of :data:`SPEED_FIGURES` (the documentation's Speed section).
FIGURES_MACHINE = "a 2-core AMD EPYC CPU"
_DA3_ROW = (
    "whole node pipeline per frame (depth, confidence, metres from a calibration, PointCloud2)"
)
_DAV2_ROW = "whole node pipeline per frame, `depth_anything_v2_vits` 640x480"
#: Every documented whole-pipeline figure of a 640x480 camera at the model's default
#: network size (the dpt_hybrid onnxruntime row is for a 384x384 engine: not this).
SPEED_FIGURES: tuple[SpeedFigure, ...] = (
    SpeedFigure(
        "dpt_hybrid", "torch", 1484.0, "whole node pipeline per 640x480 frame, torch", "1484 ms"
    ),
    SpeedFigure("depth_anything_v2_vits", "onnxruntime", 1013.0, _DAV2_ROW, "1013 ms"),
    SpeedFigure("depth_anything_v2_vits", "torch", 1077.0, _DAV2_ROW, "1077 ms"),
    SpeedFigure("depth_anything_3_small", "onnxruntime", 451.0, _DA3_ROW, "451 ms auto"),
    SpeedFigure("depth_anything_3_small", "torch", 520.0, _DA3_ROW, "520 ms torch"),
)


@dataclass(frozen=True)
class Range:
    """Seconds known to lie in ``low..high``; None where a bound is unknown."""

    low: float | None
    high: float | None

    def text(self) -> str:
        if self.low is not None and self.high is not None:
            if math.isclose(self.low, self.high):
                return f"{self.low:.2f} s"
            return f"{self.low:.2f} to {self.high:.2f} s"
        if self.low is not None:
            return f"at least {self.low:.2f} s"
        if self.high is not None:
            return f"at most {self.high:.2f} s"
        return "unknown"

    def against(self, limit: float) -> str:
        """``over`` (surely above ``limit``), ``within`` (surely not) or ``unknown``."""
        if self.low is not None and self.low > limit:
            return "over"
        if self.high is not None and self.high <= limit:
            return "within"
        return "unknown"


@dataclass(frozen=True)
class CloudTiming:
    """How often dpt_node publishes a cloud and how old its newest cloud can be.

    Attributes:
        interval: seconds between two clouds.
        age: seconds from a cloud's stamp (its image's) until the next cloud is
            published: the most a consumer's newest cloud can be behind.
        source: where the numbers come from, for the reader (one clause).
        unknown_why: why they are not known (empty when they are, at least in part).
    """

    interval: Range
    age: Range
    source: str
    unknown_why: str = ""


def _given(node: Mapping[str, Any], name: str, default: Any) -> Any:
    value = node.get(name, default)
    return default if value is None else value


def figure_problem(node: Mapping[str, Any]) -> str:
    """Why the documented figures say nothing about this node, or ""."""
    model = str(_given(node, "depth.model_type", ""))
    device = str(_given(node, "device", "auto"))
    if device != "cpu":
        return (
            f"device {device}: the documented speed figures are CPU figures (no GPU "
            "figure was measured)"
        )
    if not any(f.model == model for f in SPEED_FIGURES):
        known = ", ".join(sorted({f.model for f in SPEED_FIGURES}))
        return f"no documented speed figure for {model or 'no depth model'} (there are for {known})"
    if str(_given(node, "precision", "auto")) not in ("auto", "fp32"):
        return f"precision {node['precision']}: the figures are fp32"
    if str(_given(node, "compile", "none")) != "none":
        return f"compile {node['compile']}: the figures are without torch.compile"
    if str(_given(node, "backend", "auto")) == "tensorrt":
        return "backend tensorrt on the CPU: no figure"
    if _given(node, "network_width", 0) or _given(node, "network_height", 0):
        return "a network size is given: the figures are for the model's default"
    size = (_given(node, "warmup_width", 640), _given(node, "warmup_height", 480))
    if tuple(size) != (640, 480):
        return (
            f"the figures are for a 640x480 camera; warmup_width x warmup_height (the "
            f"camera's size) is {size[0]}x{size[1]}"
        )
    return ""


def estimate(node: Mapping[str, Any]) -> CloudTiming:
    """The cloud's timing from the documented figures, for a node with the parameter
    values ``node`` (every dpt_node parameter by name)."""
    max_rate = float(_given(node, "max_rate", 0.0))
    floor = 1.0 / max_rate if max_rate > 0 else None  # max_rate spaces the frames
    problem = figure_problem(node)
    low = high = None
    source = ""
    if not problem:
        model = str(node["depth.model_type"])
        backend = str(_given(node, "backend", "auto"))
        figures = {f.backend: f.pipeline_ms / 1e3 for f in SPEED_FIGURES if f.model == model}
        if backend == "auto":
            # onnxruntime where it imports, torch kept where it measured faster.
            low, high = min(figures.values()), figures.get("torch")
            if "onnxruntime" not in figures:
                low = None  # onnxruntime's own time is not documented
        elif backend in figures:
            low = high = figures[backend]
        else:
            problem = f"no documented {backend} figure for {model}"
        shown = ", ".join(f"{b} {s * 1e3:.0f} ms" for b, s in sorted(figures.items()))
        source = (
            f"the documented figure for {model} on the CPU ({shown} per 640x480 frame "
            f"on {FIGURES_MACHINE}; --live measures the running node)"
        )
        extra = []
        if _given(node, "segmentation.model_type", ""):
            extra.append("a segmentation model adds its own pass")
        if len(_given(node, "cameras", ())) > 1:
            extra.append("several cameras share each pass")
        if extra:
            high = None
            source += f"; at least that: {' and '.join(extra)}"
    if problem:
        source = problem
    interval = Range(_most(low, floor), None if high is None else max(high, floor or 0.0))
    age = Range(
        None if interval.low is None else (low or 0.0) + interval.low,
        None if high is None or interval.high is None else high + interval.high,
    )
    if max_rate > 0:
        source += f"; max_rate {max_rate:g} Hz"
    return CloudTiming(interval, age, source, problem)


def _most(a: float | None, b: float | None) -> float | None:
    known = [v for v in (a, b) if v is not None]
    return max(known) if known else None


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def measured(samples: Sequence[tuple[float, Mapping[str, str]]], name: str) -> CloudTiming:
    """The cloud's timing from a running node's /diagnostics: ``samples`` of its status
    (named ``name``) as (seconds received, values), in order. The latency and processing
    time are the last sample's medians; the rate is the node's ``processed`` counter
    over the samples' span where it grew, else the last sample's ``processed_rate_hz``
    (one ``diagnostics_period``: noisy for a slow node).

    Raises:
        ValueError: no sample has processed frames.
    """
    if not samples:
        raise ValueError(f"{name} sent no /diagnostics")
    values = samples[-1][1]
    processing = _number(values.get("processing_ms_median"))
    if processing is None:
        raise ValueError(f"{name} has processed no frame yet (processing_ms_median nan)")
    processing /= 1e3
    # Stamp to publish; under use_sim_time only arrival to publish is measured.
    latency_ms = _number(values.get("latency_ms_median"))
    latency = processing if latency_ms is None else latency_ms / 1e3
    rate = _number(values.get("processed_rate_hz")) or 0.0
    span = samples[-1][0] - samples[0][0]
    first, last = _number(samples[0][1].get("processed")), _number(values.get("processed"))
    if span > 0 and first is not None and last is not None and last > first:
        rate = (last - first) / span
    cameras = sum(1 for k in values if k == "camera_info" or k.endswith(".camera_info"))
    if rate > 0:
        # Each camera gets a frame per pass: its clouds come cameras / rate apart.
        every = max(processing, max(cameras, 1) / rate)
        interval = Range(every, every)
    else:
        interval = Range(processing, None)  # no frame while listening: idle input
    age = Range(
        latency + (interval.low or 0.0),
        None if interval.high is None else latency + interval.high,
    )
    source = (
        f"measured by the running {name} (latency {latency * 1e3:.0f} ms, "
        f"{rate:.2f} Hz processed, on {values.get('device', 'its device')})"
    )
    return CloudTiming(interval, age, source)
