"""ROS 2 message conversion and camera geometry helpers for dpt_ros.

The modules in this package are numpy code (plus OpenCV for compressed
images and a few fast pixel shuffles): they import message classes but never
create an rclpy node, so they can be unit tested without a running ROS graph.
"""

#: Public: these modules (message conversions and geometry); names starting with _ in them are private.
__all__ = [
    "bag_reference",
    "bagio",
    "camera",
    "camera_yaml",
    "image_codec",
    "image_size",
    "label_info",
    "messages",
    "nav2_checks",
    "pointcloud",
    "rectify",
]
