"""How the package faces export names (``__getattr__`` of a module, PEP 562).

- :func:`lazy`: public names loaded on first use, so that importing a package face
  does not load torch or rclpy (seconds) before its caller needs them.
- :func:`forward`: old import paths kept working for one release, with a
  ``DeprecationWarning`` that names the new one (``CHANGELOG.md`` lists the moves).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

#: What the warnings promise.
REMOVAL = "the old path goes in the release after next"


def forward(module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves the names of ``moved`` ({name: new module})
    with a warning, and raises AttributeError for any other name.

    Args:
        module: the module's own name (``__name__``), for the messages.
        moved: each old name and the module that holds it now.
    """

    def __getattr__(name: str) -> Any:
        new = moved.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(new), name)
        if sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
            # ``from package import name`` asks twice: importlib's hasattr first, then
            # the importing line, which gets the one warning.
            return value
        warnings.warn(
            f"{module}.{name} moved to {new}.{name}: import it from {new} ({REMOVAL})",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__


def lazy(module: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each name of ``exports`` ({name: module
    holding it}) on first use, and raises AttributeError for any other name."""

    def __getattr__(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(source), name)

    return __getattr__
