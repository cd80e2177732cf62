"""``dpt-ros bag`` with online alignment: the same ``relative_depth.alignment`` as the
node, with the reference read from the bag, so that a recorded run is aligned offline
exactly as it would have been live (:class:`~dpt_ros.alignment.online.OnlineAligner`; the reference
messages are read by :mod:`dpt_ros.ros.bag_reference`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dpt_ros.alignment.online import ALIGNMENT_METHODS, AlignmentOptions, OnlineAligner

if TYPE_CHECKING:
    from std_msgs.msg import Header

    from dpt_ros.pipeline.frames import FrameOutput
    from dpt_ros.ros.bag_reference import BagReferenceReader


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


class BagAlignment:
    """Online alignment over one image topic of a bag.

    Args:
        options: from :func:`options_from_args`.
        topic: the reference topic (absolute), or None for ``ground_plane``.
    """

    def __init__(self, options: AlignmentOptions, topic: str | None) -> None:
        # start-up: rclpy and cv2 load when a bag is aligned, not when flags are parsed
        from dpt_ros.ros.bag_reference import BagReferenceReader

        self.aligner = OnlineAligner(options)
        self.reader: BagReferenceReader | None = None
        if topic is not None:
            self.reader = BagReferenceReader(options.method, topic)
        self.rejected: dict[str, int] = {}

    def check_topic(self, topics: dict[str, str]) -> None:
        """ValueError unless the bag has the reference topic with the right type."""
        if self.reader is not None:
            self.reader.check_topic(topics)

    def feed(self, topic: str, data: bytes) -> bool:
        """A message of the bag; True if it was the reference (and was taken in)."""
        if self.reader is None or topic != self.reader.topic:
            return False
        try:
            stamp, reference = self.reader.read(data)
        except ValueError as exc:
            self.rejected[str(exc)] = self.rejected.get(str(exc), 0) + 1
            self.aligner.reject_reference(None, str(exc))
            return True
        self.aligner.add_reference(None, stamp, reference)
        return True

    def calibrations(self, headers: Sequence[Header]) -> list[tuple[float, float] | None]:
        """Each frame's (scale, shift), or None where no good fit may be used."""
        from dpt_ros.ros.messages import stamp_ns  # start-up: message packages on use

        if headers and self.reader is not None:
            self.reader.frame_id = headers[-1].frame_id
        return [self.aligner.calibration(None, stamp_ns(h)) for h in headers]

    def update(self, headers: Sequence[Header], results: Sequence[FrameOutput]) -> None:
        """Fits each frame's relative output (for the frames after it)."""
        from dpt_ros.ros.messages import stamp_ns  # start-up: message packages on use

        for header, out in zip(headers, results):
            relative = out.arrays.get("inverse")
            if relative is not None:
                self.aligner.update(
                    None, stamp_ns(header), relative, out.intrinsics, out.arrays.get("labels")
                )
