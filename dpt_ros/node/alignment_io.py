"""The node's side of online alignment (``relative_depth.alignment``): the reference
subscriptions, TF for clouds in another frame, and the calls into
:class:`~dpt_ros.alignment.online.OnlineAligner`, which does the work without rclpy.

Callbacks (executor thread) add references; the worker thread asks for each frame's
calibration before inference and feeds each frame's relative output back after it. A
lock keeps the two apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rclpy.time import Time
from sensor_msgs.msg import Image, PointCloud2

from dpt_ros.alignment.online import AlignmentOptions, OnlineAligner, transform_points
from dpt_ros.node.throttle import one_line
from dpt_ros.ros.image_codec import ImageDecodeError, depth_image_to_metres
from dpt_ros.ros.messages import shown, stamp_ns
from dpt_ros.ros.pointcloud import cloud_points

if TYPE_CHECKING:
    from dpt_ros.node.cameras import Camera

#: States (their beginnings) in which metres are published as fitted (anything else
#: is a WARN).
_GOOD_STATES = ("ok", "waiting for the first fit")


class NodeAlignment:
    """Reference inputs and the online aligner of a ``DptNode``.

    Args:
        node: the rclpy node (subscriptions, TF, logging).
        options: ``relative_depth.*`` settings; ``method`` is not ``fixed``.
        cameras: the node's cameras (``name``, ``topic(relative)``, ``frame_id``).
        qos: the input QoS (sensor data by default).
        warn: logs a camera's warning, throttled per camera and per reason (the
            node's), so that one camera or reason does not hide the others.
    """

    def __init__(
        self,
        node: Any,
        options: AlignmentOptions,
        cameras: Sequence[Camera],
        qos: Any,
        warn: Callable[[Camera, str], None],
    ) -> None:
        self._node = node
        self._warn = warn
        self.aligner = OnlineAligner(options)
        self._lock = threading.Lock()
        self._frame_ids: dict[str, str] = {}
        self._tf_buffer = (
            self._tf_buffer_or_none() if options.method == "reference_points" else None
        )
        for cam in cameras:
            if options.method == "reference_depth":
                node.create_subscription(
                    Image, cam.topic("alignment/depth"), lambda m, c=cam: self._depth(c, m), qos
                )
            elif options.method == "reference_points":
                node.create_subscription(
                    PointCloud2,
                    cam.topic("alignment/points"),
                    lambda m, c=cam: self._points(c, m),
                    qos,
                )

    def _tf_buffer_or_none(self) -> Any:
        try:
            # optional dependency: tf2_ros
            import tf2_ros
        except ImportError:
            return None
        buffer = tf2_ros.Buffer()
        self._tf_listener = tf2_ros.TransformListener(buffer, self._node)
        return buffer

    def set_options(self, options: AlignmentOptions) -> None:
        """Run-time parameter changes (the method itself is read-only)."""
        with self._lock:
            self.aligner.options = options

    # -- executor thread ------------------------------------------------------------
    def _reject(self, cam: Camera, reason: str) -> None:
        reason = one_line(reason)
        with self._lock:
            self.aligner.reject_reference(cam.name, reason)
        self._warn(cam, cam.prefixed(f"alignment reference rejected: {reason}"))

    def _depth(self, cam: Camera, msg: Image) -> None:
        try:
            depth = depth_image_to_metres(msg)
        except ImageDecodeError as exc:
            self._reject(cam, str(exc))
            return
        with self._lock:
            self.aligner.add_reference(cam.name, stamp_ns(msg.header), depth)

    def _points(self, cam: Camera, msg: PointCloud2) -> None:
        try:
            points = self._in_camera_frame(cam, msg, cloud_points(msg))
        except ValueError as exc:
            self._reject(cam, str(exc))
            return
        with self._lock:
            self.aligner.add_reference(cam.name, stamp_ns(msg.header), points)

    def _in_camera_frame(self, cam: Camera, msg: PointCloud2, points: Any) -> Any:
        source = msg.header.frame_id
        target = self._frame_ids.get(cam.name)
        if target is None:
            raise ValueError("no image yet: the camera's frame is not known")
        if source == target:
            return points
        if self._tf_buffer is None:
            raise ValueError(
                f"alignment/points is in frame {shown(source)} but the images are in "
                f"{shown(target)}, "
                "and tf2_ros cannot be imported to transform it: publish the cloud in the "
                "camera's frame, or install tf2_ros (part of every ROS distribution)"
            )

        try:
            tf = self._tf_buffer.lookup_transform(target, source, Time.from_msg(msg.header.stamp))
        except Exception as exc:  # tf2's lookup, extrapolation and connectivity errors
            raise ValueError(
                f"no transform from {shown(source)} to {shown(target)}: {exc}"
            ) from None
        t, q = tf.transform.translation, tf.transform.rotation
        return transform_points(points, (t.x, t.y, t.z), (q.x, q.y, q.z, q.w))

    # -- worker thread --------------------------------------------------------------
    def calibrations(
        self, cams: Sequence[Camera], headers: Sequence[Any]
    ) -> list[tuple[float, float] | None]:
        """Each frame's (scale, shift), or None where no good fit may be used."""
        with self._lock:
            for cam, header in zip(cams, headers):
                self._frame_ids[cam.name] = header.frame_id
            return [self.aligner.calibration(c.name, stamp_ns(h)) for c, h in zip(cams, headers)]

    def update(
        self, cams: Sequence[Camera], headers: Sequence[Any], outputs: Sequence[Any]
    ) -> None:
        """Fits each frame's relative output (for the frames after it)."""
        for cam, header, out in zip(cams, headers, outputs):
            relative = out.arrays.get("inverse")
            if relative is None:
                continue
            with self._lock:
                self.aligner.update(
                    cam.name, stamp_ns(header), relative, out.intrinsics, out.arrays.get("labels")
                )
            cam.last_stamp_ns = stamp_ns(header)

    def status(self, cameras: Sequence[Camera]) -> tuple[dict[str, str], bool]:
        """(/diagnostics values, whether any camera's alignment is not publishing fitted
        metres), keys prefixed with the camera's name when there are several."""
        values: dict[str, str] = {}
        warn = False
        with self._lock:
            for cam in cameras:
                prefix = f"{cam.name}." if cam.name else ""
                status = self.aligner.status(cam.name)
                last = cam.last_stamp_ns
                if last is not None:
                    status["alignment.age_s"] = f"{self.aligner.fit_age(cam.name, last):.2f}"
                warn |= not status["alignment.state"].startswith(_GOOD_STATES)
                values.update({prefix + k: v for k, v in status.items()})
        return values, warn
