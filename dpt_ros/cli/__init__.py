"""``dpt-ros``: the command-line tools; ``main`` dispatches to one module per
subcommand."""
