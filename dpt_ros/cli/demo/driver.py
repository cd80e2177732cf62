"""The demo's input bag and the ROS side: the real ``DptNode`` fed over ROS topics.

:func:`write_input_bag` renders the synthetic sequence into a rosbag2 bag
(``/camera/image_raw``, ``/camera/camera_info`` and the ground truth
``/camera/ground_truth/depth``); :func:`run_node` publishes the bag's frames to an
in-process ``DptNode`` under :data:`LIVE_NAMESPACE`, one frame at a time (the next
frame goes out when every output of the previous one has arrived, so none is dropped
on a slow CPU), and collects the node's outputs.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image

from dpt_ros.cli.demo.preview import PICTURE_KINDS
from dpt_ros.cli.demo.scene import camera_intrinsics, render_sequence
from dpt_ros.node.node import DptNode
from dpt_ros.pipeline.frames import OUTPUT_TOPICS
from dpt_ros.ros.bagio import BAG_VERSION, open_bag, output_typestore
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.image_codec import depth_to_image_msg, rgb_to_image_msg

LIVE_NAMESPACE = "/dpt_ros_demo/camera"
BAG_NAMESPACE = "/camera"
FRAME_ID = "demo_camera_optical"
FRAME_TIMEOUT_S = 300.0
#: The node's outputs the demo collects (those of them the node publishes).
COLLECTED_OUTPUTS = ("depth/colored", "depth/image", "segmentation/colored", "points")


# ----------------------------------------------------------------------------------
# Input bag
# ----------------------------------------------------------------------------------
def prepare_output(out_dir: Path) -> Path:
    """Creates ``out_dir``; removes the previous demo's bag and frame pictures.

    Returns:
        The path of the input bag, ``<out_dir>/input_bag`` (not existing).

    Raises:
        FileExistsError: ``input_bag`` exists and is not a demo bag.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    bag_dir = out_dir / "input_bag"
    if bag_dir.exists():
        names = {p.name for p in bag_dir.iterdir()}
        ours = all(n == "metadata.yaml" or n.endswith((".db3", ".mcap")) for n in names)
        if not bag_dir.is_dir() or not ours:
            raise FileExistsError(
                f"{bag_dir} exists and is not a demo bag; remove it or choose another --output"
            )
        shutil.rmtree(bag_dir)
    for kind in PICTURE_KINDS:
        for old in out_dir.glob(f"frame_*_{kind}.png"):
            old.unlink()
    return bag_dir


def _camera_info_msg(width: int, height: int, stamp_ns: int):
    fx, fy, cx, cy = camera_intrinsics(width, height)
    info = Intrinsics(fx, fy, cx, cy, width, height).to_camera_info(FRAME_ID)
    info.header.stamp.sec, info.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    return info


def write_input_bag(
    path: Path, frames: int, width: int, height: int, start_ns: int
) -> list[np.ndarray]:
    """Renders the sequence into a new sqlite3 rosbag2 bag; returns the true depths.

    Args:
        path: the bag directory to create.
        frames: number of frames.
        width, height: image size in pixels.
        start_ns: stamp of the first frame (nanoseconds since the epoch).

    Returns:
        The (height, width) float32 depth of every frame, in metres (+inf: sky).
    """
    # optional dependency: rosbags
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = output_typestore()
    depths = []
    writer = Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.SQLITE3)
    writer.open()
    try:
        image_conn = writer.add_connection(
            f"{BAG_NAMESPACE}/image_raw", "sensor_msgs/msg/Image", typestore=store
        )
        info_conn = writer.add_connection(
            f"{BAG_NAMESPACE}/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        depth_conn = writer.add_connection(
            f"{BAG_NAMESPACE}/ground_truth/depth", "sensor_msgs/msg/Image", typestore=store
        )
        for offset_ns, rgb, depth in render_sequence(frames, width, height):
            stamp = start_ns + offset_ns
            info = _camera_info_msg(width, height, stamp)
            writer.write(info_conn, stamp, serialize_message(info))
            writer.write(image_conn, stamp, serialize_message(rgb_to_image_msg(rgb, info.header)))
            writer.write(
                depth_conn, stamp, serialize_message(depth_to_image_msg(depth, info.header))
            )
            depths.append(depth)
    finally:
        writer.close()
    return depths


