"""``dpt_node``: camera images in; depth, label maps and PointCloud2 out.

The node is glue: parameters (``node.params``), decoding (``ros.image_codec``) and
processing (``pipeline.FramePipeline``) live elsewhere. Inference runs on a worker
thread fed by one-slot queues, one per camera, so the newest frame of each camera
always wins and callbacks never wait for the model. Each cycle the worker takes the
latest frame of every camera that has one and runs them as one batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType, ROSClock
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from dpt_ros.models import CheckpointError, Predictor
from dpt_ros.models.errors import RandomWeightsWarning
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.node.alignment_io import NodeAlignment
from dpt_ros.node.graph_checks import DuplicateNameCheck
from dpt_ros.node.health import (
    ERROR,
    INPUT_STALE_S,
    OK,
    WARN,
    CameraInfoTracker,
    RecentEvents,
    sibling_topic,
)
from dpt_ros.node.param_checks import declare_all, unknown_overrides
from dpt_ros.node.params import config_from_values, validate
from dpt_ros.node.throttle import KeyedThrottle, reason_key
from dpt_ros.pipeline.frames import (
    ON_DEMAND_TOPICS,
    OUTPUT_TOPICS,
    SKIPPABLE_TOPICS,
    FramePipeline,
)
from dpt_ros.ros.image_codec import ImageDecodeError, compressed_to_rgb, image_to_rgb
from dpt_ros.ros.label_info import import_vision_msgs, label_info_message
from dpt_ros.ros.messages import stamp_ns

_WARN_THROTTLE_S = 5.0
#: Longest wait (s) for the inference worker to finish its batch at shutdown.
_STOP_TIMEOUT_S = 10.0


class LatestFrame:
    """A one-slot queue: ``put`` replaces what is waiting (counted as dropped).

    Args:
        condition: shared by several slots so that one consumer can wait for any of
            them (``take_any``); None = a condition of its own.
    """

    def __init__(self, condition: threading.Condition | None = None) -> None:
        self._cond = condition if condition is not None else threading.Condition()
        self._item: Any = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

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

    @staticmethod
    def take_any(slots: Sequence[LatestFrame], timeout: float) -> list[Any]:
        """Waits until at least one slot holds an item (or ``timeout``, or a slot is
        closed), then empties every slot, without waiting for the others.

        Args:
            slots: queues created with one shared condition.
            timeout: seconds to wait while every slot is empty.

        Returns:
            One entry per slot: its item, or None where it held none.
        """
        cond = slots[0]._cond
        if any(s._cond is not cond for s in slots):
            raise ValueError("take_any needs slots created with one shared condition")
        with cond:
            cond.wait_for(lambda: any(s._item is not None or s._closed for s in slots), timeout)
            items = [s._item for s in slots]
            for s in slots:
                s._item = None
            return items


class _Camera:
    """One input camera: topics, latest frame and camera_info, publishers, counters.

    Args:
        name: its namespace as configured (normalised); "" = the node's own namespace
            (the single-camera set-up, with the original topic names and messages).
        condition: the wake-up shared by every camera's frame slot.
    """

    def __init__(self, name: str, condition: threading.Condition) -> None:
        self.name = name
        self.frames = LatestFrame(condition)
        #: Its camera_info subscription's messages (set with the subscriptions).
        self.info = CameraInfoTracker("camera_info")
        self.publishers: dict[str, Any] = {}
        self.received = 0
        self.processed = 0
        self.rejected = 0
        self.last_image_at: float | None = None

    @property
    def camera_info(self) -> CameraInfo | None:
        """The newest camera_info received, or None."""
        return self.info.latest

    def topic(self, relative: str) -> str:
        """``relative`` (an ``OUTPUT_TOPICS`` name, ``image``, ...) in this camera's namespace."""
        return f"{self.name}/{relative}" if self.name else relative

    def prefixed(self, text: str) -> str:
        """A log or error text, naming the camera when there are several."""
        return f"{self.name}: {text}" if self.name else text


