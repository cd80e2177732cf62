"""The processing core: one camera frame in, every output message out, with no rclpy
node (``frames``), and its per-frame options (``options``). The node, the bag tool, the
fleet and the benchmarks all run frames through it.

The names of :data:`__all__` load on first use: ``PipelineOptions`` without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpt_ros._exports import lazy

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from dpt_ros.pipeline.frames import (
        ON_DEMAND_TOPICS,
        OUTPUT_TOPICS,
        SKIPPABLE_TOPICS,
        FrameOutput,
        FramePipeline,
    )
    from dpt_ros.pipeline.options import PipelineOptions

_EXPORTS = {
    "FrameOutput": "dpt_ros.pipeline.frames",
    "FramePipeline": "dpt_ros.pipeline.frames",
    "ON_DEMAND_TOPICS": "dpt_ros.pipeline.frames",
    "OUTPUT_TOPICS": "dpt_ros.pipeline.frames",
    "PipelineOptions": "dpt_ros.pipeline.options",
    "SKIPPABLE_TOPICS": "dpt_ros.pipeline.frames",
}

__all__ = [
    "FrameOutput",
    "FramePipeline",
    "ON_DEMAND_TOPICS",
    "OUTPUT_TOPICS",
    "PipelineOptions",
    "SKIPPABLE_TOPICS",
]

__getattr__ = lazy(__name__, _EXPORTS)
