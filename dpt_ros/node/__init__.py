"""The ROS 2 node ``dpt_node``: parameters (``params``), the rclpy glue (``node``) and its
managed variant (``lifecycle``). The per-frame processing it runs is
:mod:`dpt_ros.pipeline`, shared with the command-line tools."""
