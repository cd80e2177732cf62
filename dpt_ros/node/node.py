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
from typing import Any

import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType, ROSClock
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from dpt_ros.alignment.temporal import TemporalStreams
from dpt_ros.node.alignment_io import NodeAlignment
from dpt_ros.node.any_view import NodeAnyView
from dpt_ros.node.cameras import Camera, CameraView
from dpt_ros.node.diagnostics import NodeDiagnostics, backends_text, device_text
from dpt_ros.node.graph_checks import DuplicateNameCheck
from dpt_ros.node.health import (
    CameraInfoTracker,
    sibling_topic,
)
from dpt_ros.node.label_info import NodeLabelInfo
from dpt_ros.node.main import STOP_TIMEOUT_S, dpt_node
from dpt_ros.node.models import load_predictor, warm_up
from dpt_ros.node.param_checks import declare_all, unknown_overrides
from dpt_ros.node.params import config_from_values, validate
from dpt_ros.node.worker import InferenceWorker
from dpt_ros.pipeline.frames import OUTPUT_TOPICS, FramePipeline
from dpt_ros.ros.nav2_checks import stride_warning


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
        #: Every parameter's value by its ROS name, as last accepted.
        self._parameter_values = declare_all(self)
        self.config = config_from_values(self._parameter_values)
        #: Warnings about overrides that name no parameter (misspellings).
        self.unknown_parameters = unknown_overrides(self)
        for text in self.unknown_parameters:
            self.get_logger().warning(text)
        self.pipeline: FramePipeline  # set by load_models
        self._alignment: NodeAlignment | None = None
        self._any_view: NodeAnyView | None = None
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
        segmentation = self.pipeline.segmentation is not None
        self._label_info = NodeLabelInfo(self, self._cameras, segmentation, cfg.frame_id)
        self._worker = InferenceWorker(self, self._cameras)
        self._alignment = self._create_alignment()
        self._any_view = self._create_any_view()
        self.diagnostics = NodeDiagnostics(
            self._cameras,
            self.pipeline,
            self._alignment,
            self._label_info.state,
            self.sim_time,
            cfg.processing_time_budget,
        )
        self.diagnostics.any_view = self._any_view
        self._image_subs = self._create_subscriptions()
        # On the steady clock: under use_sim_time a ROS-time timer waits for /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(cfg.diagnostics_period, self._publish_diagnostics, clock=steady)
        if cfg.log_period > 0:
            self.create_timer(cfg.log_period, self._log_status, clock=steady)
        self._started = self._entities() - before
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
        self._any_view = None

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
        return NodeAlignment(self, cfg.alignment, self._cameras, qos, warn=self._worker.warn)

    def _create_any_view(self) -> NodeAnyView | None:
        """Windows of views, when ``any_view.window`` > 0."""
        cfg = self.config
        depth = self.pipeline.depth
        if not cfg.any_view.enabled or depth is None:
            return None
        return NodeAnyView(
            self,
            cfg.any_view,
            depth,
            self._cameras,
            _qos(cfg.qos_input_reliability, cfg.qos_input_depth),
            _qos(cfg.qos_output_reliability, cfg.qos_output_depth),
            self._worker.warn,
        )

    def label_info_frame(self, cam: Camera, frame_id: str) -> None:
        """(Re)publishes ``cam``'s LabelInfo when its frame changes (see
        :meth:`NodeLabelInfo.frame`)."""
        self._label_info.frame(cam, frame_id)

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
            values = {**self._parameter_values, **changes}
            self.config = config_from_values(values)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._parameter_values = values
        if hasattr(self, "pipeline"):
            self.pipeline.options = self.config.pipeline
            if any(name.startswith("temporal.") for name in changes):
                self._set_temporal()
        if self._alignment is not None:
            self._alignment.set_options(self.config.alignment)
        return SetParametersResult(successful=True)

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

    def sim_time(self) -> bool:
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
        worker = getattr(self, "_worker", None)
        return True if worker is None else worker.stop(timeout)

    def stopping(self) -> bool:
        """Whether the node is shutting down: its worker was told to stop, or its
        context was shut down (Ctrl-C, SIGTERM, ``rclpy.shutdown``)."""
        worker = getattr(self, "_worker", None)
        return (worker is not None and worker.stopping()) or not self.context.ok()

    @property
    def alignment(self) -> NodeAlignment | None:
        """Online alignment of a relative depth model (None when off or inactive)."""
        return self._alignment

    @property
    def any_view(self) -> NodeAnyView | None:
        """Windows of views (None when ``any_view.window`` is 0 or the node is inactive)."""
        return self._any_view

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
