"""``dpt-ros demo``: a synthetic camera run through the real ``dpt_node``, end to end.

1. A short camera sequence is rendered with numpy (ray casting): a textured ground
   plane, boxes and spheres, seen from a camera moving forward at 10 Hz, with its
   ``CameraInfo`` and the exact depth. It is written as a rosbag2 bag
   (``<output>/input_bag``: ``/camera/image_raw``, ``/camera/camera_info`` and the
   ground truth ``/camera/ground_truth/depth``), so it can be replayed with
   ``dpt-ros play`` or processed with ``dpt-ros bag``.
2. The bag's frames are published over ROS topics (under ``/dpt_ros_demo/camera``) to
   an in-process ``DptNode``, one frame at a time (the next frame goes out when every
   output of the previous one has arrived, so none is dropped on a slow CPU), and the
   node's outputs are collected.
3. What a user looks at is written to the output directory, per frame
   ``frame_XXX_input.png``, ``frame_XXX_depth_color.png``,
   ``frame_XXX_labels_overlay.png`` and ``frame_XXX_cloud_preview.png`` (the
   PointCloud2 seen from above and behind the camera, coloured by depth), plus
   ``summary.json``; a summary is printed.

Weights: the official file of each model is used when found in ``--weights-dir`` or
in the checkpoint cache (``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``). The demo never
downloads: a missing file means random weights (``*.random_weights``), announced in a
banner, and meaningless outputs (the plumbing and the timing are still real).

Metric depth for the point cloud: a metric model (``dpt_hybrid_nyu``,
``dpt_hybrid_kitti``) is used as is. A relative model (the default ``dpt_hybrid``)
gets the calibration ``relative_depth.scale = 0.000305``, ``relative_depth.shift =
0.1378``: the output transform of the NYU-trained DPT-Hybrid, whose head was
fine-tuned from the relative model. It yields indoor-like depths (about 0.9 to 7 m)
and is only plausible, not exact: a relative model needs a per-camera calibration.
``summary.json`` reports the median relative error against the rendered depth.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from dpt_ros.cli.args import network_size, positive_int

DEFAULT_OUTPUT = "demo_output"
DEFAULT_DEPTH_MODEL = "dpt_hybrid"
DEFAULT_SEGMENTATION_MODEL = "dpt_hybrid_ade20k"
IMAGE_SIZES = {"320x240": (320, 240), "640x480": (640, 480)}
#: Network input size on the CPU (small, so that the demo is quick).
CPU_NETWORK_SIZE = (256, 192)
#: relative_depth calibration used with relative models (see the module docstring).
RELATIVE_SCALE, RELATIVE_SHIFT = 0.000305, 0.1378
LIVE_NAMESPACE = "/dpt_ros_demo/camera"
BAG_NAMESPACE = "/camera"
FRAME_ID = "demo_camera_optical"
FRAME_PERIOD_NS = 100_000_000  # 10 Hz
FRAME_TIMEOUT_S = 300.0


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    """Adds ``dpt-ros demo`` to ``subparsers``."""
    p = subparsers.add_parser(
        name, help="run a synthetic camera through dpt_node and write pictures of the outputs",
        description="Render a short synthetic camera sequence (written as a bag), run it "
                    "through dpt_node over ROS topics in this process, and write the depth "
                    "colour map, label overlay and a point cloud preview of every frame, "
                    "plus summary.json. Never downloads weights: without the official files "
                    "it runs with random weights and says so.",
        epilog="Official weights are looked up in --weights-dir, then in the checkpoint "
               "cache ($DPT_ROS_CACHE or ~/.cache/dpt_ros). Relative depth models get the "
               f"calibration relative_depth.scale={RELATIVE_SCALE}, "
               f"shift={RELATIVE_SHIFT} for the point cloud (plausible, not exact).")
    p.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                   help=f"output directory (default ./{DEFAULT_OUTPUT})")
    p.add_argument("--frames", type=positive_int, default=8, metavar="N",
                   help="frames to render and process (default 8)")
    p.add_argument("--depth-model", default=DEFAULT_DEPTH_MODEL, metavar="M",
                   help=f"depth model (default {DEFAULT_DEPTH_MODEL}; '' disables depth)")
    p.add_argument("--segmentation-model", default=DEFAULT_SEGMENTATION_MODEL, metavar="M",
                   help=f"segmentation model (default {DEFAULT_SEGMENTATION_MODEL}; '' "
                        "disables segmentation)")
    p.add_argument("--weights-dir", metavar="DIR",
                   help="directory holding official checkpoint files (by their official names)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--network-size", type=network_size, metavar="WxH",
                   help=f"network input size (default {CPU_NETWORK_SIZE[0]}x"
                        f"{CPU_NETWORK_SIZE[1]} on the CPU, the model's own on CUDA)")
    p.add_argument("--image-size", choices=tuple(IMAGE_SIZES), default="320x240",
                   help="size of the rendered camera images (default 320x240)")
    return p


# ----------------------------------------------------------------------------------
# The synthetic scene (numpy ray casting)
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    lo: Tuple[float, float, float]
    hi: Tuple[float, float, float]
    color: Tuple[float, float, float]


@dataclass(frozen=True)
class Sphere:
    center: Tuple[float, float, float]
    radius: float
    color: Tuple[float, float, float]


# World frame: X right, Y up, Z forward; the ground is Y = 0. Colours are RGB in 0..1.
BOXES = (
    Box((-1.6, 0.0, 4.6), (-0.6, 1.0, 5.6), (0.80, 0.22, 0.18)),
    Box((1.0, 0.0, 7.6), (2.2, 1.6, 8.8), (0.20, 0.35, 0.80)),
    Box((-3.4, 0.0, 10.0), (-2.2, 2.6, 11.2), (0.85, 0.75, 0.20)),
    Box((0.2, 0.0, 13.0), (1.8, 1.2, 14.0), (0.55, 0.55, 0.60)),
)
SPHERES = (
    Sphere((0.35, 0.5, 3.6), 0.5, (0.20, 0.70, 0.30)),
    Sphere((-0.9, 0.35, 7.2), 0.35, (0.75, 0.25, 0.70)),
    Sphere((2.6, 0.8, 5.4), 0.8, (0.95, 0.55, 0.15)),
)
_LIGHT = np.array([0.45, 0.8, -0.4]) / np.linalg.norm([0.45, 0.8, -0.4])
_SKY_TOP, _SKY_HORIZON = np.array([0.30, 0.50, 0.85]), np.array([0.78, 0.86, 0.95])


def camera_intrinsics(width: int, height: int) -> Tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of the demo camera: 62 degrees horizontal field of view."""
    f = 0.5 * width / math.tan(math.radians(62.0) / 2)
    return f, f, (width - 1) / 2.0, (height - 1) / 2.0


