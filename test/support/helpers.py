"""Helpers shared by the test modules (fixtures are in ``conftest.py``): a probe node
and spinning for the node tests, small bags for the bag tests, and the one-line error
contract of the command line."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from dpt_ros.cli.main import main
from dpt_ros.node.node import DptNode
from dpt_ros.pipeline.frames import OUTPUT_TOPICS


@functools.cache
def slowdown() -> float:
    """How many times longer than on an idle machine things take here now, measured
    once per session (at least 1, at most 10): the larger of the run queue per core
    (load average) and how long a small fixed piece of work takes on the wall clock
    for each second of CPU it gets (a busy machine shares its cores). Deadlines of
    tests are :func:`scaled` by it, so that a loaded machine (a 2-core CI runner, the
    suite beside another job) gets time in proportion, and an idle one fails a hang
    as soon as before. ``DPT_ROS_TEST_SLOWDOWN`` sets it instead."""
    given = os.environ.get("DPT_ROS_TEST_SLOWDOWN")
    if given:
        return min(10.0, max(1.0, float(given)))
    wall, cpu = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    for _ in range(20):  # ~0.1 s of CPU: numpy and the interpreter, as start-up uses them
        a = rng.standard_normal((160, 160))
        _ = sum(float(x) for x in (a @ a).ravel()[:4000])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(10.0, max(1.0, wall / max(cpu, 1e-3), load))


def scaled(seconds: float) -> float:
    """A deadline of ``seconds`` on an idle machine, on this one now (:func:`slowdown`)."""
    return seconds * slowdown()


def default_signals() -> None:
    """``preexec_fn`` for a child that is signalled in a test: SIGINT, SIGTERM, SIGHUP
    and SIGPIPE at their defaults in the child, whatever the test runner inherited
    (``nohup`` ignores SIGHUP, a CI runner may ignore SIGINT), so the child's handling
    is its own."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


#: What every command-line error looks like: one line, exit status 2.
ERROR_PREFIX = "dpt-ros: error:"


