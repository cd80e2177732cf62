"""The work of ``dpt-ros bag`` on one bag: read it, run the frame pipeline on one image
topic, write the new bag (see :mod:`dpt_ros.cli.bag.run`). The fleet
(:mod:`dpt_ros.cli.bag.fleet`) runs :func:`process_bag` for each of many bags.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import errno
import logging
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.exceptions import InvalidNamespaceException
from rclpy.serialization import serialize_message
from rclpy.validate_namespace import validate_namespace
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tqdm import tqdm

from dpt_ros.alignment.online import AlignmentOptions
from dpt_ros.cli.args import (
    options_from_flags,
)
from dpt_ros.cli.bag import alignment as bag_alignment
from dpt_ros.cli.bag import any_view as bag_any_view
from dpt_ros.cli.bag import temporal as bag_temporal
from dpt_ros.cli.stop_signals import (
    Terminated,
    raise_received,
    raise_swallowed,
    stop_signals_deferred,
    stopping,
    swallowed_stop,
    with_note,
)
from dpt_ros.models import Predictor
from dpt_ros.models.options import PredictorOptions
from dpt_ros.options import from_flags
from dpt_ros.pipeline import intake
from dpt_ros.pipeline.frames import ON_DEMAND_TOPICS, OUTPUT_TOPICS, FramePipeline
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.bagio import (
    BAG_VERSION,
    CAMERA_INFO_TYPE,
    COMPRESSED_TYPE,
    absolute_topic,
    cdr_converter,
    default_namespace,
    image_topics,
    input_storage,
    open_bag,
    output_typestore,
    ros2_typestore,
)
from dpt_ros.ros.label_info import LABEL_INFO_TYPE, label_info_cdr, register_label_info
from dpt_ros.ros.messages import deserialized
from dpt_ros.text import shown

_LOG = logging.getLogger(__name__)


def _absolute_namespace(ns: str) -> str:
    ns = ns.strip().strip("/")
    return "/" + ns if ns else ""


def check_output_namespace(ns: str | None) -> None:
    """ValueError unless ``--output-namespace`` is a valid ROS namespace (rclpy's rules:
    alphanumerics, ``_`` and ``/``, no token starting with a digit): a bag with topics
    that no node can subscribe to is no output."""
    if ns is None:
        return

    try:
        validate_namespace(_absolute_namespace(ns) or "/")
    except InvalidNamespaceException as exc:
        rule = str(exc).splitlines()[0].removeprefix("Invalid namespace: ").rstrip(":")
        raise ValueError(
            f"--output-namespace {shown(ns)} is not a valid ROS namespace: {rule}"
        ) from None


def _describe_topics(topics: dict[str, str]) -> str:
    if not topics:
        return "none"
    return ", ".join(f"{_topic(t)} ({ty})" for t, ty in topics.items())


def _topic(name: str) -> str:
    """A topic name read from a bag, as it may appear in a line: as is when it is a
    plain name, else quoted and escaped (:func:`~dpt_ros.text.shown`)."""
    plain = name.isprintable() and len(name) <= 200 and " " not in name
    return name if plain else shown(name)


@dataclass
class _Frame:
    position: int  # index of its image message in the pending list
    timestamp: int
    header: Any
    rgb: Any
    info: Any
    inputs: intake.NetworkInputs | None = None  # as intake.take found them


def make_predictor(options: PredictorOptions):
    """The Predictor of one model (a separate function so tests can reuse models)."""
    return Predictor(options, progress=True)


def _task_options(args: argparse.Namespace, task: str) -> PredictorOptions | None:
    """The options of the ``task`` model from the flags, None if it is disabled."""
    model_type = ((args.depth_model if task == "depth" else args.segmentation_model) or "").strip()
    weights = args.depth_weights if task == "depth" else args.segmentation_weights
    if not model_type:
        if weights:
            raise ValueError(f"--{task}-weights given but {task} is disabled")
        return None
    options = options_from_flags(
        args, model_type, weights=weights, random_weights=args.random_weights and not weights
    )
    problems = options.problems(task)
    if problems:
        hint = " (or '' to disable depth)" if task == "depth" else ""
        raise ValueError("; ".join(problems) + hint)
    return options


#: Bytes written after which the output checkpoints (besides once a second): sqlite3
#: commits, MCAP closes its chunk and marks where the file ends.
_CHECKPOINT_BYTES = 4 << 20
#: Room kept aside in the output directory for closing it on a full disk.
_RESERVE_BYTES = 1 << 20


class DiskFull(OSError):
    """The output's device is full; the output is closed as a valid bag of what was
    written up to the last checkpoint (the message says how many frames)."""


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    return "full" in str(exc).lower()  # sqlite3: "database or disk is full"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class _WriterState:
    """What rosbags' Writer counts (for metadata.yaml), at a checkpoint."""

    frames: int
    counts: dict[int, int]
    min_timestamp: int
    max_timestamp: int
    topic_counts: dict[str, int]

    @classmethod
    def of(cls, writer, frames: int, topic_counts: dict[str, int]) -> _WriterState:
        return cls(
            frames,
            dict(writer.counts),
            writer.min_timestamp,
            writer.max_timestamp,
            dict(topic_counts),
        )

    def restore(self, writer, topic_counts: dict[str, int]) -> None:
        writer.counts.clear()
        writer.counts.update(self.counts)
        for conn in writer.connections:  # connections added since: no message kept
            writer.counts.setdefault(conn.id, 0)
        writer.min_timestamp, writer.max_timestamp = self.min_timestamp, self.max_timestamp
        topic_counts.clear()
        topic_counts.update(self.topic_counts)