def camera_pose(t: float) -> Tuple[np.ndarray, np.ndarray]:
    """(rotation optical->world (3, 3), position (3,)) at ``t`` seconds."""
    yaw = math.radians(6.0) * math.sin(0.9 * t)
    pitch = math.radians(12.0)  # looking down
    position = np.array([0.4 * math.sin(0.6 * t), 1.25 + 0.03 * math.sin(2.0 * t), 1.5 * t])
    flip = np.diag([1.0, -1.0, 1.0])  # optical (y down) -> world axes (Y up)
    cp, sp = math.cos(pitch), math.sin(pitch)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    cy, sy = math.cos(yaw), math.sin(yaw)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return turn @ tilt @ flip, position


def render(t: float, width: int, height: int) -> Tuple[np.ndarray, np.ndarray]:
    """Ray-casts the scene at time ``t``.

    Returns:
        ((H, W, 3) uint8 RGB, (H, W) float32 depth along the optical axis in metres,
        +inf where only sky is seen).
    """
    fx, fy, cx, cy = camera_intrinsics(width, height)
    rot, pos = camera_pose(t)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays_cam = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1)
    d = rays_cam @ rot.T  # world directions whose optical z is 1: hit distance = depth
    depth = np.full((height, width), np.inf)
    normal = np.zeros((height, width, 3))
    albedo = np.zeros((height, width, 3))
    kind = np.zeros((height, width), np.int8)  # 0 sky, 1 ground, 2 object

    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[..., 1] < -1e-9, -pos[1] / d[..., 1], np.inf)
    hit = t_ground < depth
    depth[hit], kind[hit] = t_ground[hit], 1
    normal[hit] = (0.0, 1.0, 0.0)

    for s in SPHERES:
        oc = pos - np.asarray(s.center)
        a = np.einsum("hwc,hwc->hw", d, d)
        b = 2.0 * (d @ oc)
        c = oc @ oc - s.radius ** 2
        disc = b * b - 4 * a * c
        with np.errstate(invalid="ignore"):
            t_hit = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
        t_hit = np.where((disc >= 0) & (t_hit > 0), t_hit, np.inf)
        hit = t_hit < depth
        depth[hit], kind[hit] = t_hit[hit], 2
        p = pos + d[hit] * t_hit[hit][:, None]
        normal[hit] = (p - np.asarray(s.center)) / s.radius
        albedo[hit] = s.color

    for box in BOXES:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (np.asarray(box.lo) - pos) / d
            t2 = (np.asarray(box.hi) - pos) / d
        t1 = np.nan_to_num(t1, nan=-np.inf)
        t2 = np.nan_to_num(t2, nan=np.inf)
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near, t_far = near.max(-1), far.min(-1)
        t_hit = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
        hit = t_hit < depth
        depth[hit], kind[hit] = t_hit[hit], 2
        axis = near.argmax(-1)[hit]
        n = np.zeros((int(hit.sum()), 3))
        n[np.arange(len(axis)), axis] = -np.sign(d[hit][np.arange(len(axis)), axis])
        normal[hit] = n
        albedo[hit] = box.color

    ground = kind == 1
    p = pos + d[ground] * depth[ground][:, None]
    tile = (np.floor(p[:, 0] / 0.5) + np.floor(p[:, 2] / 0.5)).astype(np.int64) & 1
    grain = 0.08 * np.sin(7.3 * p[:, 0]) * np.sin(5.1 * p[:, 2])  # fine texture
    base = np.where(tile[:, None] == 1, (0.42, 0.52, 0.30), (0.58, 0.62, 0.42))
    albedo[ground] = base * (1.0 + grain[:, None])

    lit = 0.35 + 0.65 * np.clip(normal @ _LIGHT, 0.0, None)
    color = albedo * lit[..., None]
    fog = 1.0 - np.exp(-np.where(np.isfinite(depth), depth, 0.0) / 40.0)
    sky_mix = np.clip((v / height)[..., None] * 1.6, 0.0, 1.0)
    sky = _SKY_TOP * (1 - sky_mix) + _SKY_HORIZON * sky_mix
    color = color * (1 - fog[..., None]) + _SKY_HORIZON * fog[..., None]
    color[kind == 0] = sky[kind == 0]
    rgb = np.clip(np.rint(color * 255.0), 0, 255).astype(np.uint8)
    return rgb, depth.astype(np.float32)


