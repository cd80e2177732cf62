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
from dataclasses import replace
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header

from dpt_ros.anyview import AnyViewOptions, OdometryBuffer, OdometrySample, WindowState
from dpt_ros.anyview.forward import run_window
from dpt_ros.anyview.window import ONE_VIEW, WindowOutput
from dpt_ros.models import Predictor
from dpt_ros.node.cameras import Camera
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.reconstruct.chain import CONFIDENT_QUANTILE, back_project
from dpt_ros.reconstruct.sim3 import rotation_to_quaternion
from dpt_ros.ros.camera import camera_matrix, scale_camera_info
from dpt_ros.ros.image_codec import depth_to_image_msg
from dpt_ros.ros.messages import stamp_ns
from dpt_ros.ros.pointcloud import make_pointcloud2
from dpt_ros.ros.poses import odometry_fields, odometry_message, pose_array_message

#: The window's own topics (relative to the camera's namespace) and their types; the
#: odometry's type is imported when windows start (nav_msgs).
POSES_TOPIC = "any_view/poses"
ODOMETRY_TOPIC = "any_view/odometry"
POINTS_TOPIC = "any_view/points"
#: Depth pixels taken every this many pixels for any_view/points.
POINT_STRIDE = 4


def intrinsics_of(info: CameraInfo | None, hw: tuple[int, int]) -> np.ndarray | None:
    """(3, 3) pixels of an image of size ``hw`` from its camera_info, or None."""
    if info is None:
        return None
    try:
        if (info.height, info.width) != hw:
            info = scale_camera_info(info, hw[1], hw[0])
        return camera_matrix(info)[0]
    except ValueError:
        return None


def window_points(window: Any, current_from_world: np.ndarray) -> np.ndarray:
    """(1, M, 3) float32 confident points of every view, in the current optical frame:
    per view, every :data:`POINT_STRIDE`-th pixel whose confidence is at least the
    view's median."""
    points = []
    for i in range(len(window)):
        depth, confidence = window.depth[i], window.confidence[i]
        rows, cols = np.mgrid[0 : depth.shape[0] : POINT_STRIDE, 0 : depth.shape[1] : POINT_STRIDE]
        ok = np.isfinite(depth[rows, cols]) & (depth[rows, cols] > 0)
        if not ok.any():
            continue
        c = confidence[rows, cols]
        ok &= c >= np.quantile(c[ok], CONFIDENT_QUANTILE)
        world = back_project(
            depth, window.intrinsics[i], window.camera_from_world[i], rows[ok], cols[ok]
        )
        points.append(world @ current_from_world[:, :3].T + current_from_world[:, 3])
    xyz = np.concatenate(points) if points else np.zeros((0, 3))
    return xyz.astype(np.float32)[None]


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
        with self._lock:
            plan = state.plan(rgb, stamp, intrinsics_of(info, hw))
        if plan.restarted:
            self._node.get_logger().info(
                cam.prefixed(f"any_view window restarted: {plan.restarted}")
            )
            self.predictor.view_cache.clear()  # stamps seen before may name other images
        output_hw = hw if options.output_size == "input" else None
        keys = [(cam.name, view_stamp) for view_stamp in plan.stamps]
        result, conditioned, why = run_window(
            self.predictor, plan, self.options.reference_view, output_hw, keys
        )
        if why != plan.conditioning:
            plan = replace(plan, conditioning=why)
        with self._lock:
            out = state.finish(plan, result, conditioned)
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
        depth = out.window.depth[-1]
        pubs = cam.publishers
        if cam.subscribed("depth/relative"):
            # As without windows: relative inverse depth (larger = nearer), 0 where the
            # depth is invalid; here the inverse of the window's depth, in 1 / its unit.
            with np.errstate(divide="ignore", invalid="ignore"):
                inverse = np.where(np.isfinite(depth) & (depth > 0), 1.0 / depth, 0.0)
            pubs["depth/relative"].publish(depth_to_image_msg(inverse.astype(np.float32), header))
        if out.scale_known and cam.subscribed("depth/image"):
            pubs["depth/image"].publish(depth_to_image_msg(depth, header))
        if cam.subscribed("depth/confidence"):
            pubs["depth/confidence"].publish(depth_to_image_msg(out.window.confidence[-1], header))
        if cam.subscribed(POSES_TOPIC):
            views = out.current_from_views
            quaternions = np.stack([rotation_to_quaternion(v[:, :3]) for v in views])
            pubs[POSES_TOPIC].publish(pose_array_message(header, views[:, :, 3], quaternions))
        if out.scale_known:
            self._odometry_state[cam.name] = "published"
            if cam.subscribed(ODOMETRY_TOPIC):
                pubs[ODOMETRY_TOPIC].publish(
                    odometry_message(
                        header,
                        self.options.odom_frame,
                        out.world_from_current.translation,
                        rotation_to_quaternion(out.world_from_current.rotation),
                        out.covariance,
                    )
                )
            if cam.subscribed(POINTS_TOPIC):
                current_from_world = out.world_from_current.inverse().matrix()
                xyz = window_points(out.window, current_from_world)
                pubs[POINTS_TOPIC].publish(make_pointcloud2(header, xyz))
        else:
            self._odometry_state[cam.name] = f"not published: scale unknown ({out.scale_source})"

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
