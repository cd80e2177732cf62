"""``python -m dpt_ros.cli``: the ``dpt-ros`` command."""

import sys

from dpt_ros.cli.main import main

sys.exit(main())