# ----------------------------------------------------------------------------------
# Point cloud preview (numpy splatting with a z-buffer)
# ----------------------------------------------------------------------------------
def render_cloud_preview(xyz: np.ndarray, width: int = 480, height: int = 360) -> np.ndarray:
    """An oblique view of camera-frame points (optical: x right, y down, z forward).

    The virtual camera is above, behind and left of the real one, looking at the
    cloud; points are coloured by their depth (Turbo, near = red) and drawn as 2x2
    splats, nearest on top. The real camera is the white marker.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    import cv2

    from dpt_ros.viz.colormap import TURBO_LUT, colorize

    image = np.full((height, width, 3), 24, np.uint8)
    pts = np.asarray(xyz, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        cv2.putText(image, "no valid points", (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (220, 220, 220), 1, cv2.LINE_AA)
        return image
    world = np.stack([pts[:, 0], -pts[:, 1], pts[:, 2]], 1)  # Y up
    target = np.median(world, 0)
    extent = float(np.percentile(np.linalg.norm(world - target, axis=1), 95)) + 1e-3
    az, el = math.radians(-25.0), math.radians(40.0)
    eye = target + 2.2 * extent * np.array([math.sin(az) * math.cos(el), math.sin(el),
                                            -math.cos(az) * math.cos(el)])
    forward = (target - eye) / np.linalg.norm(target - eye)
    # X right, Y up, Z forward is a left-handed frame: these cross products give the
    # view's right and up vectors.
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    up = np.cross(forward, right)

    def view(p: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        rel = p - eye
        zc = rel @ forward
        with np.errstate(divide="ignore", invalid="ignore"):
            return (rel @ right) / zc, -(rel @ up) / zc, zc

    # Fit the view to the cloud (1st..99th percentile of the projections), margins kept.
    un, vn, zc = view(world)
    front = zc > 1e-3
    if not front.any():
        return image
    (u0, u1), (v0, v1) = (np.percentile(un[front], [1, 99]), np.percentile(vn[front], [1, 99]))
    margin = 16
    scale = min((width - 2 * margin) / max(u1 - u0, 1e-6),
                (height - 2 * margin - 20) / max(v1 - v0, 1e-6))
    uc, vc = (u0 + u1) / 2, (v0 + v1) / 2

    def project(p: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b, z = view(p)
        return (a - uc) * scale + width / 2, (b - vc) * scale + (height - 20) / 2, z

    u, v, zc = project(world)
    lo, hi = np.percentile(pts[:, 2], [2, 98])
    colors = colorize(pts[:, 2][None], float(hi), float(max(lo, 0.0)), lut=TURBO_LUT)[0]
    ok = zc > 1e-3
    u, v, zc, colors = u[ok], v[ok], zc[ok], colors[ok]
    ui, vi = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    offsets = ((0, 0), (1, 0), (0, 1), (1, 1))
    us = np.concatenate([ui + dx for dx, _ in offsets])
    vs = np.concatenate([vi + dy for _, dy in offsets])
    zs, cs = np.tile(zc, 4), np.tile(colors, (4, 1))
    inside = (us >= 0) & (us < width) & (vs >= 0) & (vs < height)
    us, vs, zs, cs = us[inside], vs[inside], zs[inside], cs[inside]
    order = np.argsort(zs, kind="stable")
    pix = (vs * width + us)[order]
    _, first = np.unique(pix, return_index=True)  # the nearest splat of each pixel
    flat = image.reshape(-1, 3)
    flat[pix[first]] = cs[order][first]

    cam_u, cam_v, cam_z = project(np.zeros((1, 3)))
    if cam_z[0] > 0 and np.isfinite(cam_u[0]) and np.isfinite(cam_v[0]):
        centre = (int(round(cam_u[0])), int(round(cam_v[0])))
        cv2.drawMarker(image, centre, (255, 255, 255), cv2.MARKER_TRIANGLE_UP, 14, 2)
    text = f"{len(pts)} points, z {lo:.1f}-{hi:.1f} m"
    cv2.putText(image, text, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (230, 230, 230), 1, cv2.LINE_AA)
    return image


# ----------------------------------------------------------------------------------
# Input bag
# ----------------------------------------------------------------------------------
def _camera_info_msg(width: int, height: int, stamp_ns: int):
    from dpt_ros.ros.camera import Intrinsics

    fx, fy, cx, cy = camera_intrinsics(width, height)
    info = Intrinsics(fx, fy, cx, cy, width, height).to_camera_info(FRAME_ID)
    info.header.stamp.sec, info.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    return info


def write_input_bag(path: Path, frames: int, width: int, height: int,
                    start_ns: int) -> List[np.ndarray]:
    """Renders the sequence into a new sqlite3 rosbag2 bag; returns the true depths."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    from dpt_ros.ros.bagio import BAG_VERSION, output_typestore
    from dpt_ros.ros.image_codec import depth_to_image_msg, rgb_to_image_msg

    store = output_typestore()
    depths = []
    writer = Writer(path, version=BAG_VERSION, storage_plugin=StoragePlugin.SQLITE3)
    writer.open()
    try:
        image_conn = writer.add_connection(f"{BAG_NAMESPACE}/image_raw",
                                           "sensor_msgs/msg/Image", typestore=store)
        info_conn = writer.add_connection(f"{BAG_NAMESPACE}/camera_info",
                                          "sensor_msgs/msg/CameraInfo", typestore=store)
        depth_conn = writer.add_connection(f"{BAG_NAMESPACE}/ground_truth/depth",
                                           "sensor_msgs/msg/Image", typestore=store)
        for i in range(frames):
            stamp = start_ns + i * FRAME_PERIOD_NS
            rgb, depth = render(i * FRAME_PERIOD_NS / 1e9, width, height)
            info = _camera_info_msg(width, height, stamp)
            writer.write(info_conn, stamp, serialize_message(info))
            writer.write(image_conn, stamp, serialize_message(rgb_to_image_msg(rgb, info.header)))
            writer.write(depth_conn, stamp,
                         serialize_message(depth_to_image_msg(depth, info.header)))
            depths.append(depth)
    finally:
        writer.close()
    return depths


