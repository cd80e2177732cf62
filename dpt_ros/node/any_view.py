"""Windows of views in the node (``any_view.*``): the odometry subscription, each
camera's :class:`~dpt_ros.anyview.WindowState`, the window's messages and its
/diagnostics. Glue: the state is :mod:`dpt_ros.anyview`, the forward
:mod:`dpt_ros.anyview.forward`, the messages :mod:`dpt_ros.ros.poses`.

Runs on the inference worker, one frame at a time (latest frame wins: a frame that
arrives while a window runs replaces the one waiting, it never queues behind it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header

from dpt_ros.anyview import AnyViewOptions, OdometryBuffer, OdometrySample, WindowState
from dpt_ros.anyview.forward import run_frame
from dpt_ros.anyview.messages import (
    ODOMETRY_TOPIC,
    POINTS_TOPIC,
    POSES_TOPIC,
    intrinsics_of,
    window_messages,
)
from dpt_ros.anyview.window import ONE_VIEW, WindowOutput
from dpt_ros.models import Predictor
from dpt_ros.node.cameras import Camera
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.messages import stamp_ns
from dpt_ros.ros.poses import odometry_fields


class NodeAnyView:
    """The node's windows (see the module docstring).

    Args:
        node: the rclpy node.
        options: ``any_view.*`` (``window`` > 0).
        predictor: the depth model (a type with windows).
        cameras: the node's cameras; their publishers gain the window's topics.
        in_qos, out_qos: the node's input and output QoS.
        warn: logs a throttled warning for a camera.

    Raises:
        ValueError: ``condition_on_odometry`` with a predictor that cannot align a window
            to given cameras.
    """

    def __init__(
        self,
        node: Any,
        options: AnyViewOptions,
        predictor: Predictor,
        cameras: Sequence[Camera],
        in_qos: Any,
        out_qos: Any,
        warn: Any,
    ) -> None:
        self.options = options
        self.predictor = predictor
        self._node = node
        self._warn = warn
        self._lock = threading.Lock()
        from nav_msgs.msg import Odometry  # on the registries as ros-nav-msgs

        self.odometry: OdometryBuffer | None = None
        if options.odometry_topic:
            self.odometry = OdometryBuffer(
                options.odom_frame, options.base_frame, options.odometry_max_age
            )
            node.create_subscription(Odometry, options.odometry_topic, self._on_odometry, in_qos)
        self.states = {cam.name: WindowState(options, self.odometry) for cam in cameras}
        self._said: dict[str, str] = {}
        self._odometry_state: dict[str, str] = {}
        self._last_stamp: dict[str, int] = {}
        for cam in cameras:
            cam.publishers[POSES_TOPIC] = node.create_publisher(
                PoseArray, cam.topic(POSES_TOPIC), out_qos
            )
            cam.publishers[POINTS_TOPIC] = node.create_publisher(
                PointCloud2, cam.topic(POINTS_TOPIC), out_qos
            )
            cam.publishers[ODOMETRY_TOPIC] = node.create_publisher(
                Odometry, cam.topic(ODOMETRY_TOPIC), out_qos
            )

    # -- the odometry (executor thread) ------------------------------------------------------
    def _on_odometry(self, msg: Any) -> None:
        assert self.odometry is not None
        with self._lock:
            refused = self.odometry.add(OdometrySample(*odometry_fields(msg)))
        if refused:
            self._node.get_logger().warning(
                f"odometry refused: {refused}", throttle_duration_sec=5.0
            )

    # -- one frame (inference worker) --------------------------------------------------------
    def process(
        self,
        cam: Camera,
        rgb: np.ndarray,
        header: Header,
        info: CameraInfo | None,
        options: PipelineOptions,
    ) -> WindowOutput:
        """Runs ``cam``'s frame in its window and publishes what is subscribed."""
        state = self.states[cam.name]
        hw = rgb.shape[:2]
        stamp = stamp_ns(header)
        output_hw = hw if options.output_size == "input" else None
        plan, out = run_frame(
            self.predictor,
            state,
            rgb,
            stamp,
            intrinsics_of(info, hw),
            output_hw,
            cam.name,
            self._lock,
        )
        if plan.restarted:
            self._node.get_logger().info(
                cam.prefixed(f"any_view window restarted: {plan.restarted}")
            )
        with self._lock:
            self._last_stamp[cam.name] = stamp
        self._say_conditioning(cam, state)
        self._publish(cam, header, out)
        return out

    def _say_conditioning(self, cam: Camera, state: WindowState) -> None:
        """Logs once when conditioning on odometry stops (and when it resumes); the first
        window after a (re)start, of one view, is not a stop."""
        if not self.options.condition_on_odometry:
            return
        now = state.conditioning
        if now == ONE_VIEW:
            return  # the first window after a (re)start: nothing stopped
        before = self._said.get(cam.name, "")
        if now and not before:
            self._node.get_logger().warning(
                cam.prefixed(f"any_view: conditioning on odometry stopped: {now}")
            )
        elif before and not now:
            self._node.get_logger().info(cam.prefixed("any_view: conditioning on odometry resumed"))
        self._said[cam.name] = now

    def _publish(self, cam: Camera, header: Header, out: WindowOutput) -> None:
        messages = window_messages(out, header, self.options.odom_frame, cam.subscribed)
        for topic, message in messages.items():
            cam.publishers[topic].publish(message)
        self._odometry_state[cam.name] = (
            "published" if out.scale_known else f"not published: scale unknown ({out.scale_source})"
        )

    # -- /diagnostics ---------------------------------------------------------------------------
    def status(self) -> dict[str, str]:
        """Each camera's window state."""
        values = {}
        with self._lock:
            for name, state in self.states.items():
                prefix = f"{name}." if name else ""
                for key, value in state.status(self._last_stamp.get(name)).items():
                    values[prefix + key] = value
                values[prefix + "any_view odometry"] = self._odometry_state.get(
                    name, "not published: no window yet"
                )
                if self.options.condition_on_odometry:
                    values[prefix + "any_view conditioning"] = state.conditioning or "on"
            if self.odometry is not None:
                values["any_view odometry refused"] = str(self.odometry.refused) + (
                    f" (last: {self.odometry.last_refusal})" if self.odometry.refused else ""
                )
        return values
