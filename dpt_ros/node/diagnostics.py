"""What a running ``dpt_node`` says about itself: counters and latencies, the values
and level of its /diagnostics message, and its periodic status line.

The node counts (executor thread and inference worker, under one lock) and asks for
the texts; the inputs' own health (camera_info per camera, events over a recent
window) is :mod:`dpt_ros.node.health`. No rclpy Node here.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from dpt_ros.models.predictor import Predictor
from dpt_ros.node.alignment_io import NodeAlignment
from dpt_ros.node.cameras import Camera
from dpt_ros.node.health import ERROR, INPUT_STALE_S, OK, WARN, RecentEvents
from dpt_ros.pipeline.frames import FramePipeline, Stabilized
from dpt_ros.pipeline.status import NoMetres
from dpt_ros.ros.nav2_checks import processing_warning, stride_warning

#: Latencies kept for the medians.
_KEPT = 100


@dataclasses.dataclass
class Stats:
    """The node's counters since it started, and its recent latencies (ms)."""

    received: int = 0
    processed: int = 0
    rejected: int = 0
    failed: int = 0
    latency_ms: list[float] = dataclasses.field(default_factory=list)
    processing_ms: list[float] = dataclasses.field(default_factory=list)
    last_error: str = ""


def backend_text(p: Predictor) -> str:
    """``onnxruntime (cached engine)``, ``tensorrt (engine built this start)``, ``torch
    (onnxruntime engine building)``, ``onnxruntime (engine built this start, switched
    from torch)``, ``torch``: see :attr:`Predictor.backend_status`."""
    return p.backend_status


def _predictors(pipeline: FramePipeline) -> list[Predictor]:
    return [p for p in (pipeline.depth, pipeline.segmentation) if p is not None]


def backends_text(pipeline: FramePipeline, licence: bool = False) -> str:
    """``name backend`` of each model; with ``licence`` also its weights' licence
    (they differ by model: Depth Anything V2 Base and Large and Depth Anything 3 Large are
    non-commercial)."""
    return ", ".join(
        f"{p.spec.name}{f' (weights licence {p.spec.licence})' if licence else ''} "
        f"{backend_text(p)}"
        for p in _predictors(pipeline)
    )


def device_text(pipeline: FramePipeline) -> str:
    """The device and precision the models run at, e.g. ``cuda:0 float16``."""
    p = pipeline.main
    return f"{p.device} {str(p.dtype).replace('torch.', '')}"


def _models_text(pipeline: FramePipeline) -> str:
    return " + ".join(p.spec.name for p in _predictors(pipeline))


def _median_text(values: list[float]) -> str:
    return f"{float(np.median(values)):.1f}" if values else "nan"


