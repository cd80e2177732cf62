"""dpt_ros: DPT monocular depth and semantic segmentation for ROS 2.

``dpt_ros.models`` holds the network (torch only); ``dpt_ros.ros`` the pure-numpy
message conversions and geometry; ``dpt_ros.node`` the ROS 2 node.
"""

__version__ = "0.1.0"