def one_error_line(rc: int, err: str, *fragments: str) -> str:
    """Asserts the one-line error contract (exit status 2, no traceback, exactly one
    ``dpt-ros: error:`` line holding every fragment) and returns that line."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- the node
FAST = [
    Parameter("device", value="cpu"),
    Parameter("backend", value="torch"),
    Parameter("network_width", value=64),
    Parameter("network_height", value=64),
]


class Probe:
    """A test node: publishes image/camera_info and records every output topic, all
    relative to ``namespace`` (a camera's)."""

    #: Every output of DPT and Depth Anything V2 models but segmentation/confidence,
    #: which is built only on demand.
    TOPICS = {
        t: ty
        for t, ty in OUTPUT_TOPICS.items()
        if t
        not in (
            "segmentation/confidence",
            "depth/confidence",
            "depth/confidence_mono8",
            "depth/sky",
        )
    }
    #: What is recorded: those and Depth Anything 3's own outputs.
    RECORDED = {t: ty for t, ty in OUTPUT_TOPICS.items() if t != "segmentation/confidence"}

    def __init__(self, add: Callable, compressed: bool = False, namespace: str = "") -> None:
        self.node = add(Node("probe", namespace=namespace))
        self.got: dict[str, list] = {t: [] for t in self.RECORDED}
        for topic, typ in self.RECORDED.items():
            self.node.create_subscription(typ, topic, lambda m, t=topic: self.got[t].append(m), 10)
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        if compressed:
            self.image_pub = self.node.create_publisher(CompressedImage, "image/compressed", 10)
        else:
            self.image_pub = self.node.create_publisher(Image, "image", 10)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", 10)


def spin_until(executor, predicate, timeout: float = 60.0) -> bool:
    """Spins until ``predicate()`` holds; False after ``timeout`` seconds (of an idle
    machine: :func:`scaled` to this one's load)."""
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        if predicate():
            return True
    return False


def rgb_msg(
    rgb: np.ndarray, sec: int, frame_id: str = "camera_optical_frame", encoding: str = "rgb8"
) -> Image:
    msg = Image()
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = 250
    msg.header.frame_id = frame_id
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    data = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(data).tobytes()
    return msg


def camera_info(width: int, height: int, frame_id: str = "camera_optical_frame") -> CameraInfo:
    info = CameraInfo()
    info.header.frame_id = frame_id
    info.width, info.height = width, height
    f = 0.8 * width
    info.k = [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, (width - 1) / 2, 0.0, 0.0, f, (height - 1) / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def small_image(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def wait_for_subscribers(executor, probe: Probe) -> None:
    assert spin_until(
        executor,
        lambda: (
            probe.image_pub.get_subscription_count() > 0
            and probe.info_pub.get_subscription_count() > 0
        ),
        10,
    )


def start_node(
    add: Callable, *overrides: Parameter, node_class: type = DptNode, probe: bool = True
):
    """``node_class`` with the fast test parameters (:data:`FAST`) and ``overrides``,
    spun by the ``ros`` fixture's ``add``; with ``probe``, a :class:`Probe` too.

    Returns:
        (node, probe or None)
    """
    node = add(node_class(parameter_overrides=[*FAST, *overrides]))
    return node, (Probe(add) if probe else None)


# --------------------------------------------------------------------------- bags
#: The bags' image size.
H, W = 48, 64
#: Flags for small, fast models in ``dpt-ros bag``.
NET = ["--network-size", "64x64", "--random-weights", "--backend", "torch", "-q"]
T0 = 1_700_000_000_000_000_000
PERIOD = 100_000_000
N_FRAMES = 4
TIE_FRAME = 2  # the second camera_info is recorded at this frame's bag time, after it


def frame_rgb(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:H, 0:W]
    base = np.stack([xx * 4, yy * 5, (xx + yy + 20 * i) % 256], -1).astype(np.int32)
    return np.clip(base + rng.integers(0, 40, (H, W, 3)), 0, 255).astype(np.uint8)


def bag_camera_info(fx: float, frame_id: str = "cam_optical") -> CameraInfo:
    info = CameraInfo()
    info.header.frame_id = frame_id
    info.width, info.height = W, H
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [fx, 0.0, W / 2, 0.0, fx, H / 2, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, W / 2, 0.0, 0.0, fx, H / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def image_msg(i: int, compressed: bool = False):
    rgb = frame_rgb(i)
    if compressed:
        msg = CompressedImage()
        msg.format = "rgb8; png compressed bgr8"
        msg.data = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()
    else:
        msg = Image()
        msg.height, msg.width, msg.encoding, msg.step = H, W, "rgb8", W * 3
        msg.data = rgb.tobytes()
    msg.header.frame_id = "cam_optical"
    msg.header.stamp.sec = 500 + i
    msg.header.stamp.nanosec = 1000 * i
    return msg


def write_bag(
    path: Path,
    storage: str = "sqlite3",
    compressed: bool = False,
    broken_frame: int = -1,
    broken_data: bytes = b"not an image",
    frames: int = N_FRAMES,
) -> str:
    """A bag with /cam/camera_info (fx 50 at T0, fx 80 at frame TIE_FRAME's time),
    ``frames`` images (frame ``broken_frame``'s data replaced by ``broken_data``), and
    /chatter strings. Returns the image topic."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    topic = "/cam/image_raw/compressed" if compressed else "/cam/image_raw"
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    writer = Writer(path, version=8, storage_plugin=StoragePlugin[storage.upper()])
    with writer:
        info_conn = writer.add_connection(
            "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        image_conn = writer.add_connection(topic, msgtype, typestore=store)
        chat_conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        writer.write(info_conn, T0 - 1, serialize_message(bag_camera_info(50.0)))
        for i in range(frames):
            t = T0 + i * PERIOD
            msg = image_msg(i, compressed)
            if i == broken_frame:
                msg.data = broken_data
            writer.write(image_conn, t, serialize_message(msg))
            if i == TIE_FRAME:
                writer.write(info_conn, t, serialize_message(bag_camera_info(80.0)))
            writer.write(chat_conn, t + PERIOD // 2, serialize_message(String(data=f"hi {i}")))
    return topic


def write_ros1_bag(path: Path, focal_lengths: Sequence[float] = (), frames: int = 2) -> None:
    """A ROS 1 bag (``path``, a ``.bag`` file) with ``frames`` rgb8 images
    ``frame_rgb(i)`` on /cam/image_raw, stamped 500 + i s (bag time ``T0 + i * PERIOD``),
    and, where ``focal_lengths`` gives one, a /cam/camera_info of that focal length (in
    ROS 1's layout: ``K``, ``P``, ``D``, ``R``) 1 ns before each image."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    types = store.types
    with Writer(path) as writer:
        info_conn = None
        if focal_lengths:
            info_conn = writer.add_connection(
                "/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
            )
        conn = writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i in range(frames):
            t = T0 + i * PERIOD
            stamp = types["builtin_interfaces/msg/Time"](sec=500 + i, nanosec=0)
            header = types["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id="cam_optical")
            if info_conn is not None:
                k = np.array([focal_lengths[i], 0, W / 2, 0, focal_lengths[i], H / 2, 0, 0, 1])
                info = types["sensor_msgs/msg/CameraInfo"](
                    header=header,
                    height=H,
                    width=W,
                    distortion_model="plumb_bob",
                    D=np.zeros(5),
                    K=k,
                    R=np.eye(3).reshape(-1),
                    P=np.insert(k, (3, 6, 9), 0.0),
                    binning_x=0,
                    binning_y=0,
                    roi=types["sensor_msgs/msg/RegionOfInterest"](
                        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
                    ),
                )
                writer.write(
                    info_conn, t - 1, store.serialize_ros1(info, "sensor_msgs/msg/CameraInfo")
                )
            msg = types["sensor_msgs/msg/Image"](
                header=header,
                height=H,
                width=W,
                encoding="rgb8",
                is_bigendian=0,
                step=W * 3,
                data=frame_rgb(i).reshape(-1),
            )
            writer.write(conn, t, store.serialize_ros1(msg, "sensor_msgs/msg/Image"))


@contextlib.contextmanager
def small_device(mount: Path, size: str = "8m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``mount`` (created): a device that fills up. The
    test is skipped where mounting is not permitted (not root, no CAP_SYS_ADMIN, a
    restricted container)."""
    import pytest

    mount.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_device(directory: Path) -> None:
    """Writes a file into ``directory`` until its device is full (ENOSPC)."""
    with open(directory / "filler", "wb", buffering=0) as filler:
        for block in (1 << 20, 4096, 1):
            try:
                while True:
                    filler.write(bytes(block))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


def read_bag(path: Path) -> dict[str, list[tuple[int, str, bytes]]]:
    from rosbags.rosbag2 import Reader

    out: dict[str, list[tuple[int, str, bytes]]] = {}
    with Reader(path) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, conn.msgtype, bytes(raw)))
    return out


def tree_hash(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def run_bag(*argv: str) -> int:
    return main(["bag", *argv])


def check_copied(inp: Path, out: dict[str, list]) -> None:
    for topic, msgs in read_bag(inp).items():
        assert out[topic] == msgs, topic


# --------------------------------------------------------------------------- images
def deflated_zeros(size: int, chunk: int = 1 << 24) -> bytes:
    """``size`` zero bytes compressed with zlib (TIFF's Deflate), made in chunks so that
    a gigabyte of zeros never sits in the test's memory."""
    packer = zlib.compressobj(1)  # fast; about 4.6 MB per GB of zeros
    zeros = bytes(min(size, chunk))
    parts = []
    for start in range(0, size, chunk):
        parts.append(packer.compress(zeros[: min(chunk, size - start)]))
    parts.append(packer.flush())
    return b"".join(parts)


def tiff_file(
    width: int,
    height: int,
    *,
    tile: tuple[int, int] | None = None,
    rows_per_strip: int | None = None,
    samples: int = 3,
    extra_tags: Sequence[tuple[int, int, int]] = (),
) -> bytes:
    """A little-endian baseline TIFF of zeros, 8 bits per sample, Deflate-compressed,
    that OpenCV decodes: tiled with ``tile=(TileWidth, TileLength)``, else in strips of
    ``rows_per_strip`` rows (default: one strip). Every tile or strip holds the
    uncompressed size its tags declare, however large (a "tile bomb" when the tile is far
    larger than the image). ``extra_tags``: (tag, type, value) entries added as given."""
    if tile is not None:
        tw, th = tile
        pieces = -(-width // tw) * -(-height // th)
        piece_bytes = tw * th * samples
    else:
        tw, th = width, rows_per_strip or height
        pieces = -(-height // th)
        piece_bytes = width * th * samples
    body = deflated_zeros(piece_bytes)
    # layout: header, pieces, BitsPerSample array, offsets and counts arrays, directory
    data_at = 8
    bps_at = data_at + pieces * len(body)
    offsets_at = bps_at + 2 * samples
    counts_at = offsets_at + 4 * pieces
    ifd_at = counts_at + 4 * pieces
    offsets = [data_at + i * len(body) for i in range(pieces)]

    def array_or_value(values: list[int], at: int) -> int:
        return values[0] if len(values) == 1 else at

    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, samples, samples == 1 and 8 or bps_at),
        (259, 3, 1, 8),  # Deflate
        (262, 3, 1, 2 if samples >= 3 else 1),  # RGB or BlackIsZero
        (277, 3, 1, samples),
        (284, 3, 1, 1),  # PlanarConfiguration: chunky
    ]
    if samples == 2 or samples == 4:
        entries.append((338, 3, 1, 2))  # ExtraSamples: unassociated alpha
    if tile is not None:
        entries += [
            (322, 4, 1, tw),
            (323, 4, 1, th),
            (324, 4, pieces, array_or_value(offsets, offsets_at)),
            (325, 4, pieces, array_or_value([len(body)] * pieces, counts_at)),
        ]
    else:
        entries += [
            (273, 4, pieces, array_or_value(offsets, offsets_at)),
            (278, 4, 1, th),
            (279, 4, pieces, array_or_value([len(body)] * pieces, counts_at)),
        ]
    entries += [(tag, kind, 1, value) for tag, kind, value in extra_tags]
    entries.sort(key=lambda e: e[0])
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = (
            struct.pack("<H", value) + b"\0\0"
            if kind == 3 and count == 1
            else struct.pack("<I", value)
        )
        directory += struct.pack("<HHI", tag, kind, count) + packed
    directory += struct.pack("<I", 0)
    return b"".join(
        [
            b"II*\x00" + struct.pack("<I", ifd_at),
            body * pieces,
            struct.pack(f"<{samples}H", *[8] * samples),
            struct.pack(f"<{pieces}I", *offsets),
            struct.pack(f"<{pieces}I", *[len(body)] * pieces),
            directory,
        ]
    )
