"""``dpt-ros``: the command-line tools; ``main`` dispatches to one module per
subcommand."""

#: No public Python names: the command line is the interface (docs/cli.md).
__all__: list[str] = []
