"""Metric depth from a relative model: robust fits of scale and shift to a reference
or the ground (``fit``, pure numpy) and the online filter that turns each frame's fit
into a calibration, per camera (``online``), and the temporal stabiliser that holds a
stream's depth still from frame to frame (``temporal``). No rclpy here: the node
(:mod:`dpt_ros.node.alignment_io`) and the bag tool (:mod:`dpt_ros.cli.bag_alignment`)
feed it their references."""

from dpt_ros.alignment.temporal import (
    StabilizedFrame,
    TemporalOptions,
    TemporalStabilizer,
    TemporalStreams,
)

__all__ = ["StabilizedFrame", "TemporalOptions", "TemporalStabilizer", "TemporalStreams"]
