"""``dpt-ros bag --any-view-window N``: the node's windows of views (``any_view.*``) over
a bag's image topic, with the same options, defaults and checks
(:class:`~dpt_ros.anyview.AnyViewOptions`), the same window state and forward
(:func:`~dpt_ros.anyview.forward.run_frame`) and the same messages
(:func:`~dpt_ros.anyview.messages.window_messages`), so that a recording processed offline
gives the topics the live node would have published: depth/relative, depth/confidence,
any_view/poses, and depth/image, any_view/odometry and any_view/points when the scale is
known.

The odometry is read from ``--any-view-odometry-topic`` in the bag. A frame runs once
the bag has passed its stamp by ``--any-view-odometry-max-age`` (the odometry around
it has been read), each bag starting with no keyframe.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

from dpt_ros.anyview import AnyViewOptions, OdometryBuffer, OdometrySample, WindowState
from dpt_ros.anyview.forward import run_frame
from dpt_ros.anyview.messages import WINDOW_TOPICS, intrinsics_of, window_messages
from dpt_ros.options import add_flags, flag_values
from dpt_ros.ros.bagio import absolute_topic
from dpt_ros.ros.messages import deserialized, stamp_ns
from dpt_ros.ros.poses import odometry_fields

_LOG = logging.getLogger(__name__)

ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
#: The window's topics a bag gets: all the live node's (any_view/points, on demand in the
#: node, is written once the scale is known, as depth/image and any_view/odometry are).
BAG_TOPICS = WINDOW_TOPICS


def add_arguments(p: argparse._ActionsContainer) -> None:
    """The ``--any-view-*`` flags, made from the declarations of :class:`AnyViewOptions`
    (the node's ``any_view.*``)."""
    add_flags(p, AnyViewOptions)


def options_from_args(args: argparse.Namespace) -> AnyViewOptions:
    """The windows the flags ask for; ValueError naming every problem in one line: each
    flag out of range, each invalid combination, and the flags windows cannot go with
    (they replace the frame pipeline, as in the node)."""
    depth_model = (getattr(args, "depth_model", "") or "").strip()
    options: AnyViewOptions = AnyViewOptions(
        **flag_values(AnyViewOptions, args), model_type=depth_model
    )
    problems = options.problems("flag")
    if options.enabled:
        if not depth_model:
            problems.append(f"--any-view-window {options.window} needs a --depth-model")
        if getattr(args, "segmentation_model", ""):
            problems.append(
                f"--any-view-window {options.window} writes depth only: drop --segmentation-model"
            )
        if getattr(args, "alignment", "fixed") not in ("fixed", None):
            problems.append(
                f"--any-view-window {options.window} takes its scale from the window (and "
                "--any-view-condition-on-odometry), not --alignment {args.alignment}"
            )
        if getattr(args, "batch", 1) > 1:
            problems.append(
                f"--any-view-window {options.window} runs one frame at a time: drop --batch"
            )
    if problems:
        raise ValueError("; ".join(problems))
    return options


class BagAnyView:
    """One bag's window: its odometry, its state, its messages.

    Args:
        options: ``--any-view-*`` (``window`` > 0).
        predictor: the depth model (a type with windows).
        topics: {topic: type} of the input bag, to check the odometry topic against.

    Raises:
        ValueError: the odometry topic is not in the bag, or not nav_msgs/Odometry.
    """

    def __init__(self, options: AnyViewOptions, predictor: Any, topics: dict[str, str]) -> None:
        self.options = options
        self.predictor = predictor
        self.odometry_topic = ""
        self.odometry: OdometryBuffer | None = None
        if options.odometry_topic:
            topic = absolute_topic(options.odometry_topic)
            if topics.get(topic) != ODOMETRY_TYPE:
                what = f"has type {topics[topic]}" if topic in topics else "is not in the bag"
                found = [t for t, ty in topics.items() if ty == ODOMETRY_TYPE]
                raise ValueError(
                    f"--any-view-odometry-topic {topic} {what}; the bag's "
                    f"{ODOMETRY_TYPE} topics: {', '.join(found) or 'none'}"
                )
            self.odometry_topic = topic
            self.odometry = OdometryBuffer(
                options.odom_frame, options.base_frame, options.odometry_max_age
            )
        self.state = WindowState(options, self.odometry)
        predictor.view_cache.clear()  # each bag as if it were the only one
        #: Odometry messages refused, by reason; windows restarted, by reason.
        self.refused: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self.keyframes = 0

    @property
    def wait_ns(self) -> int:
        """How long past a frame's stamp the bag is read before the frame runs."""
        return int(self.options.odometry_max_age * 1e9) if self.odometry is not None else 0

    def feed(self, topic: str, data: bytes) -> bool:
        """Takes an odometry message of the bag; False for any other topic."""
        if self.odometry is None or topic != self.odometry_topic:
            return False
        from nav_msgs.msg import Odometry  # on the registries as ros-nav-msgs

        try:
            msg = deserialized(data, Odometry)
        except (ValueError, TypeError, RuntimeError) as exc:
            why = f"undecodable: {type(exc).__name__}"
        else:
            why = self.odometry.add(OdometrySample(*odometry_fields(msg))) or ""
        if why:
            self.refused[why] = self.refused.get(why, 0) + 1
        return True

    def process(self, rgb: np.ndarray, header: Any, info: Any, output_hw: Any) -> dict[str, Any]:
        """{topic: message} of one frame's window, each with ``header``."""
        hw = rgb.shape[:2]
        plan, out = run_frame(
            self.predictor,
            self.state,
            rgb,
            stamp_ns(header),
            intrinsics_of(info, hw),
            hw if output_hw == "input" else None,
        )
        if plan.restarted:
            self.restarts[plan.restarted] = self.restarts.get(plan.restarted, 0) + 1
        if out.keyframe is not None:
            self.keyframes += 1
        return window_messages(out, header, self.options.odom_frame, BAG_TOPICS.__contains__)

    def summary(self) -> str:
        """One line for the report."""
        status = self.state.status()
        return (
            f"any_view: {self.keyframes} keyframe(s), scale source {status['any_view scale source']}, "
            f"chain length {status['any_view chain length']}, restarts {sum(self.restarts.values())}"
        )
