"""Former module, kept one release so that old imports work: its names moved to
:mod:`dpt_ros.alignment.online` (and ``cloud_points`` to :mod:`dpt_ros.ros.pointcloud`);
each import of one warns (``DeprecationWarning``) with its new place."""

from dpt_ros._exports import forward

__all__: list[str] = []  # nothing public: every name here has moved

_MOVED = {
    **{
        name: "dpt_ros.alignment.online"
        for name in (
            "ALIGNMENT_METHODS",
            "GROUND_CLASSES",
            "GROUND_IDS",
            "AlignmentOptions",
            "OnlineAligner",
            "project_points",
            "resize_nearest",
            "transform_points",
        )
    },
    "cloud_points": "dpt_ros.ros.pointcloud",
}

__getattr__ = forward(__name__, _MOVED)