@dataclass
class _McapMark:
    """Where rosbags' MCAP writer stood at a checkpoint: the file's length, the chunks
    it indexes, its open chunk (schema and channel records not yet in a chunk), and the
    message counts and times of its summary.

    The writer keeps each chunk in memory up to 1 MiB and writes the index, statistics
    and footer only when closed, so a disk that fills midway left a file cut inside a
    record, and no summary: not a bag. :meth:`restore` cuts the file back to the mark
    and the writer's own state with it, after which its ``close`` writes a valid file of
    what came before. This reads and sets the writer's attributes (rosbags 0.11's
    ``McapWriter``); :meth:`of` returns None for a writer without them."""

    _ATTRIBUTES = (
        "path",
        "bio",
        "chunk",
        "chunks",
        "channel_stats",
        "message_start_time",
        "message_end_time",
        "close_chunk",
    )

    offset: int
    chunks: int
    chunk: Any
    channel_stats: dict[int, int]
    message_start_time: int
    message_end_time: int

    @classmethod
    def of(cls, storage, close_chunk: bool = True) -> _McapMark | None:
        """Writes what ``storage`` holds (its open chunk too, if ``close_chunk``) and
        marks it; None if ``storage`` is not an MCAP writer this class knows."""
        if not all(hasattr(storage, name) for name in cls._ATTRIBUTES):
            return None
        if close_chunk and storage.chunk.bio.tell():
            storage.close_chunk()
        storage.bio.flush()  # a full disk shows here at the latest (DiskFull)
        return cls(
            storage.bio.tell(),
            len(storage.chunks),
            copy.deepcopy(storage.chunk),
            dict(storage.channel_stats),
            storage.message_start_time,
            storage.message_end_time,
        )

    def restore(self, storage) -> None:
        """Cuts ``storage``'s file back to the mark (after a full disk: what it still
        buffers is dropped) and its state with it; channels added since stay, with no
        messages."""
        with contextlib.suppress(OSError):  # flushing the rest fails; the file is closed
            storage.bio.close()
        os.truncate(storage.path, self.offset)
        storage.bio = storage.path.open("r+b")
        storage.bio.seek(self.offset)
        del storage.chunks[self.chunks :]
        storage.chunk = copy.deepcopy(self.chunk)
        storage.channel_stats = {c: self.channel_stats.get(c, 0) for c in storage.channel_stats}
        storage.message_start_time = self.message_start_time
        storage.message_end_time = self.message_end_time


