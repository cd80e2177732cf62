"""``dpt-ros demo``: a synthetic camera sequence through the real node."""
