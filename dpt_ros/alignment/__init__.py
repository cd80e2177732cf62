"""Metric depth from a relative model: robust fits of scale and shift to a reference
or the ground (``fit``, pure numpy) and the online filter that turns each frame's fit
into a calibration, per camera (``online``), and the temporal stabiliser that holds a
stream's depth still from frame to frame (``temporal``). No rclpy here: the node
(:mod:`dpt_ros.node.alignment_io`) and the bag tool (:mod:`dpt_ros.cli.bag.alignment`)
feed it their references.

Public names: :data:`__all__` here, and the fits in :mod:`dpt_ros.alignment.fit`
(``fit_to_reference``, ``fit_ground_plane``, ``Alignment``); docs/python_api.md lists
them. The fits were importable from ``dpt_ros.alignment`` itself before it became a
package: those names still are, with a ``DeprecationWarning``.
"""

from dpt_ros._exports import forward
from dpt_ros.alignment.online import ALIGNMENT_METHODS, AlignmentOptions, OnlineAligner
from dpt_ros.alignment.temporal import (
    StabilizedFrame,
    TemporalOptions,
    TemporalStabilizer,
    TemporalStreams,
)

__all__ = [
    "ALIGNMENT_METHODS",
    "AlignmentOptions",
    "OnlineAligner",
    "StabilizedFrame",
    "TemporalOptions",
    "TemporalStabilizer",
    "TemporalStreams",
]

#: Names of the former module ``dpt_ros/alignment.py`` (now ``alignment/fit.py``).
_MOVED = {
    name: "dpt_ros.alignment.fit"
    for name in (
        "DEFAULT_ITERATIONS",
        "DEFAULT_MAX_SAMPLES",
        "DEFAULT_MIN_SAMPLES",
        "DEFAULT_SEED",
        "DEFAULT_THRESHOLD",
        "Alignment",
        "PinholeIntrinsics",
        "fit_ground_plane",
        "fit_to_reference",
    )
}

__getattr__ = forward(__name__, _MOVED)