class _OutputBag:
    """The output writer: copies of the input connections plus lazily added outputs."""

    def __init__(self, path: Path, storage: str, reader) -> None:
        # optional dependency: rosbags
        from rosbags.interfaces import ConnectionExtRosbag2
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._ext_type = ConnectionExtRosbag2
        self.closed = False
        self.writer = Writer(
            path, version=BAG_VERSION, storage_plugin=StoragePlugin[storage.upper()]
        )
        self.path = path
        #: A full disk was met (:class:`DiskFull`).
        self.full = False
        self._unsaved = 0
        self._saved_at = time.monotonic()
        self._saved: _WriterState | None = None
        #: MCAP output: where its file stood at the last checkpoint.
        self._mcap_saved: _McapMark | None = None
        #: Room kept aside for closing the bag on a full disk (freed by :meth:`close`).
        self._reserve = path / ".dpt-ros-reserve"
        try:
            self.writer.open()
            self._start(reader)
            self._reserve.write_bytes(bytes(_RESERVE_BYTES))
            self._mcap_saved = _McapMark.of(self.writer.storage, close_chunk=False)
            self._saved = _WriterState.of(self.writer, 0, self.counts)
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Removes the output, which holds nothing yet: no half-made output is left
        behind (a rerun would be refused by it)."""
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def _start(self, reader) -> None:
        self.reader = reader
        self.dst_store = ros2_typestore(reader)
        self.out_store = output_typestore()
        self.input_map: dict[tuple[int, int], tuple[Any, Callable[[Any], bytes]]] = {}
        self.outputs: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._converters: dict[str, Callable[[Any], bytes]] = {}
        for rconn in reader.connections:
            self.input_map[(rconn.id, id(rconn.owner))] = (
                self._copy_connection(rconn),
                self._converter(rconn.msgtype),
            )

    def _converter(self, msgtype: str) -> Callable[[Any], bytes]:
        if msgtype not in self._converters:
            self._converters[msgtype] = cdr_converter(self.reader, self.dst_store, msgtype)
        return self._converters[msgtype]

    def _copy_connection(self, rconn):
        # optional dependency: rosbags
        from rosbags.interfaces import ConnectionExtRosbag2, MessageDefinitionFormat

        ext = rconn.ext if isinstance(rconn.ext, self._ext_type) else None
        fmt = ext.serialization_format if ext else "cdr"
        qos = list(ext.offered_qos_profiles) if ext else []
        for conn in self.writer.connections:
            out_ext = conn.ext  # a rosbag2 writer's connections have rosbag2 extensions
            if (
                isinstance(out_ext, ConnectionExtRosbag2)
                and conn.topic == rconn.topic
                and conn.msgtype == rconn.msgtype
                and out_ext.serialization_format == fmt
                and list(out_ext.offered_qos_profiles) == qos
            ):
                return conn
        if (
            self.reader.is2
            and rconn.digest
            and rconn.msgdef.data
            and rconn.msgdef.format == MessageDefinitionFormat.MSG
        ):
            return self.writer.add_connection(
                rconn.topic,
                rconn.msgtype,
                msgdef=rconn.msgdef.data,
                rihs01=rconn.digest,
                serialization_format=fmt,
                offered_qos_profiles=qos,
            )
        return self.writer.add_connection(
            rconn.topic,
            rconn.msgtype,
            typestore=self.dst_store,
            serialization_format=fmt,
            offered_qos_profiles=qos,
        )

    def convert_input(self, rconn, raw) -> tuple[Any, bytes]:
        conn, convert = self.input_map[(rconn.id, id(rconn.owner))]
        return conn, convert(raw)

    def write(self, conn, timestamp: int, data: bytes) -> None:
        with self._disk_full_checked():
            self.writer.write(conn, timestamp, data)
        self._unsaved += len(data)

    def write_output(
        self, topic: str, msgtype: str, timestamp: int, data: bytes, latched: bool = False
    ) -> None:
        """Writes an output message; ``latched`` offers reliable, transient-local QoS (as
        the node publishes it), so that ``ros2 bag play`` republishes it that way."""
        conn = self.outputs.get(topic)
        if conn is None:
            store = self.out_store if msgtype in self.out_store.fielddefs else self.dst_store
            qos = [_latched_qos()] if latched else []
            with self._disk_full_checked():
                conn = self.outputs[topic] = self.writer.add_connection(
                    topic, msgtype, typestore=store, offered_qos_profiles=qos
                )
        self.write(conn, timestamp, data)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_label_info(self, topic: str, timestamp: int, frame_id: str) -> None:
        """``vision_msgs/LabelInfo`` of the published label ids on ``topic``, in the
        camera's ``frame_id``."""
        register_label_info(self.out_store)
        data = label_info_cdr(self.out_store, timestamp, frame_id)
        self.write_output(topic, LABEL_INFO_TYPE, timestamp, data, latched=True)

    def checkpoint(self, frames: int) -> None:
        """Makes what was written so far (``frames`` frames) safe against a later
        failure, at most once a second or every ``_CHECKPOINT_BYTES``: sqlite3 commits
        its transaction (rosbags commits only when the bag is closed, so a full disk
        used to lose every message); MCAP writes its open chunk and marks where the file
        ends (:class:`_McapMark`: a full disk used to leave no valid file)."""
        storage = self.writer.storage
        conn = getattr(storage, "conn", None)  # rosbags' Sqlite3Writer
        now = time.monotonic()
        if conn is None and self._mcap_saved is None:
            return
        if self._unsaved < _CHECKPOINT_BYTES and now - self._saved_at < 1.0:
            return
        with self._disk_full_checked():
            if conn is not None:
                conn.commit()
            else:
                self._mcap_saved = _McapMark.of(storage)
        self._saved = _WriterState.of(self.writer, frames, self.counts)
        self._unsaved, self._saved_at = 0, now

    @contextlib.contextmanager
    def _disk_full_checked(self) -> Iterator[None]:
        """Turns a full disk (sqlite3's "database or disk is full", ENOSPC) into
        :class:`DiskFull`, after which :meth:`close` keeps the last checkpoint."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as exc:
            if not _is_disk_full(exc):
                raise
            self.full = True
            raise self._disk_full(exc) from None

    def _disk_full(self, exc: BaseException) -> DiskFull:
        saved = self._saved.frames if self._saved is not None else 0
        return DiskFull(
            f"no space left on the device of {str(self.path)!r} ({_one_line(exc)}); "
            f"stopped: the output keeps the {saved} frame(s) written up to the last "
            "checkpoint, closed as a valid bag"
        )

    def close(self) -> None:
        """Writes the rest and ``metadata.yaml``; a second call does nothing. After a
        full disk, the last checkpoint is what the bag holds: the rest is rolled back,
        and the room kept aside at the start is freed for the metadata. A disk that
        fills during the close (MCAP writes its last chunk and its summary then) is
        met the same way: rolled back, closed again, :class:`DiskFull` raised."""
        import sqlite3  # start-up: only for the sqlite3 output's errors

        if self.closed:
            return
        self.closed = True
        if self.full:
            self._roll_back()
        self._reserve.unlink(missing_ok=True)
        try:
            self.writer.close()
        except (sqlite3.OperationalError, OSError) as exc:
            if self.full or self.writer.storage is None or not _is_disk_full(exc):
                raise  # nothing left to roll back, or not a full disk
            self.full = True
            self._roll_back()
            self.writer.close()
            raise self._disk_full(exc) from None

    def _roll_back(self) -> None:
        """Back to the last checkpoint: the storage's and the writer's counts."""
        storage = self.writer.storage
        conn = getattr(storage, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.rollback()
        elif self._mcap_saved is not None:
            self._mcap_saved.restore(storage)
        if self._saved is not None:
            self._saved.restore(self.writer, self.counts)


def _latched_qos():
    """Reliable, transient local, keep last 1: how the node offers label_info."""
    # optional dependency: rosbags
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    never = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL,
        deadline=never,
        lifespan=never,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=never,
        avoid_ros_namespace_conventions=False,
    )


@dataclass
class _Plan:
    """What to read from the input bag and where outputs go."""

    image_topic: str
    image_type: str
    info_topic: str | None
    namespace: str


def check_paths(in_path: Path, out_path: Path) -> tuple[Path, Path]:
    """(input, output) after checking: the input exists, the output does not and is
    neither the input nor inside the input bag's directory."""
    if not in_path.exists():
        raise FileNotFoundError(f"input bag {str(in_path)!r} does not exist")
    if out_path.exists() or out_path.is_symlink():
        raise FileExistsError(
            f"output {str(out_path)!r} already exists; choose a new path "
            "(the output bag is never overwritten)"
        )
    try:
        out_abs, in_abs = out_path.resolve(), in_path.resolve()
    except OSError:
        return in_path, out_path
    if out_abs == in_abs:
        raise ValueError("output and input are the same path")
    # A rosbag2 directory (it has metadata.yaml): the input, or a .db3/.mcap's folder.
    bag_dir = in_abs if in_abs.is_dir() else in_abs.parent
    if (bag_dir / "metadata.yaml").is_file() and out_abs.is_relative_to(bag_dir):
        raise ValueError(
            f"output {str(out_path)!r} is inside the input bag's directory {str(bag_dir)!r}; "
            "choose a path outside it (a bag directory holds one bag)"
        )
    return in_path, out_path


