"""``dpt_node``: camera images in; depth, label maps and PointCloud2 out.

The node is glue: parameters (``node_params``), decoding (``ros.image_codec``) and
processing (``pipeline.FramePipeline``) live elsewhere. Inference runs on a worker
thread fed by a one-slot queue, so the newest frame always wins and callbacks never
wait for the model.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from .models import CheckpointError, Predictor
from .node_params import PARAMS, NodeConfig, config_from_values, descriptor, validate
from .pipeline import OUTPUT_TOPICS, FramePipeline, PipelineOptions
from .ros.image_codec import ImageDecodeError, compressed_to_rgb, image_to_rgb

_WARN_THROTTLE_S = 5.0


class LatestFrame:
    """A one-slot queue: ``put`` replaces what is waiting (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def get(self, timeout: float) -> Any:
        """The waiting item (and empties the slot), or None after ``timeout`` or close."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclasses.dataclass
class _Stats:
    received: int = 0
    processed: int = 0
    rejected: int = 0
    failed: int = 0
    latency_ms: List[float] = dataclasses.field(default_factory=list)
    last_error: str = ""


def _qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=(ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort"
                     else ReliabilityPolicy.RELIABLE))


def _options(cfg: NodeConfig) -> PipelineOptions:
    return PipelineOptions(
        output_size=cfg.output_size, relative_scale=cfg.relative_depth_scale,
        relative_shift=cfg.relative_depth_shift, cloud_enabled=cfg.cloud_enabled,
        cloud_stride=cfg.cloud_stride, cloud_max_depth=cfg.cloud_max_depth,
        cloud_color=cfg.cloud_color, cloud_labels=cfg.cloud_labels)


class DptNode(Node):
    """DPT depth and segmentation node. See the README for parameters and topics.

    Raises:
        ValueError: invalid parameters (the message lists each problem).
        CheckpointError: weights missing, unreadable or for another model.
    """

    def __init__(self, node_name: str = "dpt_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        values = {}
        for p in PARAMS:
            try:
                self.declare_parameter(p.name, p.default, descriptor(p))
            except ParameterException as exc:  # an override outside its range or type
                raise ValueError(f"invalid parameter {p.name}: {exc}") from None
            values[p.name] = self.get_parameter(p.name).value
        self.config = config_from_values(values)
        cfg = self.config

        self.pipeline = FramePipeline(self._predictor("depth"), self._predictor("segmentation"),
                                      _options(cfg))
        self._warm_up()

        out_qos = _qos(cfg.qos_output_reliability, cfg.qos_output_depth)
        topics = set(self.pipeline.topics())
        if self.pipeline.depth is not None and not self.pipeline.depth.spec.is_metric:
            # A calibration can be set at run time: have these ready.
            topics |= {"depth/image", "points"}
        self._pubs = {t: self.create_publisher(OUTPUT_TOPICS[t], t, out_qos)
                      for t in OUTPUT_TOPICS if t in topics}
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self._info_lock = threading.Lock()
        self._camera_info: Optional[CameraInfo] = None
        self._queue = LatestFrame()
        self._stats = _Stats()
        self._stats_lock = threading.Lock()
        self._window_start = time.monotonic()
        self._window_counts = (0, 0)
        self._last_frame_time = 0.0

        in_qos = _qos(cfg.qos_input_reliability, cfg.qos_input_depth)
        if cfg.input_transport == "compressed":
            topic = self.resolve_topic_name("image") + "/compressed"
            self._image_sub = self.create_subscription(CompressedImage, topic, self._on_image,
                                                       in_qos)
        else:
            self._image_sub = self.create_subscription(Image, "image", self._on_image, in_qos)
        self._info_sub = self.create_subscription(CameraInfo, "camera_info",
                                                  self._on_camera_info, in_qos)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._diag_timer = self.create_timer(cfg.diagnostics_period, self._publish_diagnostics)
        self._log_timer = (self.create_timer(cfg.log_period, self._log_status)
                           if cfg.log_period > 0 else None)

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="dpt_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: {self._models_text()} on {self._device_text()}, input "
            f"{self._image_sub.topic_name} ({cfg.input_transport}), publishing "
            f"{', '.join(sorted(self._pubs))}")

    # -- set-up -------------------------------------------------------------------
    def _predictor(self, task: str) -> Optional[Predictor]:
        cfg = self.config
        model_type = getattr(cfg, f"{task}_model_type")
        if not model_type:
            return None
        size = None
        if cfg.network_width or cfg.network_height:
            from .models import get_spec
            spec = get_spec(model_type)
            size = (cfg.network_width or spec.net_width, cfg.network_height or spec.net_height)
        random = getattr(cfg, f"{task}_random_weights")
        if random:
            self.get_logger().warning(
                f"{task}: {model_type} with RANDOM weights (parameter {task}.random_weights): "
                "its outputs are meaningless")
        return Predictor(model_type, getattr(cfg, f"{task}_weights") or None, cfg.device,
                         cfg.precision, random_weights=random, network_size=size,
                         keep_aspect_ratio=cfg.keep_aspect_ratio)

    def _warm_up(self) -> None:
        for p in (self.pipeline.depth, self.pipeline.segmentation):
            if p is not None:
                h, w = p.net_hw
                p.predict(np.zeros((h, w, 3), np.uint8))

    def _models_text(self) -> str:
        names = [p.spec.name for p in (self.pipeline.depth, self.pipeline.segmentation) if p]
        return " + ".join(names)

    def _device_text(self) -> str:
        p = self.pipeline.depth or self.pipeline.segmentation
        return f"{p.device} {str(p.dtype).replace('torch.', '')}"

    # -- callbacks (executor thread; never wait on the model) -----------------------
    def _on_image(self, msg: Any) -> None:
        with self._stats_lock:
            self._stats.received += 1
        self._queue.put(msg)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._info_lock:
            self._camera_info = msg

    def _on_set_parameters(self, params: List[Any]) -> SetParametersResult:
        values = {p.name: p.value for p in params}
        problems = validate(values)
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        updates = {NodeConfig.field_name(k): (float(v) if isinstance(getattr(
            self.config, NodeConfig.field_name(k)), float) else v)
            for k, v in values.items() if hasattr(self.config, NodeConfig.field_name(k))}
        self.config = dataclasses.replace(self.config, **updates)
        self.pipeline.options = _options(self.config)
        return SetParametersResult(successful=True)

    # -- worker thread ------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            msg = self._queue.get(timeout=0.1)
            if msg is None:
                continue
            rate = self.config.max_rate
            if rate > 0:
                wait = self._last_frame_time + 1.0 / rate - time.monotonic()
                if wait > 0:
                    # Wait out the period; a newer frame arriving meanwhile replaces this one.
                    if self._stop.wait(wait):
                        break
                    newer = self._queue.get(timeout=0.0)
                    if newer is not None:
                        self._queue.dropped += 1
                        msg = newer
            self._last_frame_time = time.monotonic()
            self._process(msg)

    def _process(self, msg: Any) -> None:
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        except ImageDecodeError as exc:
            self._reject(f"image rejected: {exc}")
            return
        with self._info_lock:
            info = self._camera_info
        try:
            out = self.pipeline.process(rgb, msg.header, info)
        except Exception as exc:  # keep the node alive (e.g. CUDA out of memory)
            with self._stats_lock:
                self._stats.failed += 1
                self._stats.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"inference failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=_WARN_THROTTLE_S)
            return
        for warning in out.warnings:
            self._reject(warning, count=False)
        for topic, message in out.messages.items():
            pub = self._pubs.get(topic)
            if pub is not None:
                pub.publish(message)
        latency = (self.get_clock().now().nanoseconds
                   - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6
        with self._stats_lock:
            self._stats.processed += 1
            self._stats.latency_ms.append(latency)
            del self._stats.latency_ms[:-100]

    def _reject(self, text: str, count: bool = True) -> None:
        with self._stats_lock:
            if count:
                self._stats.rejected += 1
            self._stats.last_error = text
        self.get_logger().warning(text, throttle_duration_sec=_WARN_THROTTLE_S)

    # -- status -------------------------------------------------------------------
    def status(self) -> Dict[str, str]:
        """Current counters and rates as strings (what /diagnostics carries)."""
        now = time.monotonic()
        with self._stats_lock:
            s = self._stats
            dt = max(now - self._window_start, 1e-6)
            rin = (s.received - self._window_counts[0]) / dt
            rout = (s.processed - self._window_counts[1]) / dt
            self._window_start, self._window_counts = now, (s.received, s.processed)
            lat = float(np.median(s.latency_ms)) if s.latency_ms else float("nan")
            values = {
                "input_rate_hz": f"{rin:.2f}", "processed_rate_hz": f"{rout:.2f}",
                "received": str(s.received), "processed": str(s.processed),
                "dropped": str(self._queue.dropped), "rejected": str(s.rejected),
                "failed": str(s.failed), "latency_ms_median": f"{lat:.1f}",
                "device": self._device_text(), "models": self._models_text(),
                "last_error": s.last_error,
            }
        return values

    def _publish_diagnostics(self) -> None:
        values = self.status()
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: DPT inference"
        status.hardware_id = values["device"]
        failing = int(values["failed"]) or int(values["rejected"])
        status.level = DiagnosticStatus.WARN if failing else DiagnosticStatus.OK
        status.message = (f"{values['processed_rate_hz']} Hz processed of "
                          f"{values['input_rate_hz']} Hz in, latency {values['latency_ms_median']} ms")
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diag_pub.publish(array)

    def _log_status(self) -> None:
        with self._stats_lock:
            s = self._stats
            lat = float(np.median(s.latency_ms)) if s.latency_ms else float("nan")
            text = (f"frames in {s.received}, processed {s.processed}, dropped "
                    f"{self._queue.dropped}, rejected {s.rejected}, failed {s.failed}, "
                    f"latency {lat:.1f} ms, {self._models_text()} on {self._device_text()}")
        self.get_logger().info(text)

    # -- shutdown -----------------------------------------------------------------
    def destroy_node(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._queue.close()
            self._worker.join(timeout=30.0)
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    """Console entry point: ``ros2 run dpt_ros dpt_node``."""
    rclpy.init(args=args)
    node: Optional[DptNode] = None
    code = 0
    try:
        node = DptNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except (ValueError, CheckpointError) as exc:
        rclpy.logging.get_logger("dpt_node").fatal(str(exc))
        code = 1
    except Exception as exc:  # ExternalShutdownException and friends end quietly
        if type(exc).__name__ != "ExternalShutdownException":
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
