"""Shared test set-up."""

from __future__ import annotations

import importlib.util

from goldens import shared_fixtures_dir


def shared_generator():
    shared = shared_fixtures_dir()
    if shared is None:
        return None
    spec = importlib.util.spec_from_file_location("shared_detweights", shared / "detweights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