def _camera_info_topic(
    args: argparse.Namespace, topics: dict[str, str], image_topic: str, image_type: str
) -> str | None:
    """The camera_info topic: the flag's, else the image's sibling if the bag has it."""
    infos = {t: ty for t, ty in topics.items() if ty == CAMERA_INFO_TYPE}
    if args.camera_info_topic:
        info_topic = absolute_topic(args.camera_info_topic)
        if info_topic not in infos:
            what = f"has type {topics[info_topic]}" if info_topic in topics else "is not in the bag"
            raise ValueError(
                f"camera_info topic {info_topic} {what}; the bag's "
                f"CameraInfo topics: {', '.join(map(_topic, infos)) or 'none'}"
            )
        return info_topic
    guess = default_namespace(image_topic, image_type) + "/camera_info"
    if guess in infos:
        return guess
    print(
        f"dpt-ros bag: no camera_info topic ({guess} is not in the bag): no "
        "depth/camera_info or points; give --camera-info-topic "
        f"(CameraInfo topics: {', '.join(map(_topic, infos)) or 'none'})",
        file=sys.stderr,
    )
    return None


def _plan(args: argparse.Namespace, reader) -> _Plan:
    topics = {t: info.msgtype for t, info in reader.topics.items()}
    images = image_topics(reader)
    image_topic = absolute_topic(args.image_topic)
    if image_topic not in images:
        what = (
            f"has type {topics[image_topic]}, not an image type"
            if image_topic in topics
            else "is not in the bag"
        )
        raise ValueError(
            f"image topic {image_topic} {what}; the bag's image topics: {_describe_topics(images)}"
        )
    image_type = images[image_topic]
    namespace = (
        _absolute_namespace(args.output_namespace)
        if args.output_namespace is not None
        else default_namespace(image_topic, image_type)
    )
    info_topic = _camera_info_topic(args, topics, image_topic, image_type)
    return _Plan(image_topic, image_type, info_topic, namespace)


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    """The per-frame options the flags ask for (``--alignment`` is also the online
    aligner's); ValueError naming every flag with a problem."""
    options: PipelineOptions = from_flags(
        PipelineOptions, args, relative_depth_alignment=args.alignment
    )
    return options


