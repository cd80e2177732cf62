"""``dpt-ros bag`` with online alignment: the same ``relative_depth.alignment`` as the
node, with the reference read from the bag, so that a recorded run is aligned offline
exactly as it would have been live (:class:`~dpt_ros.alignment.online.OnlineAligner`; the reference
messages are read by :mod:`dpt_ros.ros.bag_reference`)."""

from __future__ import annotations

import argparse
from collections import deque
from collections.abc import Sequence

import numpy as np
from std_msgs.msg import Header

from dpt_ros.alignment.fit import PinholeIntrinsics
from dpt_ros.alignment.online import (
    ALIGNMENT_METHODS,
    KEPT_REFERENCES,
    AlignmentOptions,
    OnlineAligner,
)
from dpt_ros.pipeline.frames import SequentialCalibration
from dpt_ros.ros.bag_reference import BagReferenceReader, Reference
from dpt_ros.ros.messages import stamp_ns


def _normal(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,Z such as 0,-1,0, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers X,Y,Z, got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The alignment flags of ``dpt-ros bag`` (the node's ``relative_depth.*``)."""
    d = AlignmentOptions()
    p.add_argument(
        "--alignment",
        choices=ALIGNMENT_METHODS,
        default="fixed",
        help="metric depth from a relative model fitted online, as the node's "
        "relative_depth.alignment (default fixed: --relative-depth-scale/-shift)",
    )
    p.add_argument(
        "--alignment-topic",
        metavar="TOPIC",
        help="the bag's reference topic: sensor_msgs/Image (32FC1 m or 16UC1 mm) for "
        "reference_depth, sensor_msgs/PointCloud2 in the camera's frame for reference_points",
    )
    for flag, field, unit in (
        ("--camera-height", "camera_height", "m above the ground, for ground_plane"),
        ("--stamp-tolerance", "stamp_tolerance", "s between an image and its reference"),
        ("--fit-smoothing", "smoothing", "weight of each new fit in the filter, 0.01..1"),
        ("--max-fit-age", "max_fit_age", "s a good fit is held while new fits fail"),
        ("--ground-band", "ground_band", "bottom image fraction taken as ground"),
    ):
        default = getattr(d, field)
        p.add_argument(flag, type=float, default=default, help=f"{unit} (default {default})")
    p.add_argument(
        "--ground-normal",
        type=_normal,
        default=(),
        metavar="X,Y,Z",
        help="the ground's up normal in the camera optical frame (default: fitted)",
    )


def options_from_args(args: argparse.Namespace) -> AlignmentOptions | None:
    """The alignment the flags ask for, None for ``fixed``; ValueError on bad flags."""
    if args.alignment == "fixed":
        return None
    options = AlignmentOptions(
        method=args.alignment,
        stamp_tolerance=args.stamp_tolerance,
        smoothing=args.fit_smoothing,
        max_fit_age=args.max_fit_age,
        camera_height=args.camera_height,
        ground_normal=tuple(args.ground_normal),
        ground_band=args.ground_band,
    )
    problems = options.problems()
    if options.method.startswith("reference") and not args.alignment_topic:
        problems.append(f"--alignment {options.method} needs --alignment-topic")
    if problems:
        raise ValueError("; ".join(problems))
    return options


#: Distinct rejection reasons counted apart; the rest are counted together (hostile
#: bags can make every reason different: one frame_id per message).
_MAX_REASONS = 16
_OTHER_REASONS = "other reasons"


class BagAlignment:
    """Online alignment over one image topic of a bag, frame by frame as the node would
    do it live, whatever the batch size.

    References may be recorded before or after their image (aligned depth usually comes
    1-5 ms later): a frame is fitted with every reference recorded up to
    ``stamp_tolerance`` seconds of bag time after its image (:attr:`window_ns`; the bag
    tool holds the frame back that long), and with no later one, so that a batch of
    frames gives exactly what the frames give one at a time. Until then the references
    wait here, in bag order.

    Args:
        options: from :func:`options_from_args`.
        topic: the reference topic (absolute), or None for ``ground_plane``.
    """

    #: References kept waiting for frames: the aligner uses the newest
    #: ``KEPT_REFERENCES`` at a time; beyond this many the bag tool stops waiting.
    MAX_WAITING = 64

    def __init__(self, options: AlignmentOptions, topic: str | None) -> None:
        self.aligner = OnlineAligner(options)
        self.reader: BagReferenceReader | None = None
        if topic is not None:
            self.reader = BagReferenceReader(options.method, topic)
        #: Bag time (ns) a frame waits after its image for its references (0: none read).
        self.window_ns = int(round(options.stamp_tolerance * 1e9)) if topic is not None else 0
        self.rejected: dict[str, int] = {}
        #: (bag time, reference) in bag order, not yet given to the aligner.
        self._waiting: deque[tuple[int, Reference]] = deque()

    def check_topic(self, topics: dict[str, str]) -> None:
        """ValueError unless the bag has the reference topic with the right type."""
        if self.reader is not None:
            self.reader.check_topic(topics)

    def feed(self, topic: str, data: bytes, bag_time: int, frames_waiting: bool = True) -> bool:
        """A message of the bag at ``bag_time``; True if it was the reference (and was
        taken in). ``frames_waiting``: whether frames before it are not fitted yet (if
        not, what waits here can be thinned to what the aligner would keep)."""
        if self.reader is None or topic != self.reader.topic:
            return False
        try:
            reference = self.reader.read(data)
        except ValueError as exc:
            self._reject(str(exc))
            return True
        self._waiting.append((int(bag_time), reference))
        if not frames_waiting:
            self._thin()
        return True

    def overfull(self) -> bool:
        """More references wait than :attr:`MAX_WAITING`: fit the waiting frames now."""
        return len(self._waiting) > self.MAX_WAITING

    def _thin(self) -> None:
        """Drops waiting references the aligner would drop before any later frame uses
        them: every one waiting goes to the aligner before the next frame's fit, and it
        keeps only the newest few."""
        while len(self._waiting) > KEPT_REFERENCES:
            self._waiting.popleft()

    def _reject(self, reason: str) -> None:
        key = reason if reason in self.rejected or len(self.rejected) < _MAX_REASONS else None
        key = key or _OTHER_REASONS
        self.rejected[key] = self.rejected.get(key, 0) + 1
        self.aligner.reject_reference(None, reason)

    def _take(self, until: int, image_frame: str) -> None:
        """Gives the aligner the references recorded up to bag time ``until`` (a cloud
        in another frame than the image's is rejected, saying why)."""
        assert self.reader is not None or not self._waiting, "references need a reader"
        while self._waiting and self._waiting[0][0] <= until:
            _, reference = self._waiting.popleft()
            problem = self.reader.frame_problem(reference, image_frame) if self.reader else None
            if problem:
                self._reject(problem)
            else:
                self.aligner.add_reference(None, reference.stamp, reference.values)

    def batch(self, headers: Sequence[Header], bag_times: Sequence[int]) -> SequentialCalibration:
        """The frame-by-frame calibration of a batch of frames (their headers and their
        images' bag times), for ``FramePipeline.process_batch``."""
        return _BatchAlignment(self, list(headers), [int(t) for t in bag_times])


class _BatchAlignment:
    """:class:`~dpt_ros.pipeline.frames.SequentialCalibration` of one batch."""

    def __init__(self, owner: BagAlignment, headers: list[Header], bag_times: list[int]) -> None:
        self.owner, self.headers, self.bag_times = owner, headers, bag_times

    def calibration(self, index: int) -> tuple[float, float] | None:
        return self.owner.aligner.calibration(None, stamp_ns(self.headers[index]))

    def update(
        self,
        index: int,
        relative: np.ndarray,
        intrinsics: PinholeIntrinsics | None,
        labels: np.ndarray | None,
    ) -> None:
        header = self.headers[index]
        owner = self.owner
        owner._take(self.bag_times[index] + owner.window_ns, header.frame_id)
        owner.aligner.update(None, stamp_ns(header), relative, intrinsics, labels)