def read_bag_frames(bag_dir: Path) -> list[tuple[Any, Any]]:
    """(Image, CameraInfo) pairs of the demo bag, in order."""
    images, infos = [], []
    reader = open_bag(bag_dir)
    try:
        for conn, _, raw in reader.messages():
            if conn.topic == f"{BAG_NAMESPACE}/image_raw":
                images.append(deserialize_message(bytes(raw), Image))
            elif conn.topic == f"{BAG_NAMESPACE}/camera_info":
                infos.append(deserialize_message(bytes(raw), CameraInfo))
    finally:
        reader.close()
    return list(zip(images, infos))


# ----------------------------------------------------------------------------------
# Running the node
# ----------------------------------------------------------------------------------
def node_parameters(
    models: dict[str, str],
    device: str,
    weights: dict[str, Path | None],
    network: tuple[int, int] | None,
    relative_depth: tuple[float, float] | None,
    backend: str = "auto",
) -> list[Any]:
    """The ``rclpy`` parameter overrides of the demo's ``DptNode``.

    Args:
        models: ``depth`` and ``segmentation`` model names ('' disables the task).
        device: the ``device`` parameter (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        weights: for each enabled task, its checkpoint file, or None for random weights.
        network: network input (width, height) in pixels, or None for the model's own.
        relative_depth: (scale, shift) of ``relative_depth`` for a relative depth
            model, or None.
        backend: the ``backend`` parameter.

    Returns:
        A list of ``rclpy.parameter.Parameter``.
    """
    params = [
        Parameter("depth.model_type", value=models["depth"]),
        Parameter("segmentation.model_type", value=models["segmentation"]),
        Parameter("device", value=device),
        Parameter("backend", value=backend),
        # An engine build (about 40 s a model on a CPU) cannot pay back over a demo's few
        # frames (about 5 % a frame): a cached engine is used, none is built.
        Parameter("engine_build", value="never"),
        Parameter("qos.input.reliability", value="reliable"),
        Parameter("qos.input.depth", value=10),
        Parameter("qos.output.depth", value=10),
        Parameter("log_period", value=0.0),
    ]
    for task, path in weights.items():
        if path is not None:
            params.append(Parameter(f"{task}.weights", value=str(path)))
        else:
            params.append(Parameter(f"{task}.random_weights", value=True))
    if network is not None:
        params += [
            Parameter("network_width", value=int(network[0])),
            Parameter("network_height", value=int(network[1])),
        ]
    if relative_depth is not None:
        params += [
            Parameter("relative_depth.scale", value=relative_depth[0]),
            Parameter("relative_depth.shift", value=relative_depth[1]),
        ]
    return params


@dataclass
class FrameResult:
    """One frame sent to the node and the outputs it got back.

    Attributes:
        stamp: (sec, nanosec) of the frame's header.
        published: ``time.monotonic()`` when its image was published (seconds).
        done: ``time.monotonic()`` when its last output arrived (seconds).
        messages: the outputs received, by output topic name.
        event: set when every wanted output has arrived.
    """

    stamp: tuple[int, int]
    published: float = 0.0
    done: float = 0.0
    messages: dict[str, Any] = field(default_factory=dict)
    event: threading.Event = field(default_factory=threading.Event)