def _prepare_output(out_dir: Path) -> Path:
    """Creates ``out_dir``; removes the previous demo's bag and frame pictures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bag_dir = out_dir / "input_bag"
    if bag_dir.exists():
        names = {p.name for p in bag_dir.iterdir()}
        ours = all(n == "metadata.yaml" or n.endswith((".db3", ".mcap")) for n in names)
        if not bag_dir.is_dir() or not ours:
            raise FileExistsError(f"{bag_dir} exists and is not a demo bag; remove it or "
                                  "choose another --output")
        shutil.rmtree(bag_dir)
    for kind in ("input", "depth_color", "labels_overlay", "cloud_preview"):
        for old in out_dir.glob(f"frame_*_{kind}.png"):
            old.unlink()
    return bag_dir


# ----------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------
def find_weights(model: str, weights_dir: Optional[str]) -> Optional[Path]:
    """The official checkpoint of ``model`` in ``weights_dir`` or the cache, or None."""
    from dpt_ros.models import get_spec
    from dpt_ros.models.weights.download import cached_checkpoint_path

    spec = get_spec(model)
    candidates = []
    if weights_dir:
        candidates.append(Path(weights_dir).expanduser() / spec.file_name)
    candidates.append(cached_checkpoint_path(spec.file_name))
    for path in candidates:
        if path.is_file():
            return path
    return None


def _random_weights_banner(missing: Dict[str, str], places: List[str]) -> str:
    rule = "!" * 78
    lines = [rule, "!!  NO OFFICIAL WEIGHTS FOUND: THIS DEMO RUNS WITH RANDOM WEIGHTS",
             "!!"]
    for model, file_name in missing.items():
        lines.append(f"!!  {model}: {file_name} not found")
    lines.append(f"!!  looked in: {', '.join(places)}")
    lines += ["!!",
              "!!  Depth, labels and point clouds below are MEANINGLESS noise; the ROS",
              "!!  plumbing and the timings are real. For real outputs put the official",
              "!!  files there (or run dpt_node once, which downloads them), or pass",
              "!!  --weights-dir DIR. The demo itself never downloads anything.",
              rule]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# Running the node
# ----------------------------------------------------------------------------------
@dataclass
class _FrameResult:
    stamp: Tuple[int, int]
    published: float = 0.0
    done: float = 0.0
    messages: Dict[str, Any] = field(default_factory=dict)
    event: threading.Event = field(default_factory=threading.Event)


class _Driver:
    """Publishes the frames to the node and collects its outputs (one executor)."""

    def __init__(self, context, namespace: str, wanted: List[str]) -> None:
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from dpt_ros.node.pipeline import OUTPUT_TOPICS

        self.node = Node("dpt_ros_demo_player", context=context)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, f"{namespace}/image_raw", qos)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{namespace}/camera_info", qos)
        self.wanted = list(wanted)
        self.frames: Dict[Tuple[int, int], _FrameResult] = {}
        self.lock = threading.Lock()
        self.subs = [self.node.create_subscription(OUTPUT_TOPICS[name], f"{namespace}/{name}",
                                                   self._callback(name), qos)
                     for name in self.wanted]

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
            if (self.image_pub.get_subscription_count() > 0
                    and self.info_pub.get_subscription_count() > 0
                    and all(self.node.count_publishers(s.topic_name) > 0 for s in self.subs)):
                time.sleep(0.3)  # let the endpoints match
                return
            time.sleep(0.05)
        raise RuntimeError("dpt_node's topics did not connect within "
                           f"{timeout:.0f} s")

    def send(self, image_msg, info_msg, timeout: float) -> _FrameResult:
        key = (image_msg.header.stamp.sec, image_msg.header.stamp.nanosec)
        frame = _FrameResult(key)
        with self.lock:
            self.frames[key] = frame
        self.info_pub.publish(info_msg)
        frame.published = time.monotonic()
        self.image_pub.publish(image_msg)
        frame.event.wait(timeout)
        return frame


def _read_bag_frames(bag_dir: Path):
    """(Image, CameraInfo) pairs of the demo bag, in order."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from dpt_ros.ros.bagio import open_bag

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


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f"could not write {path}")