def make_pipeline(
    args: argparse.Namespace, depth: PredictorOptions | None, segmentation: PredictorOptions | None
):
    """The FramePipeline the flags describe, its models loaded."""
    options = pipeline_options(args)
    pipeline = FramePipeline(
        make_predictor(depth) if depth else None,
        make_predictor(segmentation) if segmentation else None,
        options,
    )
    # Reset with the colour ranges at the start of every bag (process_bag).
    pipeline.temporal = bag_temporal.streams(bag_temporal.options_from_args(args))
    return pipeline


class _BagJob:
    """Streams the input bag to the output, batching image frames through the pipeline.

    Every input message is written at its own time; a frame's outputs follow its image.
    """

    def __init__(
        self,
        plan: _Plan,
        pipeline,
        out_bag: _OutputBag,
        batch_size: int,
        bar,
        alignment: bag_alignment.BagAlignment | None = None,
        max_pixels: int = 0,
        any_view: bag_any_view.BagAnyView | None = None,
    ) -> None:
        self.plan, self.pipeline, self.out_bag, self.bar = plan, pipeline, out_bag, bar
        self.batch_size = batch_size
        compressed = plan.image_type == COMPRESSED_TYPE
        self.msg_class = CompressedImage if compressed else Image
        self.max_pixels = max_pixels
        self.pending: list[tuple[Any, int, bytes]] = []
        self.batch: list[_Frame] = []
        self.latest_info: Any = None
        self.frames_done = 0
        self.skipped = 0
        self.bad_camera_info = 0
        self.info_warnings: dict[str, int] = {}
        self.label_info_written = False
        self.alignment = alignment
        #: Windows of views (``--any-view-window``): each frame runs in its window.
        self.any_view = any_view
        if any_view is not None:
            self.batch_size = 1

    def feed(self, rconn, timestamp: int, raw: Any) -> None:
        """One input message, in bag order."""
        # A full batch waits for the first later message, so that a camera_info
        # recorded at the same time as its image is still found; with online alignment,
        # for the references recorded up to stamp_tolerance after its last image.
        while self._ready(timestamp):
            self._flush(self._ready(timestamp))
        conn, data = self.out_bag.convert_input(rconn, raw)
        if not self.label_info_written and self.pipeline.segmentation is not None:
            # With the camera's first message, whose frame it takes: a costmap layer
            # needs the names before the labels.
            frame_id = self._camera_frame(rconn, data)
            if frame_id is not None:
                topic = f"{self.plan.namespace}/segmentation/label_info"
                self.out_bag.write_label_info(topic, timestamp, frame_id)
                self.label_info_written = True
        self.pending.append((conn, timestamp, data))
        if rconn.topic == self.plan.info_topic and rconn.msgtype == CAMERA_INFO_TYPE:
            self._camera_info(timestamp, data)
        elif rconn.topic == self.plan.image_topic and rconn.msgtype == self.plan.image_type:
            self._image(timestamp, data)
        elif self.any_view is not None and self.any_view.feed(rconn.topic, data):
            pass
        elif self.alignment is not None:
            self.alignment.feed(rconn.topic, data, timestamp, frames_waiting=bool(self.batch))
        if not self.batch:
            self.flush()  # nothing waits for the model: write through

    def _chunk(self) -> int:
        """How many of the waiting frames make the next batch: up to ``batch_size``,
        with online alignment only frames of the first one's size (a batch is fitted
        frame by frame in order)."""
        n = min(len(self.batch), self.batch_size)
        if self.alignment is not None and n:
            shape = self.batch[0].rgb.shape
            n = next((i for i in range(1, n) if self.batch[i].rgb.shape != shape), n)
        return n

    def _ready(self, timestamp: int) -> int:
        """The size of the batch to run before a message at ``timestamp``, 0 for none
        yet: a complete batch whose last image is over (its references' window, with
        online alignment, has passed), or any when too many references wait."""
        n = self._chunk()
        if n == 0 or (n < self.batch_size and n == len(self.batch)):
            return 0
        wait = self.alignment.window_ns if self.alignment is not None else 0
        if self.any_view is not None:  # the odometry around the frame has been read
            wait = self.any_view.wait_ns
        if timestamp > self.batch[n - 1].timestamp + wait:
            return n
        return n if self.alignment is not None and self.alignment.overfull() else 0

    def _camera_frame(self, rconn, data: bytes) -> str | None:
        """The frame_id of the camera's image or camera_info message, else None."""
        if rconn.topic == self.plan.info_topic and rconn.msgtype == CAMERA_INFO_TYPE:
            kind: type = CameraInfo
        elif rconn.topic == self.plan.image_topic and rconn.msgtype == self.plan.image_type:
            kind = self.msg_class
        else:
            return None
        try:
            return deserialized(data, kind).header.frame_id
        except (ValueError, TypeError, RuntimeError):  # rclpy's RMWError is a RuntimeError
            return None  # _camera_info or _image skips it and counts it

    def _camera_info(self, timestamp: int, data: bytes) -> None:
        try:
            info = deserialized(data, CameraInfo)
        except (ValueError, TypeError, RuntimeError) as exc:  # a corrupt message: RMWError
            self.bad_camera_info += 1
            _LOG.warning("skipping an undecodable camera_info at %d ns: %s", timestamp, exc)
            return  # the frames keep the latest good camera_info
        self.latest_info = info
        for frame in self.batch:
            if frame.timestamp == timestamp:
                frame.info = info

    def _image(self, timestamp: int, data: bytes) -> None:
        predictors = self.pipeline.models
        try:
            msg = deserialized(data, self.msg_class)
            rgb, inputs = intake.take(msg, self.max_pixels, predictors)
        except (intake.FrameRefused, TypeError, RuntimeError) as exc:
            self.skipped += 1
            _LOG.warning("skipping an undecodable frame at %d ns: %s", timestamp, exc)
            self.bar.update(1)
            return
        self.batch.append(
            _Frame(len(self.pending) - 1, timestamp, msg.header, rgb, self.latest_info, inputs)
        )

    def flush(self) -> None:
        """Runs every waiting frame and writes everything pending, in order."""
        while self.batch:
            self._flush(self._chunk())
        self._flush(0)

    def _flush(self, n: int) -> None:
        """Runs the first ``n`` waiting frames and writes the pending messages before
        the next waiting frame's image (all, if none waits)."""
        outputs = self._process_batch(self.batch[:n])
        rest = self.batch[n:]
        end = rest[0].position if rest else len(self.pending)
        for i, (conn, ts, data) in enumerate(self.pending[:end]):
            self.out_bag.write(conn, ts, data)
            for name, message in outputs.get(i, {}).items():
                self.out_bag.write_output(
                    f"{self.plan.namespace}/{name}",
                    _type_name(OUTPUT_TOPICS.get(name, type(message))),
                    ts,
                    serialize_message(message),
                )
        self.frames_done += n
        self.bar.update(n)
        del self.pending[:end]
        for frame in rest:
            frame.position -= end
        self.batch = rest
        self.out_bag.checkpoint(self.frames_done)

    def _process_batch(self, b: list[_Frame]) -> dict[int, dict[str, Any]]:
        """{position in pending: messages} of the frames ``b``."""
        if not b:
            return {}
        if self.any_view is not None:
            output_size = self.pipeline.options.output_size
            return {
                f.position: self.any_view.process(f.rgb, f.header, f.info, output_size) for f in b
            }
        for predictor in (self.pipeline.depth, self.pipeline.segmentation):
            if predictor is not None:  # an engine for a new image size: built once
                predictor.prepare(b[0].rgb.shape[:2], len(b))
        headers = [f.header for f in b]
        align = self.alignment
        results = self.pipeline.process_batch(
            [f.rgb for f in b],
            headers,
            [f.info for f in b],
            # points_confident: a copy of points with fewer points, for a live costmap.
            on_demand=ON_DEMAND_TOPICS - {"points_confident"},
            calibrations=align.batch(headers, [f.timestamp for f in b]) if align else None,
            inputs=[f.inputs for f in b],
        )
        for result in results:
            for warning in result.warnings + ([result.no_metres] if result.no_metres else []):
                self.info_warnings[warning] = self.info_warnings.get(warning, 0) + 1
        return {frame.position: result.messages for frame, result in zip(b, results)}


