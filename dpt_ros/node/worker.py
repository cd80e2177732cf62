"""The node's inference worker: a thread that takes the newest frame of every camera,
runs them through the pipeline as one batch and publishes each camera's messages.

Callbacks only drop frames into one-slot queues (:class:`~dpt_ros.node.latest_frame.
LatestFrame`); everything slow happens here, so the executor never waits for a model.
The worker reaches the node only through :class:`WorkerHost`: what it reads (the
configuration, the pipeline, alignment, diagnostics) and the few calls it makes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from std_msgs.msg import Header

from dpt_ros.node.alignment_io import NodeAlignment
from dpt_ros.node.any_view import NodeAnyView
from dpt_ros.node.cameras import Camera, subscribed
from dpt_ros.node.diagnostics import NodeDiagnostics
from dpt_ros.node.latest_frame import LatestFrame
from dpt_ros.node.main import STOP_TIMEOUT_S
from dpt_ros.node.params import NodeConfig
from dpt_ros.node.throttle import KeyedThrottle, one_line, reason_key
from dpt_ros.pipeline import intake
from dpt_ros.pipeline.frames import (
    ON_DEMAND_TOPICS,
    SKIPPABLE_TOPICS,
    FramePipeline,
    Stabilized,
)
from dpt_ros.ros.messages import stamp_ns

#: Seconds between two log lines of one kind per camera (the rest are counted).
WARN_THROTTLE_S = 5.0


class WorkerHost(Protocol):
    """What the worker needs of its node."""

    config: NodeConfig
    pipeline: FramePipeline
    diagnostics: NodeDiagnostics

    @property
    def context(self) -> Any: ...

    @property
    def alignment(self) -> NodeAlignment | None: ...

    def get_logger(self) -> Any: ...

    def get_clock(self) -> Any: ...

    def sim_time(self) -> bool: ...

    def label_info_frame(self, cam: Camera, frame_id: str) -> None: ...

    @property
    def any_view(self) -> NodeAnyView | None: ...


def output_header(header: Header, frame_id: str) -> Header:
    """The image's header, with ``frame_id`` (the parameter) in place of its frame when
    set: the one place the override is applied."""
    if not frame_id:
        return header
    return Header(stamp=header.stamp, frame_id=frame_id)


class InferenceWorker:
    """The inference thread of one node and its cameras."""

    def __init__(self, host: WorkerHost, cameras: Sequence[Camera]) -> None:
        self.host = host
        self.cameras = list(cameras)
        self._warn_throttle = KeyedThrottle(WARN_THROTTLE_S)
        self._restart_throttle = KeyedThrottle(WARN_THROTTLE_S)
        self._last_cycle_time = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpt_inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stops the thread: it finishes (or drops) the batch in hand and publishes
        nothing more. Returns False if it is still busy after ``timeout`` s."""
        self._stop.set()
        for cam in self.cameras:
            cam.frames.close()
        if self._thread.ident is not None:
            self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        """Whether the thread runs (started and not yet ended)."""
        return self._thread.is_alive()

    def stopping(self) -> bool:
        """Whether the node is shutting down: the worker was told to stop, or the
        node's context was shut down (Ctrl-C, SIGTERM, ``rclpy.shutdown``)."""
        return self._stop.is_set() or not self.host.context.ok()

    # -- the loop -------------------------------------------------------------------
    def _run(self) -> None:
        slots = [cam.frames for cam in self.cameras]
        while not self._stop.is_set():
            rate = self.host.config.max_rate
            if rate > 0:
                # Wait out the period; frames arriving meanwhile replace older ones.
                wait = self._last_cycle_time + 1.0 / rate - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
            msgs = LatestFrame.take_any(slots, timeout=0.1)
            frames = [(cam, msg) for cam, msg in zip(self.cameras, msgs) if msg is not None]
            if not frames:
                continue
            self._last_cycle_time = time.monotonic()
            try:
                self.process(frames)
            except Exception:
                if self.stopping():
                    return  # publishing on a context or node that is going away: quietly
                raise

    def process(self, frames: list[tuple[Camera, tuple[Any, float]]]) -> None:
        """Takes in one frame per camera, runs them as one batch and publishes each
        camera's messages on its own topics.

        Args:
            frames: (camera, (image message, arrival time on the steady clock)).
        """
        host, cfg = self.host, self.host.config
        pipeline = host.pipeline
        frame_id = cfg.frame_id
        cams, rgbs, headers, infos, arrivals, inputs = [], [], [], [], [], []
        for cam, (msg, arrived) in frames:
            try:
                rgb, sizes = intake.take(msg, cfg.max_input_pixels, pipeline.models)
            except intake.FrameRefused as refused:
                self.reject(cam, f"image rejected: {refused.reason}")
                continue
            header = output_header(msg.header, frame_id)
            infos.append(cam.info.pair(header))
            cams.append(cam)
            rgbs.append(rgb)
            inputs.append(sizes)
            headers.append(header)
            arrivals.append(arrived)
        if not cams:
            return
        if host.any_view is not None:
            self._windows(cams, rgbs, headers, infos, arrivals)
            return
        alignment = host.alignment
        try:
            calibrations = alignment.calibrations(cams, headers) if alignment else None
            outputs = pipeline.process_batch(
                rgbs,
                headers,
                infos,
                streams=[cam.name for cam in cams],
                on_demand=subscribed(self.cameras, ON_DEMAND_TOPICS),
                calibrations=calibrations,
                skip=SKIPPABLE_TOPICS - subscribed(self.cameras, SKIPPABLE_TOPICS),
                inputs=inputs,
            )
        except Exception as exc:  # keep the node alive (e.g. CUDA out of memory)
            host.diagnostics.failed(len(cams), f"{type(exc).__name__}: {exc}")
            host.get_logger().error(
                f"inference failed: {type(exc).__name__}: {exc}",
                throttle_duration_sec=WARN_THROTTLE_S,
            )
            return
        self._publish(cams, headers, arrivals, outputs)
        if alignment is not None:
            alignment.update(cams, headers, outputs)

    def _windows(
        self,
        cams: list[Camera],
        rgbs: list[Any],
        headers: list[Header],
        infos: list[Any],
        arrivals: list[float],
    ) -> None:
        """Runs each camera's frame in its window (``any_view.window`` > 0) and publishes
        the window's messages; a failed window is counted and logged, the node goes on."""
        host = self.host
        any_view = host.any_view
        assert any_view is not None
        sim_time = host.sim_time()
        for cam, rgb, header, info, arrived in zip(cams, rgbs, headers, infos, arrivals):
            try:
                any_view.process(cam, rgb, header, info, host.pipeline.options)
            except Exception as exc:  # keep the node alive
                host.diagnostics.failed(1, f"{type(exc).__name__}: {exc}")
                host.get_logger().error(
                    cam.prefixed(f"window failed: {type(exc).__name__}: {exc}"),
                    throttle_duration_sec=WARN_THROTTLE_S,
                )
                continue
            host.label_info_frame(cam, header.frame_id)
            processing = (time.monotonic() - arrived) * 1e3
            latency = (host.get_clock().now().nanoseconds - stamp_ns(header)) / 1e6
            host.diagnostics.processed(cam, None if sim_time else latency, processing)

    def _publish(
        self,
        cams: list[Camera],
        headers: list[Header],
        arrivals: list[float],
        outputs: list[Any],
    ) -> None:
        """Publishes each camera's messages, records whether its camera_info was used,
        and its latencies: stamp to publish on the node's clock (not under use_sim_time,
        where stamps and /clock need not agree, or /clock may not run at all) and
        arrival to publish on the steady clock."""
        host = self.host
        sim_time = host.sim_time()
        for cam, header, arrived, out in zip(cams, headers, arrivals, outputs):
            if out.camera_info_rejection is not None:
                self.reject(cam, str(out.camera_info_rejection), count=False)
            self._check_camera_info(cam, out)
            no_metres = host.diagnostics.metres(cam, out.metres)
            if no_metres is not None:
                host.get_logger().warning(one_line(no_metres))
            host.label_info_frame(cam, header.frame_id)
            for topic, message in out.messages.items():
                pub = cam.publishers.get(topic)
                if pub is not None:
                    pub.publish(message)
            if out.stabilized is not None:
                self._stabilized(cam, header, out.stabilized)
            processing = (time.monotonic() - arrived) * 1e3
            latency = (host.get_clock().now().nanoseconds - stamp_ns(header)) / 1e6
            host.diagnostics.processed(cam, None if sim_time else latency, processing)

    def _stabilized(self, cam: Camera, header: Header, result: Stabilized) -> None:
        """Counts a temporal restart of ``cam``'s stream (not its first frame) for
        /diagnostics and logs it at info, throttled per camera: an event, not a fault."""
        text = self.host.diagnostics.stabilized(cam, result, stamp_ns(header) / 1e9)
        if text is None:
            return
        held_back = self._restart_throttle.check(cam.name)
        if held_back is not None:
            more = f" ({held_back} more held back)" if held_back else ""
            self.host.get_logger().info(text + more)

    def _check_camera_info(self, cam: Camera, out: Any) -> None:
        """Records whether the frame's camera_info was accepted, and warns (throttled)
        when it is missing or stale."""
        cam.info.rejection = out.camera_info_rejection
        problem = cam.info.problem()
        if problem and cam.info.rejection is None:
            self.warn(cam, cam.prefixed(problem))

    # -- logging ----------------------------------------------------------------------
    def reject(self, cam: Camera, text: str, count: bool = True) -> None:
        """Counts a refused frame of ``cam`` (unless ``count`` is False) and logs why."""
        self.warn(cam, self.host.diagnostics.rejected(cam, one_line(text), count))

    def warn(self, cam: Camera, text: str) -> None:
        """Logs ``text`` as one line (values from messages escaped), throttled per camera
        and per kind of reason, with a count of what the throttle held back."""
        text = one_line(text)
        held_back = self._warn_throttle.check((cam.name, reason_key(text)))
        if held_back is not None:
            more = f" ({held_back} more like this held back)" if held_back else ""
            self.host.get_logger().warning(text + more)
