"""``python -m dpt_ros.cli``: the ``dpt-ros`` command."""

from dpt_ros.cli.main import entry

entry()