def checked_options(
    args: argparse.Namespace,
) -> tuple[PredictorOptions | None, PredictorOptions | None]:
    """The models' options from the flags, after every cheap check of the flags."""
    pipeline_options(args)
    check_output_namespace(args.output_namespace)
    depth, segmentation = (_task_options(args, task) for task in ("depth", "segmentation"))
    if depth is None and segmentation is None:
        raise ValueError("--depth-model '' and no --segmentation-model: nothing to run")
    bag_alignment.options_from_args(args)
    bag_temporal.options_from_args(args)
    bag_any_view.options_from_args(args)
    return depth, segmentation


def process_bag(
    args: argparse.Namespace, in_path: Path, out_path: Path, pipeline, progress: bool = True
) -> tuple[_BagJob, str, float]:
    """One input bag through ``pipeline`` into a new bag at ``out_path``.

    Returns:
        (the finished job, the output storage, seconds). An interrupted or failed run
        leaves ``out_path`` a valid bag of the frames done so far, or nothing if it
        stopped while the output was being opened, and raises.
    """
    pipeline.reset()  # each bag as if it were the only one (colour ranges, temporal)
    reader = open_bag(in_path)
    out_bag: _OutputBag | None = None
    job: _BagJob | None = None
    try:
        plan = _plan(args, reader)
        # Every check of the flags against the bag before the output exists.
        any_view = _any_view(args, pipeline, reader)
        _check_clashes(plan, pipeline, reader, any_view)
        alignment = _alignment(args, bag_alignment.options_from_args(args), pipeline, reader)
        storage = args.storage or input_storage(in_path)
        with stop_signals_deferred() as received:  # no output half opened
            opened = _OutputBag(out_path, storage, reader)
            if received:  # stopped while it opened: it holds nothing, leave none
                opened.abandon()
            else:
                out_bag = opened
        raise_received(received)
        assert out_bag is not None, "opened, or a stop was raised"
        total = sum(c.msgcount for c in reader.connections if c.topic == plan.image_topic)
        bar = tqdm(
            total=total,
            unit="frame",
            file=sys.stderr,
            disable=args.quiet or not progress,
            dynamic_ncols=True,
            desc="dpt-ros bag",
        )
        job = _BagJob(
            plan, pipeline, out_bag, args.batch, bar, alignment, args.max_input_pixels, any_view
        )
        start = time.monotonic()
        for rconn, timestamp, raw in reader.messages():
            job.feed(rconn, timestamp, raw)
        job.flush()
        raise_swallowed()  # a stop must not end as a whole bag short of a frame
        elapsed = time.monotonic() - start
    except BaseException as exc:
        _close_surely(job, out_bag, reader, out_path)
        # Ctrl-C or a stop signal, perhaps turned into another error on its way up: one
        # line says it all.
        stop = exc if isinstance(exc, KeyboardInterrupt) else swallowed_stop()
        if stop is not None:
            raise with_note(stop, _kept(job, out_bag, out_path)) from None
        if out_bag is not None and progress and not isinstance(exc, DiskFull):
            print(f"dpt-ros bag: stopped early; {_kept(job, out_bag, out_path)}", file=sys.stderr)
        raise
    received = _close_surely(job, out_bag, reader, out_path)
    if received and not stopping():  # a stop asked for during the close, now that it is done
        stop = KeyboardInterrupt() if received[0] == signal.SIGINT else Terminated(received[0])
        raise with_note(stop, _kept(job, out_bag, out_path))
    return job, storage, elapsed


