"""The ROS 2 node ``dpt_node``: parameters (``params``), the per-frame processing it
shares with the bag tool (``pipeline``), the rclpy glue (``node``) and its managed
variant (``lifecycle``)."""
