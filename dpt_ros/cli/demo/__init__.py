"""``dpt-ros demo``: a synthetic camera sequence through the real node."""

#: No public Python names: ``dpt-ros demo`` is the interface.
__all__: list[str] = []
