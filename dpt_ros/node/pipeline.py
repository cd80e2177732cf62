"""Former module, kept one release so that old imports work: its names moved to
:mod:`dpt_ros.pipeline.frames` (and ``PipelineOptions`` to
:mod:`dpt_ros.pipeline.options`); each import of one warns (``DeprecationWarning``)
with its new place."""

from dpt_ros._exports import forward

__all__: list[str] = []  # nothing public: every name here has moved

_MOVED = {
    **{
        name: "dpt_ros.pipeline.frames"
        for name in (
            "ON_DEMAND_TOPICS",
            "OUTPUT_TOPICS",
            "SKIPPABLE_TOPICS",
            "FrameOutput",
            "FramePipeline",
        )
    },
    "PipelineOptions": "dpt_ros.pipeline.options",
}

__getattr__ = forward(__name__, _MOVED)
