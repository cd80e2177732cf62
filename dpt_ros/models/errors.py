"""The package's own exception and warning types (no torch import here)."""


class CheckpointError(RuntimeError):
    """A weights file is missing, unreadable, corrupt or for another model."""


class RandomWeightsWarning(UserWarning):
    """A model runs on random weights, as explicitly requested (demos, benchmarks).

    Also logged; the command line, which prints the log, ignores the warning itself.
    """