class _Driver:
    """Publishes the frames to the node and collects its outputs (one executor)."""

    def __init__(self, context, namespace: str, wanted: list[str]) -> None:
        self.node = Node("dpt_ros_demo_player", context=context)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
        )
        self.image_pub = self.node.create_publisher(Image, f"{namespace}/image_raw", qos)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{namespace}/camera_info", qos)
        self.wanted = list(wanted)
        self.frames: dict[tuple[int, int], FrameResult] = {}
        self.lock = threading.Lock()
        self.subs = [
            self.node.create_subscription(
                OUTPUT_TOPICS[name], f"{namespace}/{name}", self._callback(name), qos
            )
            for name in self.wanted
        ]

    def _callback(self, name: str):
        def receive(msg) -> None:
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            with self.lock:
                frame = self.frames.get(key)
                if frame is None or name in frame.messages:
                    return  # not one of ours (or a repeat)
                frame.messages[name] = msg
                if len(frame.messages) == len(self.wanted):
                    frame.done = time.monotonic()
                    frame.event.set()

        return receive

    def wait_for_connections(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (
                self.image_pub.get_subscription_count() > 0
                and self.info_pub.get_subscription_count() > 0
                and all(self.node.count_publishers(s.topic_name) > 0 for s in self.subs)
            ):
                time.sleep(0.3)  # let the endpoints match
                return
            time.sleep(0.05)
        raise RuntimeError(f"dpt_node's topics did not connect within {timeout:.0f} s")

    def send(self, image_msg, info_msg, timeout: float) -> FrameResult:
        # Stamped now, as a live camera stamps its frames: the node's stamp-to-publish
        # latency then measures the same span as the demo's publish-to-output one
        # (the bag's stamps are from before the node started).
        stamp = self.node.get_clock().now().to_msg()
        image_msg.header.stamp = info_msg.header.stamp = stamp
        key = (stamp.sec, stamp.nanosec)
        frame = FrameResult(key)
        with self.lock:
            self.frames[key] = frame
        self.info_pub.publish(info_msg)
        frame.published = time.monotonic()
        self.image_pub.publish(image_msg)
        frame.event.wait(timeout)
        return frame


@dataclass
class NodeRun:
    """What :func:`run_node` got from the node.

    Attributes:
        results: one per frame sent, in order (a frame whose ``event`` is not set got
            no complete output within :data:`FRAME_TIMEOUT_S`).
        status: ``DptNode.status()`` after the last frame.
        t_ready: ``time.monotonic()`` when the node was connected and had the camera
            info, just before the first frame (seconds).
        t_done: ``time.monotonic()`` after the last frame (seconds).
    """

    results: list[FrameResult]
    status: dict[str, str]
    t_ready: float
    t_done: float


@dataclass
class _RosSession:
    """The ROS objects of :func:`run_node`, filled in as they are created (None: not
    created), so that whatever was created is cleaned up."""

    context: Any
    node: Any = None
    driver: _Driver | None = None
    executor: Any = None
    spinner: threading.Thread | None = None


def run_node(frames: Sequence[tuple[Any, Any]], params: list[Any]) -> NodeRun:
    """Runs a ``DptNode`` with ``params`` in this process and feeds it ``frames``.

    Args:
        frames: (Image, CameraInfo) pairs, as :func:`read_bag_frames` returns them.
        params: the node's parameter overrides (:func:`node_parameters`).
    """
    context = rclpy.Context()
    rclpy.init(context=context)
    session = _RosSession(context)
    try:
        _start_session(session, params)
        return _feed_frames(session, frames)
    finally:
        _close_session(session)


def _start_session(session: _RosSession, params: list[Any]) -> None:
    """Creates the node, the driver and the executor, and spins it in a thread."""
    session.node = DptNode(
        namespace=LIVE_NAMESPACE,
        context=session.context,
        parameter_overrides=params,
        cli_args=["--ros-args", "-r", "image:=image_raw"],
        use_global_arguments=False,
    )
    topics = session.node.pipeline.topics()
    wanted = [t for t in COLLECTED_OUTPUTS if t in topics]
    session.driver = _Driver(session.context, LIVE_NAMESPACE, wanted)
    session.executor = SingleThreadedExecutor(context=session.context)
    session.executor.add_node(session.node)
    session.executor.add_node(session.driver.node)
    session.spinner = threading.Thread(
        target=_spin, args=(session.executor,), name="dpt_demo_executor", daemon=True
    )
    session.spinner.start()


def _feed_frames(session: _RosSession, frames: Sequence[tuple[Any, Any]]) -> NodeRun:
    """Sends the frames one at a time, each when the previous one is complete."""
    driver = session.driver
    assert driver is not None, "the driver is created before frames are fed"
    driver.wait_for_connections()
    if frames:  # the node has the camera_info before the first image
        driver.info_pub.publish(frames[0][1])
        time.sleep(0.3)
    t_ready = time.monotonic()
    results = [driver.send(image_msg, info_msg, FRAME_TIMEOUT_S) for image_msg, info_msg in frames]
    t_done = time.monotonic()
    return NodeRun(results, session.node.status(), t_ready, t_done)


def _close_session(session: _RosSession) -> None:
    """Stops the executor, destroys the nodes and shuts the context down."""
    if session.executor is not None:
        session.executor.shutdown()
    if session.driver is not None:
        session.driver.node.destroy_node()
    if session.node is not None:
        session.node.destroy_node()
    rclpy.try_shutdown(context=session.context)
    if session.spinner is not None:
        session.spinner.join(timeout=10)


def _spin(executor) -> None:
    try:
        executor.spin()
    except Exception:  # the context shut down under the executor
        pass