def _kept(job: _BagJob | None, out_bag: _OutputBag | None, out_path: Path) -> str:
    """What an early stop left at ``out_path``."""
    if out_bag is None:
        return f"no output written ({out_path} does not exist)"
    done = job.frames_done if job is not None else 0
    return f"{out_path} is a valid bag holding the {done} frame(s) processed so far"


def _check_clashes(
    plan: _Plan, pipeline, reader, any_view: bag_any_view.BagAnyView | None = None
) -> None:
    topics = set(reader.topics)
    outputs = bag_any_view.BAG_TOPICS if any_view is not None else pipeline.topics()
    names = [f"{plan.namespace}/{n}" for n in outputs]
    clashes = sorted(t for t in names if t in topics)
    if clashes:
        raise ValueError(
            f"the input bag already has output topic(s) {', '.join(clashes)}; "
            "choose another --output-namespace"
        )


def _any_view(args: argparse.Namespace, pipeline, reader) -> bag_any_view.BagAnyView | None:
    """The windows the flags ask for (None: one image at a time), their odometry topic
    checked against the bag."""
    options = bag_any_view.options_from_args(args)
    if not options.enabled or pipeline.depth is None:
        return None
    topics = {t: info.msgtype for t, info in reader.topics.items()}
    return bag_any_view.BagAnyView(options, pipeline.depth, topics)