class NodeDiagnostics:
    """Counters of a started node and what it reports from them.

    Args:
        cameras: the node's cameras.
        pipeline: its models.
        alignment: its online alignment, or None.
        label_info: the state of ``segmentation/label_info``.
        sim_time: whether the node's clock follows /clock now (latencies from stamps
            are then meaningless).
    """

    def __init__(
        self,
        cameras: Sequence[Camera],
        pipeline: FramePipeline,
        alignment: NodeAlignment | None,
        label_info: str,
        sim_time: Callable[[], bool],
        processing_budget_s: float = 0.0,
    ) -> None:
        self._cameras = cameras
        self._processing_budget_s = processing_budget_s
        self._pipeline = pipeline
        self._alignment = alignment
        self._label_info = label_info
        self._sim_time = sim_time
        self.stats = Stats()
        self.recent = RecentEvents()
        self.lock = threading.Lock()
        self._started_at = time.monotonic()
        self._window_start = self._started_at
        self._window_counts = (0, 0)
        #: Whether some camera's alignment is not publishing fitted metres (set by status).
        self.alignment_warn = False
        #: The node's windows of views (any_view.*), whose state /diagnostics carries.
        self.any_view: Any = None

    # -- counting (executor thread and inference worker) ---------------------------
    def received(self, cam: Camera) -> None:
        """An image arrived for ``cam``."""
        with self.lock:
            self.stats.received += 1
            cam.received += 1
            cam.last_image_at = time.monotonic()

    def processed(self, cam: Camera, latency_ms: float | None, processing_ms: float) -> None:
        """A frame of ``cam`` was published; ``latency_ms`` None under sim time."""
        with self.lock:
            s = self.stats
            s.processed += 1
            cam.processed += 1
            if latency_ms is not None:
                s.latency_ms.append(latency_ms)
                del s.latency_ms[:-_KEPT]
            s.processing_ms.append(processing_ms)
            del s.processing_ms[:-_KEPT]

    def failed(self, frames: int, error: str) -> None:
        """A batch of ``frames`` failed in inference with ``error``."""
        self.recent.add("failed")
        with self.lock:
            self.stats.failed += frames
            self.stats.last_error = error

    def rejected(self, cam: Camera, text: str, count: bool = True) -> str:
        """A frame or camera_info of ``cam`` was rejected (``count``: the frame is lost);
        returns the text to warn with, naming the camera."""
        text = cam.prefixed(text)
        self.recent.add("rejected")
        with self.lock:
            if count:
                self.stats.rejected += 1
                cam.rejected += 1
            self.stats.last_error = text
        return text

    def stabilized(self, cam: Camera, result: Stabilized, stamp_s: float) -> str | None:
        """A frame of ``cam`` went through temporal stabilisation; when its stream
        started again for a reason of its own (a failed fit: a scene cut, a covered
        lens; a gap; a stamp going back), counts it and returns the text to log."""
        if not result.restarted:
            return None
        with self.lock:
            cam.temporal_resets += 1
            cam.temporal_last_reset = f"{result.reason} (stamp {stamp_s:.3f} s)"
        return cam.prefixed(f"temporal stabilisation started again: {result.reason}")

    def metres(self, cam: Camera, missing: NoMetres | None) -> str | None:
        """A frame of ``cam`` went through the pipeline, with ``missing`` why a model that
        needs its focal length for metres (metric Depth Anything 3) published none (None:
        it did, or needs none); returns the text to warn with the first time ``cam`` has
        that reason."""
        reason = "" if missing is None else str(missing)
        with self.lock:
            cam.no_metres = reason
            if not reason or reason in cam.no_metres_logged:
                return None
            cam.no_metres_logged.add(reason)
        return cam.prefixed(reason)

    # -- reporting -----------------------------------------------------------------
    def _latency_text(self, latency_ms: list[float]) -> str:
        if self._sim_time():
            return "unavailable (use_sim_time: see processing_ms_median)"
        return _median_text(latency_ms)

    def _dropped(self) -> int:
        return sum(cam.frames.dropped for cam in self._cameras)

    def _counters(self) -> dict[str, str]:
        """The counters and rates since the last call (takes the lock)."""
        now = time.monotonic()
        with self.lock:
            s = self.stats
            dt = max(now - self._window_start, 1e-6)
            rin = (s.received - self._window_counts[0]) / dt
            rout = (s.processed - self._window_counts[1]) / dt
            self._window_start, self._window_counts = now, (s.received, s.processed)
            values = {
                "input_rate_hz": f"{rin:.2f}",
                "processed_rate_hz": f"{rout:.2f}",
                "received": str(s.received),
                "processed": str(s.processed),
                "dropped": str(self._dropped()),
                "rejected": str(s.rejected),
                "failed": str(s.failed),
                "latency_ms_median": self._latency_text(s.latency_ms),
                "processing_ms_median": _median_text(s.processing_ms),
                "device": device_text(self._pipeline),
                "models": _models_text(self._pipeline),
                "backend": backends_text(self._pipeline),
                "last_error": s.last_error,
            }
            if len(self._cameras) > 1 or self._cameras[0].name:
                for cam in self._cameras:
                    values.update(
                        {
                            f"{cam.name}.received": str(cam.received),
                            f"{cam.name}.processed": str(cam.processed),
                            f"{cam.name}.dropped": str(cam.frames.dropped),
                            f"{cam.name}.rejected": str(cam.rejected),
                        }
                    )
        return values

    def status(self) -> dict[str, str]:
        """Current counters and rates as strings (what /diagnostics carries)."""
        values = self._counters()
        if self._pipeline.segmentation is not None:
            values["label_info"] = self._label_info
        values["rejected_recent"] = str(self.recent.count("rejected"))
        values["failed_recent"] = str(self.recent.count("failed"))
        for cam in self._cameras:
            key = f"{cam.name}.camera_info" if cam.name else "camera_info"
            values[key] = f"{cam.info.status()[1]} ({cam.info.topic})"
        if self._alignment is not None:
            alignment, self.alignment_warn = self._alignment.status(self._cameras)
            values.update(alignment)
        depth = self._pipeline.depth
        if depth is not None and depth.spec.camera_requirement:
            with self.lock:
                for cam in self._cameras:
                    key = f"{cam.name}.metric_depth" if cam.name else "metric_depth"
                    values[key] = f"none: {cam.no_metres}" if cam.no_metres else "published"
        if self.any_view is not None:
            values.update(self.any_view.status())
        if self._pipeline.temporal is not None:
            with self.lock:
                for cam in self._cameras:
                    prefix = f"{cam.name}." if cam.name else ""
                    values[prefix + "temporal.resets"] = str(cam.temporal_resets)
                    values[prefix + "temporal.last_reset"] = cam.temporal_last_reset
        return values

    def problems(self) -> list[tuple[int, str]]:
        """What is wrong now, as (diagnostic level, text): failures (ERROR) and rejected
        frames in the recent window, stale input, and each camera's camera_info while its
        images come (WARN)."""
        out: list[tuple[int, str]] = []
        window = f"in the last {self.recent.window:.0f} s"
        failed, rejected = self.recent.count("failed"), self.recent.count("rejected")
        if failed:
            out.append((ERROR, f"{failed} failed inference batches {window}"))
        if rejected:
            out.append((WARN, f"{rejected} frames or camera_infos rejected {window}"))
        if self.alignment_warn:
            out.append((WARN, "relative depth alignment has no usable fit"))
        with self.lock:
            processing = sorted(self.stats.processing_ms)
        median_s = processing[len(processing) // 2] / 1e3 if processing else 0.0
        segmentation = self._pipeline.segmentation is not None
        for text in (
            stride_warning(self._pipeline.options.cloud_stride, segmentation),
            processing_warning(median_s, self._processing_budget_s, segmentation),
        ):
            if text:
                out.append((WARN, text))
        with self.lock:
            out += [(WARN, cam.prefixed(cam.no_metres)) for cam in self._cameras if cam.no_metres]
        now = time.monotonic()
        for cam in self._cameras:
            idle = now - (cam.last_image_at or self._started_at)
            if idle > INPUT_STALE_S:
                what = "no image yet" if cam.last_image_at is None else "no image"
                out.append((WARN, cam.prefixed(f"input stale: {what} for {idle:.1f} s")))
            elif cam.last_image_at is not None:
                level, text = cam.info.status()
                if level != OK:
                    out.append((level, cam.prefixed(text)))
        return out

    def message(self, node_name: str, stamp: Time) -> DiagnosticArray:
        """The /diagnostics message of the node named ``node_name`` (fully qualified)."""
        values = self.status()
        problems = self.problems()
        status = DiagnosticStatus()
        status.name = f"{node_name}: DPT inference"
        status.hardware_id = values["device"]
        status.level = max((level for level, _ in problems), default=OK)
        status.message = "; ".join(
            [
                f"{values['processed_rate_hz']} Hz processed of "
                f"{values['input_rate_hz']} Hz in, latency {values['latency_ms_median']} ms, "
                f"processing {values['processing_ms_median']} ms"
            ]
            + [text for _, text in problems]
        )
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = stamp
        array.status = [status]
        return array

    def log_line(self) -> str:
        """The periodic status log line."""
        with self.lock:
            s = self.stats
            return (
                f"frames in {s.received}, processed {s.processed}, dropped "
                f"{self._dropped()}, rejected {s.rejected}, failed {s.failed}, "
                f"latency {self._latency_text(s.latency_ms)} ms, processing "
                f"{_median_text(s.processing_ms)} ms, {_models_text(self._pipeline)} on "
                f"{device_text(self._pipeline)}"
            )
