"""The ROS 2 node ``dpt_node``: parameters (``params``), the per-frame processing it
shares with the bag tool (``pipeline``), and the rclpy glue (``node``)."""
