"""``dpt_node``: camera images in; depth, label maps and PointCloud2 out.

The node is glue: parameters (``node.params``), decoding (``ros.image_codec``) and
processing (``pipeline.FramePipeline``) live elsewhere. Inference runs on a worker
thread fed by one-slot queues, one per camera, so the newest frame of each camera
always wins and callbacks never wait for the model. Each cycle the worker takes the
latest frame of every camera that has one and runs them as one batch.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType, ROSClock
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from dpt_ros.alignment.temporal import TemporalStreams
from dpt_ros.node.alignment_io import NodeAlignment
from dpt_ros.node.cameras import Camera, CameraView, subscribed
from dpt_ros.node.diagnostics import NodeDiagnostics, backends_text, device_text
from dpt_ros.node.graph_checks import DuplicateNameCheck
from dpt_ros.node.health import (
    CameraInfoTracker,
    sibling_topic,
)
from dpt_ros.node.latest_frame import LatestFrame
from dpt_ros.node.main import STOP_TIMEOUT_S, dpt_node
from dpt_ros.node.models import load_predictor, warm_up
from dpt_ros.node.param_checks import declare_all, unknown_overrides
from dpt_ros.node.params import config_from_values, validate
from dpt_ros.node.throttle import KeyedThrottle, one_line, reason_key
from dpt_ros.pipeline.frames import (
    ON_DEMAND_TOPICS,
    OUTPUT_TOPICS,
    SKIPPABLE_TOPICS,
    FramePipeline,
    Stabilized,
)
from dpt_ros.ros.image_codec import ImageDecodeError, compressed_to_rgb, image_to_rgb
from dpt_ros.ros.label_info import import_vision_msgs, label_info_message
from dpt_ros.ros.messages import stamp_ns
from dpt_ros.ros.nav2_checks import stride_warning

_WARN_THROTTLE_S = 5.0


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
    """DPT depth and segmentation node. See docs/ros.md for parameters and topics.

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
            load_predictor(cfg.depth, "depth", self.get_logger()),
            load_predictor(cfg.segmentation, "segmentation", self.get_logger()),
            cfg.pipeline,
        )
        self._set_temporal()
        warm_up(self.pipeline, cfg, self.get_logger())

    def _set_temporal(self) -> None:
        """Gives the pipeline fresh temporal stabilisation per the ``temporal.*``
        parameters (None when off): every stream starts again from its next frame."""
        options = self.config.temporal
        self.pipeline.temporal = TemporalStreams(options) if options.enabled else None

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
        label_info = self._publish_label_info()
        self._warn_throttle = KeyedThrottle(_WARN_THROTTLE_S)
        self._restart_throttle = KeyedThrottle(_WARN_THROTTLE_S)
        self._last_cycle_time = 0.0
        self._alignment = self._create_alignment()
        self.diagnostics = NodeDiagnostics(
            self._cameras,
            self.pipeline,
            self._alignment,
            label_info,
            self._sim_time,
            cfg.processing_time_budget,
        )
        self._image_subs = self._create_subscriptions()
        # On the steady clock: under use_sim_time a ROS-time timer waits for /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(cfg.diagnostics_period, self._publish_diagnostics, clock=steady)
        if cfg.log_period > 0:
            self.create_timer(cfg.log_period, self._log_status, clock=steady)
        self._started = self._entities() - before
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="dpt_inference", daemon=True)
        self._worker.start()
        stride = stride_warning(cfg.pipeline.cloud_stride, self.pipeline.segmentation is not None)
        if stride:
            self.get_logger().warning(stride)
        inputs = ", ".join(sub.topic_name for sub in self._image_subs)
        self.get_logger().info(
            f"ready: {backends_text(self.pipeline, licence=True)} on "
            f"{device_text(self.pipeline)}, "
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
        self._cameras = [Camera(name, self._wakeup) for name in (cfg.cameras or ("",))]
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
        return NodeAlignment(self, cfg.alignment, self._cameras, qos, warn=self._warn)

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
        self._label_info_classes = classes
        for cam in self._cameras:
            pub = self.create_publisher(classes[0], cam.topic("segmentation/label_info"), qos)
            cam.publishers["segmentation/label_info"] = pub
            self._label_info_frame(cam, self.config.values["frame_id"])
        return "published"

    def _label_info_frame(self, cam: Camera, frame_id: str) -> None:
        """(Re)publishes ``cam``'s LabelInfo when its frame changes: at start the
        ``frame_id`` parameter's (often empty), then the camera's from its first frame."""
        pub = cam.publishers.get("segmentation/label_info")
        if pub is None or cam.label_info_frame == frame_id:
            return
        cam.label_info_frame = frame_id
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=frame_id)
        pub.publish(label_info_message(*self._label_info_classes, header))

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

    def _camera_info_topic(self, cam: Camera) -> str:
        """``camera_info`` as remapped, else the image topic's sibling (image_transport's
        rule: ``/ns/image_rect`` -> ``/ns/camera_info``)."""
        relative = cam.topic("camera_info")
        remapped = self.resolve_topic_name(relative)
        if remapped != self.resolve_topic_name(relative, only_expand=True):
            return remapped
        return sibling_topic(self.resolve_topic_name(cam.topic("image")))

    # -- callbacks (executor thread; never wait on the model) -----------------------
    def _on_image(self, cam: Camera, msg: Any) -> None:
        self.diagnostics.received(cam)
        cam.frames.put((msg, time.monotonic()))  # arrival on the steady clock

    def _on_camera_info(self, cam: Camera, msg: CameraInfo) -> None:
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
            if any(name.startswith("temporal.") for name in changes):
                self._set_temporal()
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

    def _process(self, frames: list[tuple[Camera, tuple[Any, float]]]) -> None:
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
            problem = self._input_problem(rgb.shape[:2])
            if problem:
                self._reject(cam, f"image rejected: {problem}")
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
                on_demand=subscribed(self._cameras, ON_DEMAND_TOPICS),
                calibrations=calibrations,
                skip=SKIPPABLE_TOPICS - subscribed(self._cameras, SKIPPABLE_TOPICS),
            )
        except Exception as exc:  # keep the node alive (e.g. CUDA out of memory)
            self.diagnostics.failed(len(cams), f"{type(exc).__name__}: {exc}")
            self.get_logger().error(
                f"inference failed: {type(exc).__name__}: {exc}",
                throttle_duration_sec=_WARN_THROTTLE_S,
            )
            return
        self._publish_outputs(cams, headers, infos, arrivals, outputs)
        if self._alignment is not None:
            self._alignment.update(cams, headers, outputs)

    def _input_problem(self, image_hw: Sequence[int]) -> str:
        """Why an image of (H, W) may not reach the models (a network input too
        elongated or too large, see ``Predictor.input_size``), or ""."""
        for predictor in (self.pipeline.depth, self.pipeline.segmentation):
            if predictor is not None:
                try:
                    predictor.input_size(image_hw)
                except ValueError as exc:
                    return str(exc)
        return ""

    def _publish_outputs(
        self,
        cams: list[Camera],
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
            no_metres = self.diagnostics.metres(cam, out.no_metres)
            if no_metres is not None:
                self.get_logger().warning(one_line(no_metres))
            self._label_info_frame(cam, self._output_header(header).frame_id)
            for topic, message in out.messages.items():
                pub = cam.publishers.get(topic)
                if pub is not None:
                    pub.publish(message)
            if out.stabilized is not None:
                self._stabilized(cam, header, out.stabilized)
            processing = (time.monotonic() - arrived) * 1e3
            latency = (self.get_clock().now().nanoseconds - stamp_ns(header)) / 1e6
            self.diagnostics.processed(cam, None if sim_time else latency, processing)

    def _stabilized(self, cam: Camera, header: Header, result: Stabilized) -> None:
        """Counts a temporal restart of ``cam``'s stream (not its first frame) for
        /diagnostics and logs it at info, throttled per camera: an event, not a fault."""
        text = self.diagnostics.stabilized(cam, result, stamp_ns(header) / 1e9)
        if text is None:
            return
        held_back = self._restart_throttle.check(cam.name)
        if held_back is not None:
            more = f" ({held_back} more held back)" if held_back else ""
            self.get_logger().info(text + more)

    def _output_header(self, header: Header) -> Header:
        """The image's header, with the ``frame_id`` parameter's frame when set."""
        frame_id = self.config.values["frame_id"]
        if not frame_id:
            return header
        return Header(stamp=header.stamp, frame_id=frame_id)

    def _check_camera_info(self, cam: Camera, info: CameraInfo | None, out: Any) -> None:
        """Records whether the frame's camera_info was accepted, and warns (throttled)
        when it is missing or stale."""
        cam.info.rejection = out.camera_info_rejection
        problem = cam.info.problem()
        if problem and not cam.info.rejection:
            self._warn(cam, cam.prefixed(problem))

    def _reject(self, cam: Camera, text: str, count: bool = True) -> None:
        self._warn(cam, self.diagnostics.rejected(cam, one_line(text), count))

    def _warn(self, cam: Camera, text: str) -> None:
        """Logs ``text`` as one line (values from messages escaped), throttled per camera
        and per kind of reason, with a count of what the throttle held back."""
        text = one_line(text)
        held_back = self._warn_throttle.check((cam.name, reason_key(text)))
        if held_back is not None:
            more = f" ({held_back} more like this held back)" if held_back else ""
            self.get_logger().warning(text + more)

    # -- status -------------------------------------------------------------------
    @property
    def cameras(self) -> tuple[CameraView, ...]:
        """The input cameras, read-only: what each has received, done and publishes."""
        return tuple(CameraView(cam) for cam in self._cameras)

    def status(self) -> dict[str, str]:
        """Current counters and rates as strings (what /diagnostics carries)."""
        return self.diagnostics.status()

    def problems(self) -> list[tuple[int, str]]:
        """What is wrong now, as (diagnostic level, text); see
        :meth:`NodeDiagnostics.problems`."""
        return self.diagnostics.problems()

    def _sim_time(self) -> bool:
        """Whether the node's clock follows /clock (use_sim_time)."""
        clock = self.get_clock()
        return isinstance(clock, ROSClock) and clock.ros_time_is_active

    def _publish_diagnostics(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(self.diagnostics.message(self.get_fully_qualified_name(), stamp))

    def _log_status(self) -> None:
        self.get_logger().info(self.diagnostics.log_line())

    # -- shutdown -----------------------------------------------------------------
    def stop_worker(self, timeout: float = STOP_TIMEOUT_S) -> bool:
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

    def before_shutdown(self) -> None:
        """Called once on a stop signal, while the context is still valid and before
        the worker stops (rclcpp's pre-shutdown callback); nothing to do here."""

    def destroy_node(self) -> None:
        """Stops the worker first, then destroys the node."""
        self.stop_worker()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``python -m`` of this module, and former console entry point: the process's main
    (:func:`dpt_ros.node.main.dpt_node`; this module's imports are done by now)."""
    return dpt_node(args)


if __name__ == "__main__":
    sys.exit(main())