def _alignment(
    args: argparse.Namespace, options: AlignmentOptions | None, pipeline, reader
) -> bag_alignment.BagAlignment | None:
    """The online alignment the flags ask for (None: fixed, or a metric model)."""

    if options is None:
        return None
    if pipeline.depth is None:
        raise ValueError(f"--alignment {options.method} needs a relative depth model")
    if pipeline.depth.is_metric:
        print(
            f"dpt-ros bag: --alignment {options.method} is ignored: "
            f"{pipeline.depth.spec.name} already predicts metres",
            file=sys.stderr,
        )
        return None
    topic = absolute_topic(args.alignment_topic) if args.alignment_topic else None
    alignment = bag_alignment.BagAlignment(options, topic)
    alignment.check_topic({t: info.msgtype for t, info in reader.topics.items()})
    return alignment


def _close_surely(
    job: _BagJob | None, out_bag: _OutputBag | None, reader, out_path: Path
) -> list[int]:
    """:func:`_close`, to its end whatever arrives and whenever: a stop signal raised
    in the moment before :func:`_close` holds them back (the first of a run raises,
    :mod:`~dpt_ros.cli.stop_signals`) is caught and the close done again; closing twice
    is harmless. Returns the stop signals that arrived meanwhile."""
    late: list[int] = []
    received: list[int] = []
    while not received or received[-1] != -1:
        try:
            _close(job, out_bag, reader, received)
        except KeyboardInterrupt as exc:
            late.append(getattr(exc, "signum", int(signal.SIGINT)))
    return late + received[:-1]


def _close(job: _BagJob | None, out_bag: _OutputBag | None, reader, received: list[int]) -> None:
    """Closes the bags, to the end whatever arrives: a second Ctrl-C or SIGTERM must not
    cut short the writing of ``metadata.yaml``. Appends the stop signals that arrived
    meanwhile (:func:`~dpt_ros.cli.stop_signals.stop_signals_deferred`) to ``received``,
    then -1 once closed."""
    with stop_signals_deferred() as arrived:
        if job is not None:
            job.bar.close()
        try:
            if out_bag is not None:
                out_bag.close()
        finally:
            reader.close()
        received.extend(arrived)
        received.append(-1)  # closed: the list is not added to after this


def report(job: _BagJob, out_path: Path, storage: str, elapsed: float) -> None:
    for warning, count in job.info_warnings.items():
        print(f"dpt-ros bag: warning: {count} frame(s): {warning}", file=sys.stderr)
    image_topic = job.plan.image_topic
    if job.skipped:
        print(
            f"dpt-ros bag: warning: skipped {job.skipped} undecodable frame(s) of {image_topic}",
            file=sys.stderr,
        )
    if job.bad_camera_info:
        print(
            f"dpt-ros bag: warning: skipped {job.bad_camera_info} undecodable camera_info "
            f"message(s) of {job.plan.info_topic} (copied unchanged; frames kept the latest "
            "good one)",
            file=sys.stderr,
        )
    rate = job.frames_done / elapsed if elapsed > 0 else 0.0
    print(
        f"wrote {out_path} ({storage}): {job.frames_done} frame(s) of {image_topic} "
        f"processed, {job.skipped} skipped, {rate:.2f} frames/s"
    )
    for topic, count in sorted(job.out_bag.counts.items()):
        print(f"  {topic}: {count}")
    if job.any_view is not None:
        for reason, count in job.any_view.refused.items():
            print(
                f"dpt-ros bag: warning: {count} odometry message(s) refused: {reason}",
                file=sys.stderr,
            )
        for reason, count in job.any_view.restarts.items():
            print(f"dpt-ros bag: {count} window restart(s): {reason}", file=sys.stderr)
        print("  " + job.any_view.summary())
    if job.alignment is not None:
        for reason, count in job.alignment.rejected.items():
            print(f"dpt-ros bag: warning: {count} reference(s) rejected: {reason}", file=sys.stderr)
        status = job.alignment.aligner.status(None)
        print("  alignment: " + ", ".join(f"{k.split('.')[-1]} {v}" for k, v in status.items()))


def _type_name(cls: type) -> str:
    """``sensor_msgs/msg/Image`` for the rclpy class ``sensor_msgs.msg.Image``."""
    package = cls.__module__.split(".")[0]
    return f"{package}/msg/{cls.__name__}"
