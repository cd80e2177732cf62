"""The processing core: one camera frame in, every output message out, with no rclpy
node (``frames``), and its per-frame options (``options``). The node, the bag tool, the
fleet and the benchmarks all run frames through it."""