@dataclasses.dataclass
class _Stats:
    received: int = 0
    processed: int = 0
    rejected: int = 0
    failed: int = 0
    latency_ms: list[float] = dataclasses.field(default_factory=list)
    processing_ms: list[float] = dataclasses.field(default_factory=list)
    last_error: str = ""


class _DropRandomWeightsRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "RANDOM weights" not in record.getMessage()


@contextlib.contextmanager
def _without_random_weights_log() -> Iterator[None]:
    """Drops the weights loader's random-weights log record within the block."""
    logger = logging.getLogger(load_model.__module__)
    drop = _DropRandomWeightsRecords()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _median_text(values: list[float]) -> str:
    return f"{float(np.median(values)):.1f}" if values else "nan"


def _qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=(
            ReliabilityPolicy.BEST_EFFORT
            if reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE
        ),
    )


class DptNode(Node):
    """DPT depth and segmentation node. See the README for parameters and topics.

    Raises:
        ValueError: invalid parameters (the message lists each problem).
        CheckpointError: weights missing, unreadable or for another model.
    """

    #: Load the models and start at construction (the lifecycle node waits for
    #: configure and activate instead).
    _start_at_once = True

    def __init__(self, node_name: str = "dpt_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.config = config_from_values(declare_all(self))
        #: Warnings about overrides that name no parameter (misspellings).
        self.unknown_parameters = unknown_overrides(self)
        for text in self.unknown_parameters:
            self.get_logger().warning(text)
        self._check_camera_topics(self.config.cameras)
        self.pipeline: FramePipeline  # set by load_models
        self._alignment: NodeAlignment | None = None
        self._started: set[Any] = set()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.duplicate_check = DuplicateNameCheck(self)
        if self._start_at_once:
            self.load_models()
            self.start()

    # -- stages (the lifecycle node's transitions) ---------------------------------
    def load_models(self) -> None:
        """Loads the models and warms them up (the lifecycle's configure)."""
        cfg = self.config
        self.pipeline = FramePipeline(
            self._predictor(cfg.depth, "depth"),
            self._predictor(cfg.segmentation, "segmentation"),
            cfg.pipeline,
        )
        self._warm_up()

    def free_models(self) -> None:
        """Drops the models (the lifecycle's cleanup); memory returns to the system
        (CUDA: to the driver)."""
        if hasattr(self, "pipeline"):
            del self.pipeline
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def start(self) -> None:
        """Creates the publishers, subscriptions, timers and the inference worker (the
        lifecycle's activate)."""
        before = self._entities()
        cfg = self.config
        topics = self._create_publishers()
        self._label_info_status = self._publish_label_info()
        self._stats = _Stats()
        self._recent = RecentEvents()
        self._started_at = time.monotonic()
        self._stats_lock = threading.Lock()
        self._warn_throttle = KeyedThrottle(_WARN_THROTTLE_S)
        self._window_start = time.monotonic()
        self._window_counts = (0, 0)
        self._last_cycle_time = 0.0
        self._image_subs = self._create_subscriptions()
        self._alignment = self._create_alignment()
        self._alignment_warn = False
        # On the steady clock: under use_sim_time a ROS-time timer waits for /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(cfg.diagnostics_period, self._publish_diagnostics, clock=steady)
        if cfg.log_period > 0:
            self.create_timer(cfg.log_period, self._log_status, clock=steady)
        self._started = self._entities() - before
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="dpt_inference", daemon=True)
        self._worker.start()
        inputs = ", ".join(sub.topic_name for sub in self._image_subs)
        self.get_logger().info(
            f"ready: {self._backends_text(licence=True)} on {self._device_text()}, "
            f"input {inputs} "
            f"({cfg.input_transport}), publishing {', '.join(sorted(topics))}"
            + (" under each camera's namespace" if cfg.cameras else "")
        )

    def stop(self) -> None:
        """Stops the worker and destroys what :meth:`start` created; the models stay
        loaded (the lifecycle's deactivate)."""
        self.stop_worker()
        for entity in self._started:
            for kind in (Publisher, Subscription, Timer):
                if isinstance(entity, kind):
                    getattr(self, f"destroy_{kind.__name__.lower()}")(entity)
        self._started = set()
        self._alignment = None

    def _entities(self) -> set[Any]:
        return set(self.publishers) | set(self.subscriptions) | set(self.timers)

    # -- set-up -------------------------------------------------------------------
    def _create_publishers(self) -> set[str]:
        """Each camera's output publishers; returns the output topic names."""
        cfg = self.config
        out_qos = _qos(cfg.qos_output_reliability, cfg.qos_output_depth)
        # Every topic the models can publish: cloud.enabled and a calibration can be
        # set at run time, and nothing is built for a topic nobody subscribes to.
        topics = set(self.pipeline.topics(self.pipeline.options.with_every_output()))
        self._wakeup = threading.Condition()
        self._cameras = [_Camera(name, self._wakeup) for name in (cfg.cameras or ("",))]
        for cam in self._cameras:
            cam.publishers = {
                t: self.create_publisher(OUTPUT_TOPICS[t], cam.topic(t), out_qos)
                for t in OUTPUT_TOPICS
                if t in topics
            }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        return topics

    def _create_alignment(self) -> NodeAlignment | None:
        """Online alignment of a relative depth model, when configured."""
        cfg = self.config
        depth = self.pipeline.depth
        if cfg.alignment.method == "fixed" or depth is None:
            return None
        if depth.is_metric:
            self.get_logger().info(
                f"relative_depth.alignment={cfg.alignment.method} is ignored: "
                f"{depth.spec.name} already predicts metres"
            )
            return None
        qos = _qos(cfg.qos_input_reliability, cfg.qos_input_depth)
        return NodeAlignment(self, cfg.alignment, self._cameras, qos)

    def _subscribed_on_demand(self) -> set[str]:
        """The outputs of ON_DEMAND_TOPICS that someone subscribes to (any camera)."""
        return {
            topic
            for topic in ON_DEMAND_TOPICS
            for cam in self._cameras
            if topic in cam.publishers and cam.publishers[topic].get_subscription_count() > 0
        }

    def _unsubscribed(self) -> set[str]:
        """The outputs of SKIPPABLE_TOPICS that nobody subscribes to (on any camera), so
        they are not built (depth_image_proc's lazy outputs)."""
        return {
            topic
            for topic in SKIPPABLE_TOPICS
            if not any(
                topic in cam.publishers and cam.publishers[topic].get_subscription_count() > 0
                for cam in self._cameras
            )
        }

    def _publish_label_info(self) -> str:
        """Publishes ``segmentation/label_info`` once per camera (reliable, transient
        local: late subscribers get it too) where vision_msgs imports; returns the state
        for /diagnostics."""
        if self.pipeline.segmentation is None:
            return "off: no segmentation model"
        classes = import_vision_msgs()
        if isinstance(classes, str):
            self.get_logger().warning(f"segmentation/label_info is off: {classes}")
            return f"off: {classes}"
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        header = Header(stamp=self.get_clock().now().to_msg())
        for cam in self._cameras:
            pub = self.create_publisher(classes[0], cam.topic("segmentation/label_info"), qos)
            pub.publish(label_info_message(classes[0], classes[1], header))
            cam.publishers["segmentation/label_info"] = pub
        return "published"

    def _create_subscriptions(self) -> list[Any]:
        """Each camera's image (raw or compressed) and camera_info subscriptions;
        returns the image subscriptions."""
        cfg = self.config
        in_qos = _qos(cfg.qos_input_reliability, cfg.qos_input_depth)
        image_subs = []
        for cam in self._cameras:
            if cfg.input_transport == "compressed":
                topic = self.resolve_topic_name(cam.topic("image")) + "/compressed"
                sub = self.create_subscription(
                    CompressedImage, topic, lambda msg, c=cam: self._on_image(c, msg), in_qos
                )
            else:
                sub = self.create_subscription(
                    Image, cam.topic("image"), lambda msg, c=cam: self._on_image(c, msg), in_qos
                )
            image_subs.append(sub)
            cam.info = CameraInfoTracker(self._camera_info_topic(cam))
            self.create_subscription(
                CameraInfo,
                cam.info.topic,
                lambda msg, c=cam: self._on_camera_info(c, msg),
                in_qos,
            )
        return image_subs

    def _camera_info_topic(self, cam: _Camera) -> str:
        """``camera_info`` as remapped, else the image topic's sibling (image_transport's
        rule: ``/ns/image_rect`` -> ``/ns/camera_info``)."""
        relative = cam.topic("camera_info")
        remapped = self.resolve_topic_name(relative)
        if remapped != self.resolve_topic_name(relative, only_expand=True):
            return remapped
        return sibling_topic(self.resolve_topic_name(cam.topic("image")))

    def _check_camera_topics(self, cameras: Sequence[str]) -> None:
        """Two entries of ``cameras`` must not name the same topics once resolved (e.g.
        ``front`` and ``/front`` for a node in ``/``, or a remap)."""
        seen: dict[str, str] = {}
        for name in cameras:
            topic = self.resolve_topic_name(f"{name}/image")
            if topic in seen:
                raise ValueError(
                    f"invalid parameters: cameras {seen[topic]!r} and {name!r} are "
                    f"the same camera ({topic}); list each camera once"
                )
            seen[topic] = name

    def _predictor(self, options: PredictorOptions | None, task: str) -> Predictor | None:
        if options is None:
            return None
        if options.random_weights:
            self.get_logger().warning(
                f"{task}: {options.model_type} with RANDOM weights (parameter "
                f"{task}.random_weights): its outputs are meaningless"
            )
        # That line is the one warning: not the loader's log record and Python warning too.
        with warnings.catch_warnings(), _without_random_weights_log():
            warnings.simplefilter("ignore", RandomWeightsWarning)
            return Predictor(options)

    def _warm_up(self) -> None:
        """Runs each model once at the configured camera size (CUDA context, cuDNN
        algorithms, torch.compile), batched as all cameras would be."""
        cfg = self.config
        if not cfg.warmup_width:
            return
        hw = (cfg.warmup_height, cfg.warmup_width)
        batch = max(1, len(cfg.cameras))
        for p in (self.pipeline.depth, self.pipeline.segmentation):
            if p is not None:
                if p.options.backend != "torch" and not p.options.engine:
                    self.get_logger().info(
                        f"{p.spec.name}: getting the {p.backend} engine for {hw[1]}x{hw[0]} "
                        f"images ({p.options.engine_build}); a first build takes minutes "
                        "on a Jetson"
                    )
                seconds = p.warm_up(hw, batch)
                self.get_logger().info(
                    f"{p.spec.name}: warmed up for {hw[1]}x{hw[0]} images (batch {batch}) "
                    f"in {seconds:.1f} s on {_backend_text(p)}"
                )

    def _backends_text(self, licence: bool = False) -> str:
        """``name backend`` of each model; with ``licence`` also its weights' licence
        (they differ by model: Depth Anything V2 Base and Large are non-commercial)."""
        return ", ".join(
            f"{p.spec.name}{f' (weights licence {p.spec.licence})' if licence else ''} "
            f"{_backend_text(p)}"
            for p in (self.pipeline.depth, self.pipeline.segmentation)
            if p is not None
        )

    def _models_text(self) -> str:
        specs = [p.spec for p in (self.pipeline.depth, self.pipeline.segmentation) if p]
        return " + ".join(s.name for s in specs)

    def _device_text(self) -> str:
        p = self.pipeline.main
        return f"{p.device} {str(p.dtype).replace('torch.', '')}"

    # -- callbacks (executor thread; never wait on the model) -----------------------
    def _on_image(self, cam: _Camera, msg: Any) -> None:
        with self._stats_lock:
            self._stats.received += 1
            cam.received += 1
            cam.last_image_at = time.monotonic()
        cam.frames.put((msg, time.monotonic()))  # arrival on the steady clock

    def _on_camera_info(self, cam: _Camera, msg: CameraInfo) -> None:
        warning = cam.info.add(msg)
        if warning and not self.config.pipeline.rectify:
            self.get_logger().warning(cam.prefixed(warning))

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        problems = validate(changes)
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        try:
            self.config = config_from_values({**self.config.values, **changes})
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if hasattr(self, "pipeline"):
            self.pipeline.options = self.config.pipeline
        if self._alignment is not None:
            self._alignment.set_options(self.config.alignment)
        return SetParametersResult(successful=True)

    # -- worker thread ------------------------------------------------------------
    def _work(self) -> None:
        slots = [cam.frames for cam in self._cameras]
        while not self._stop.is_set():
            rate = self.config.max_rate
            if rate > 0:
                # Wait out the period; frames arriving meanwhile replace older ones.
                wait = self._last_cycle_time + 1.0 / rate - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
            msgs = LatestFrame.take_any(slots, timeout=0.1)
            frames = [(cam, msg) for cam, msg in zip(self._cameras, msgs) if msg is not None]
            if not frames:
                continue
            self._last_cycle_time = time.monotonic()
            try:
                self._process(frames)
            except Exception:
                if self.stopping():
                    return  # publishing on a context or node that is going away: quietly
                raise

    def stopping(self) -> bool:
        """Whether the node is shutting down: its worker was told to stop, or its
        context was shut down (Ctrl-C, SIGTERM, ``rclpy.shutdown``)."""
        return self._stop.is_set() or not self.context.ok()

    def _process(self, frames: list[tuple[_Camera, tuple[Any, float]]]) -> None:
        """Decodes one frame per camera, runs them as one batch and publishes each
        camera's messages on its own topics.

        Args:
            frames: (camera, (image message, arrival time on the steady clock)).
        """
        cams, rgbs, headers, infos, arrivals = [], [], [], [], []
        for cam, (msg, arrived) in frames:
            limit = self.config.max_input_pixels
            try:
                rgb = (
                    compressed_to_rgb(msg, limit)
                    if isinstance(msg, CompressedImage)
                    else image_to_rgb(msg, limit)
                )
            except ImageDecodeError as exc:
                self._reject(cam, f"image rejected: {exc}")
                continue
            header = self._output_header(msg.header)
            infos.append(cam.info.pair(header))
            cams.append(cam)
            rgbs.append(rgb)
            headers.append(header)
            arrivals.append(arrived)
        if not cams:
            return
        try:
            calibrations = self._alignment.calibrations(cams, headers) if self._alignment else None
            outputs = self.pipeline.process_batch(
                rgbs,
                headers,
                infos,
                streams=[cam.name for cam in cams],
                on_demand=self._subscribed_on_demand(),
                calibrations=calibrations,
                skip=self._unsubscribed(),
            )
        except Exception as exc:  # keep the node alive (e.g. CUDA out of memory)
            self._recent.add("failed")
            with self._stats_lock:
                self._stats.failed += len(cams)
                self._stats.last_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(
                f"inference failed: {type(exc).__name__}: {exc}",
                throttle_duration_sec=_WARN_THROTTLE_S,
            )
            return
        self._publish_outputs(cams, headers, infos, arrivals, outputs)
        if self._alignment is not None:
            self._alignment.update(cams, headers, outputs)

    def _publish_outputs(
        self,
        cams: list[_Camera],
        headers: list[Header],
        infos: list[CameraInfo | None],
        arrivals: list[float],
        outputs: list[Any],
    ) -> None:
        """Publishes each camera's messages, records whether its camera_info was used,
        and its latencies: stamp to publish on the node's clock (not under use_sim_time,
        where stamps and /clock need not agree, or /clock may not run at all) and
        arrival to publish on the steady clock."""
        sim_time = self._sim_time()
        for cam, header, info, arrived, out in zip(cams, headers, infos, arrivals, outputs):
            for warning in out.warnings:
                self._reject(cam, warning, count=False)
            self._check_camera_info(cam, info, out)
            for topic, message in out.messages.items():
                pub = cam.publishers.get(topic)
                if pub is not None:
                    pub.publish(message)
            processing = (time.monotonic() - arrived) * 1e3
            latency = (self.get_clock().now().nanoseconds - stamp_ns(header)) / 1e6
            with self._stats_lock:
                self._stats.processed += 1
                cam.processed += 1
                if not sim_time:
                    self._stats.latency_ms.append(latency)
                    del self._stats.latency_ms[:-100]
                self._stats.processing_ms.append(processing)
                del self._stats.processing_ms[:-100]

    def _output_header(self, header: Header) -> Header:
        """The image's header, with the ``frame_id`` parameter's frame when set."""
        frame_id = self.config.values["frame_id"]
        if not frame_id:
            return header
        return Header(stamp=header.stamp, frame_id=frame_id)

    def _check_camera_info(self, cam: _Camera, info: CameraInfo | None, out: Any) -> None:
        """Records whether the frame's camera_info was accepted, and warns (throttled)
        when it is missing or stale."""
        rejected = [w for w in out.warnings if w.startswith("camera_info rejected")]
        cam.info.rejection = rejected[0].split(": ", 1)[1] if rejected else ""
        problem = cam.info.problem()
        if problem and not rejected:
            self._warn(cam, cam.prefixed(problem))

    def _reject(self, cam: _Camera, text: str, count: bool = True) -> None:
        text = cam.prefixed(text)
        self._recent.add("rejected")
        with self._stats_lock:
            if count:
                self._stats.rejected += 1
                cam.rejected += 1
            self._stats.last_error = text
        self._warn(cam, text)

    def _warn(self, cam: _Camera, text: str) -> None:
        """Logs ``text`` throttled per camera and per reason, with a count of what the
        throttle held back."""
        held_back = self._warn_throttle.check((cam.name, reason_key(text)))
        if held_back is not None:
            more = f" ({held_back} more like this held back)" if held_back else ""
            self.get_logger().warning(text + more)

    # -- status -------------------------------------------------------------------
    def status(self) -> dict[str, str]:
        """Current counters and rates as strings (what /diagnostics carries)."""
        now = time.monotonic()
        with self._stats_lock:
            s = self._stats
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
                "device": self._device_text(),
                "models": self._models_text(),
                "backend": self._backends_text(),
                "last_error": s.last_error,
            }
            if self.pipeline.segmentation is not None:
                values["label_info"] = self._label_info_status
            if self.config.cameras:
                for cam in self._cameras:
                    values.update(
                        {
                            f"{cam.name}.received": str(cam.received),
                            f"{cam.name}.processed": str(cam.processed),
                            f"{cam.name}.dropped": str(cam.frames.dropped),
                            f"{cam.name}.rejected": str(cam.rejected),
                        }
                    )
        values["rejected_recent"] = str(self._recent.count("rejected"))
        values["failed_recent"] = str(self._recent.count("failed"))
        for cam in self._cameras:
            key = f"{cam.name}.camera_info" if cam.name else "camera_info"
            values[key] = f"{cam.info.status()[1]} ({cam.info.topic})"
        if self._alignment is not None:
            alignment, self._alignment_warn = self._alignment.status(self._cameras)
            values.update(alignment)
        return values

    def _sim_time(self) -> bool:
        """Whether the node's clock follows /clock (use_sim_time)."""
        clock = self.get_clock()
        return isinstance(clock, ROSClock) and clock.ros_time_is_active

    def _latency_text(self, latency_ms: list[float]) -> str:
        if self._sim_time():
            return "unavailable (use_sim_time: see processing_ms_median)"
        return _median_text(latency_ms)

    def _dropped(self) -> int:
        return sum(cam.frames.dropped for cam in self._cameras)

    def problems(self) -> list[tuple[int, str]]:
        """What is wrong now, as (diagnostic level, text): failures (ERROR) and rejected
        frames in the recent window, stale input, and each camera's camera_info while its
        images come (WARN)."""
        out: list[tuple[int, str]] = []
        window = f"in the last {self._recent.window:.0f} s"
        failed, rejected = self._recent.count("failed"), self._recent.count("rejected")
        if failed:
            out.append((ERROR, f"{failed} failed inference batches {window}"))
        if rejected:
            out.append((WARN, f"{rejected} frames or camera_infos rejected {window}"))
        if self._alignment_warn:
            out.append((WARN, "relative depth alignment has no usable fit"))
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

    def _publish_diagnostics(self) -> None:
        values = self.status()
        problems = self.problems()
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: DPT inference"
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
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diag_pub.publish(array)

    def _log_status(self) -> None:
        with self._stats_lock:
            s = self._stats
            text = (
                f"frames in {s.received}, processed {s.processed}, dropped "
                f"{self._dropped()}, rejected {s.rejected}, failed {s.failed}, "
                f"latency {self._latency_text(s.latency_ms)} ms, processing "
                f"{_median_text(s.processing_ms)} ms, {self._models_text()} on "
                f"{self._device_text()}"
            )
        self.get_logger().info(text)

    # -- shutdown -----------------------------------------------------------------
    def stop_worker(self, timeout: float = _STOP_TIMEOUT_S) -> bool:
        """Stops the inference worker: it finishes (or drops) the batch in hand and
        publishes nothing more. Returns False if it is still busy after ``timeout`` s."""
        stop = getattr(self, "_stop", None)
        if stop is None:
            return True
        stop.set()
        for cam in self._cameras:
            cam.frames.close()
        self._worker.join(timeout=timeout)
        return not self._worker.is_alive()

    def destroy_node(self) -> None:
        """Stops the worker first, then destroys the node."""
        self.stop_worker()
        super().destroy_node()


