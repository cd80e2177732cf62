class CheckpointError(RuntimeError):
    """A weights file is missing, unreadable, corrupt or for another model."""
