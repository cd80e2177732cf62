"""Windows of views in the live node (``any_view.*``): the options, the keyframe
selector, the odometry buffer and the window state, in plain numpy (no torch, no rclpy;
:mod:`dpt_ros.anyview.messages` alone builds ROS messages from them).

The node (:mod:`dpt_ros.node`) and the bag tool run each new frame together with a few
recent keyframes through a model that sees several views at once (Depth Anything 3's
any-view types, VGGT), so that its depth agrees with theirs and the camera's motion
comes out. See docs/any_view.md.
"""

from dpt_ros.anyview.keyframes import KeyframeSelector
from dpt_ros.anyview.odometry import OdometryBuffer, OdometrySample, PoseAt
from dpt_ros.anyview.options import AnyViewOptions, Pose
from dpt_ros.anyview.window import WindowOutput, WindowState

__all__ = [
    "AnyViewOptions",
    "KeyframeSelector",
    "OdometryBuffer",
    "OdometrySample",
    "Pose",
    "PoseAt",
    "WindowOutput",
    "WindowState",
]