def _backend_text(p: Predictor) -> str:
    """``onnxruntime (cached engine)``, ``tensorrt (engine built this start)``, ``torch``."""
    cached = p.engine_cached
    if cached is None:
        return p.backend
    return f"{p.backend} ({'cached engine' if cached else 'engine built this start'})"


def main(args: list[str] | None = None) -> int:
    """Console entry point: ``ros2 run dpt_ros dpt_node``."""
    return run_node(DptNode, args)


def run_node(node_class: type[DptNode], args: list[str] | None = None) -> int:
    """Initialises rclpy, spins a ``node_class`` until Ctrl-C, SIGTERM or shutdown, and
    shuts down in order (worker, node, context); returns the exit status."""
    rclpy.init(args=args)
    node: DptNode | None = None
    code = 0
    try:
        node = node_class()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except (ValueError, CheckpointError, OSError) as exc:
        rclpy.logging.get_logger("dpt_node").fatal(str(exc))
        code = 1
    except Exception as exc:  # ExternalShutdownException and friends end quietly
        if type(exc).__name__ != "ExternalShutdownException":
            raise
    finally:
        if node is not None:
            # In order: no worker publishing, then no node, then no context.
            if not node.stop_worker():
                node.get_logger().warning(
                    f"the inference worker did not stop within {_STOP_TIMEOUT_S:.0f} s; "
                    "exiting anyway"
                )
            node.destroy_node()
        rclpy.try_shutdown()
    _exit_now_if_building(code)
    return code


def _exit_now_if_building(code: int) -> None:
    """Ends the process at once when an engine is still being built in the background:
    the export cannot be interrupted, and an interpreter exiting under its native
    threads aborts (SIGABRT). The build is atomic: it leaves no engine behind, and the
    next start builds it again."""
    from dpt_ros.models.engine_cache import builds_in_progress

    building = builds_in_progress()
    if not building:
        return
    print(
        f"[dpt_node] stopping during an engine build ({', '.join(building)}): abandoned, "
        "nothing half-built is kept; the next start builds it again",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
