"""dpt_ros: DPT monocular depth and semantic segmentation for ROS 2.

``dpt_ros.models`` holds the network (torch only); ``dpt_ros.ros`` the pure-numpy
message conversions and geometry; ``dpt_ros.node`` the ROS 2 node; ``dpt_ros.viz`` colour maps;
``dpt_ros.cli`` the command-line tools.
"""

__version__ = "0.1.0"