def run(args: argparse.Namespace) -> int:
    """``dpt-ros demo``; see the module docstring."""
    t_start = time.monotonic()
    import warnings

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from dpt_ros.models import get_spec, resolve_device
    from dpt_ros.models.weights.download import default_cache_dir
    from dpt_ros.node.node import DptNode
    from dpt_ros.ros.image_codec import image_msg_to_array
    from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

    depth_model = (args.depth_model or "").strip()
    seg_model = (args.segmentation_model or "").strip()
    if not depth_model and not seg_model:
        raise ValueError("both models are disabled: nothing to demonstrate")
    specs = {}
    for task, name in (("depth", depth_model), ("segmentation", seg_model)):
        if name:
            spec = get_spec(name)  # ValueError lists the valid names
            if spec.task != task:
                raise ValueError(f"{name} is not a {task} model")
            specs[task] = spec
    device = resolve_device(args.device)
    network = args.network_size or (CPU_NETWORK_SIZE if device.type == "cpu" else None)
    width, height = IMAGE_SIZES[args.image_size]
    out_dir = Path(args.output)

    weights: Dict[str, Optional[Path]] = {t: find_weights(s.name, args.weights_dir)
                                          for t, s in specs.items()}
    missing = {specs[t].name: specs[t].file_name for t, w in weights.items() if w is None}
    if missing:
        places = ([str(Path(args.weights_dir).expanduser())] if args.weights_dir else [])
        places.append(str(default_cache_dir()))
        print(_random_weights_banner(missing, places), file=sys.stderr)

    relative = "depth" in specs and not specs["depth"].is_metric
    params = [Parameter("depth.model_type", value=depth_model),
              Parameter("segmentation.model_type", value=seg_model),
              Parameter("device", value=args.device),
              Parameter("qos.input.reliability", value="reliable"),
              Parameter("qos.input.depth", value=10),
              Parameter("qos.output.depth", value=10),
              Parameter("log_period", value=0.0)]
    for task in specs:
        if weights[task] is not None:
            params.append(Parameter(f"{task}.weights", value=str(weights[task])))
        else:
            params.append(Parameter(f"{task}.random_weights", value=True))
    if network is not None:
        params += [Parameter("network_width", value=int(network[0])),
                   Parameter("network_height", value=int(network[1]))]
    if relative:
        params += [Parameter("relative_depth.scale", value=RELATIVE_SCALE),
                   Parameter("relative_depth.shift", value=RELATIVE_SHIFT)]

    # 1. The input bag.
    bag_dir = _prepare_output(out_dir)
    start_ns = time.time_ns() // 10**9 * 10**9
    true_depths = write_input_bag(bag_dir, args.frames, width, height, start_ns)
    frames = _read_bag_frames(bag_dir)
    t_rendered = time.monotonic()

    # 2. The node, fed over ROS topics.
    context = rclpy.Context()
    rclpy.init(context=context)
    node = driver = executor = spinner = None
    results: List[_FrameResult] = []
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*RANDOM weights")
            node = DptNode(namespace=LIVE_NAMESPACE, context=context, parameter_overrides=params,
                           cli_args=["--ros-args", "-r", "image:=image_raw"],
                           use_global_arguments=False)
        wanted = [t for t in ("depth/colored", "depth/image", "segmentation/colored", "points")
                  if t in node.pipeline.topics()]
        driver = _Driver(context, LIVE_NAMESPACE, wanted)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(driver.node)
        spinner = threading.Thread(target=_spin, args=(executor,), name="dpt_demo_executor",
                                   daemon=True)
        spinner.start()
        driver.wait_for_connections()
        if frames:  # the node has the camera_info before the first image
            driver.info_pub.publish(frames[0][1])
            time.sleep(0.3)
        t_ready = time.monotonic()
        for image_msg, info_msg in frames:
            results.append(driver.send(image_msg, info_msg, FRAME_TIMEOUT_S))
        t_done = time.monotonic()
        status = node.status()
        models_text, device_text = status["models"], status["device"]
    finally:
        if executor is not None:
            executor.shutdown()
        if driver is not None:
            driver.node.destroy_node()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        if spinner is not None:
            spinner.join(timeout=10)

    # 3. Pictures and summary.
    files: List[str] = []
    abs_rel: List[float] = []
    processed = [r for r in results if r.event.is_set()]
    for i, (result, (image_msg, _)) in enumerate(zip(results, frames)):
        stem = out_dir / f"frame_{i:03d}"
        _write_png(Path(f"{stem}_input.png"), image_msg_to_array(image_msg))
        files.append(f"{stem.name}_input.png")
        msgs = result.messages
        if "depth/colored" in msgs:
            _write_png(Path(f"{stem}_depth_color.png"), image_msg_to_array(msgs["depth/colored"]))
            files.append(f"{stem.name}_depth_color.png")
        if "segmentation/colored" in msgs:
            _write_png(Path(f"{stem}_labels_overlay.png"),
                       image_msg_to_array(msgs["segmentation/colored"]))
            files.append(f"{stem.name}_labels_overlay.png")
        if "points" in msgs:
            arrays = pointcloud2_to_arrays(msgs["points"])
            xyz = np.stack([arrays["x"], arrays["y"], arrays["z"]], -1)
            _write_png(Path(f"{stem}_cloud_preview.png"), render_cloud_preview(xyz))
            files.append(f"{stem.name}_cloud_preview.png")
        if "depth/image" in msgs:
            est = image_msg_to_array(msgs["depth/image"])
            truth = true_depths[i]
            if est.shape == truth.shape:
                ok = np.isfinite(truth) & np.isfinite(est) & (truth > 0)
                if ok.any():
                    abs_rel.append(float(np.median(np.abs(est[ok] - truth[ok]) / truth[ok])))

    latencies = [(r.done - r.published) * 1e3 for r in processed]
    span = (max(r.done for r in processed) - processed[0].published) if processed else 0.0
    rate = len(processed) / span if span > 0 else 0.0
    median_latency = statistics.median(latencies) if latencies else float("nan")
    total = time.monotonic() - t_start
    models = {}
    for task, spec in specs.items():
        models[task] = {
            "model": spec.name,
            "output": spec.output,
            "weights": str(weights[task]) if weights[task] is not None else None,
            "real_weights": weights[task] is not None,
        }
    if relative:
        models["depth"]["metric_from_relative"] = {"scale": RELATIVE_SCALE,
                                                   "shift": RELATIVE_SHIFT}
    summary = {
        "frames": len(frames),
        "frames_processed": len(processed),
        "image_size": [width, height],
        "network_size": list(network) if network is not None else "model default",
        "device": device_text,
        "models": models,
        "real_weights": not missing,
        "processed_rate_hz": round(rate, 3),
        "median_latency_ms": round(median_latency, 1) if latencies else None,
        "latencies_ms": [round(x, 1) for x in latencies],
        "depth_abs_rel_median_vs_ground_truth": (round(statistics.median(abs_rel), 4)
                                                 if abs_rel else None),
        "node_status": status,
        "input_bag": str(bag_dir),
        "input_topics": [f"{BAG_NAMESPACE}/image_raw", f"{BAG_NAMESPACE}/camera_info",
                         f"{BAG_NAMESPACE}/ground_truth/depth"],
        "live_namespace": LIVE_NAMESPACE,
        "files": files,
        "seconds": {"total": round(total, 2), "render_and_bag": round(t_rendered - t_start, 2),
                    "node_start": round(t_ready - t_rendered, 2),
                    "frames": round(t_done - t_ready, 2)},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    weights_text = "official weights" if not missing else (
        "RANDOM weights (outputs meaningless)" if len(missing) == len(specs)
        else "RANDOM weights for " + ", ".join(missing))
    print(f"dpt-ros demo: {len(frames)} synthetic {width}x{height} frames through dpt_node "
          f"({models_text}, {weights_text}) on {device_text}")
    net_text = f"{network[0]}x{network[1]}" if network is not None else "model default"
    print(f"  processed {len(processed)}/{len(frames)} frames at {rate:.2f} frames/s, "
          f"median latency {median_latency:.0f} ms (network input {net_text})")
    if relative:
        print(f"  point cloud: {specs['depth'].name} is relative; metric depth from the "
              f"calibration relative_depth.scale={RELATIVE_SCALE}, "
              f"shift={RELATIVE_SHIFT} (plausible, not exact)")
    if abs_rel:
        note = "" if weights.get("depth") is not None else " (meaningless: random weights)"
        print(f"  depth vs rendered ground truth: median relative error "
              f"{statistics.median(abs_rel):.2f}{note}")
    kinds = [k for k in ("input", "depth_color", "labels_overlay", "cloud_preview")
             if any(f.endswith(f"_{k}.png") for f in files)]
    print(f"  wrote {out_dir}/: frame_XXX_{{{','.join(kinds)}}}.png for {len(frames)} "
          f"frame(s), summary.json; input bag {bag_dir}")
    print(f"  total time {total:.1f} s (node start {t_ready - t_rendered:.1f} s, "
          f"frames {t_done - t_ready:.1f} s)")
    if len(processed) < len(frames):
        print(f"dpt-ros demo: warning: {len(frames) - len(processed)} frame(s) got no "
              f"complete output within {FRAME_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    return 0


def _spin(executor) -> None:
    try:
        executor.spin()
    except Exception:  # the context shut down under the executor
        pass
