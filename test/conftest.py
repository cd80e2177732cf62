"""Shared test fixtures.

Fidelity tests use ``../shared/fixtures`` (beside the repository; override with
``$DPT_ROS_FIXTURES``): official checkpoint key layouts, deterministic weights
generated from key names, a test image and what the original DPT computes from it.
Under CI (``CI=true``) missing fixtures are an error, elsewhere the tests skip.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

# The tests publish and subscribe on plain names (image, camera_info, points): keep them
# off the network and away from other ROS processes on this machine (a robot's camera, a
# second test run) with a DDS domain of their own, unless the caller chose one.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # Humble
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # Jazzy and later

REPO = Path(__file__).resolve().parents[1]


def _fixtures_dir() -> Path:
    env = os.environ.get("DPT_ROS_FIXTURES")
    return Path(env) if env else REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    path = _fixtures_dir()
    if not (path / "dpt").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"fidelity fixtures not found at {path}")
        pytest.skip(f"fidelity fixtures not found at {path}")
    return path


@pytest.fixture(scope="session")
def detweights(fixtures_dir):
    """The fixtures' ``detweights`` module (deterministic weights from key names)."""
    spec = importlib.util.spec_from_file_location("detweights", fixtures_dir / "detweights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def scene_a_rgb(fixtures_dir) -> np.ndarray:
    """The 480x640 test image as (H, W, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imread(str(fixtures_dir / "dpt" / "scene_a.png"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="session")
def golden(fixtures_dir):
    """golden(model_type) -> dict of arrays the original implementation computed."""

    def load(model_type: str):
        with np.load(fixtures_dir / "dpt" / f"golden_{model_type}_scene_a.npz") as data:
            return {k: data[k] for k in data.files}

    return load


@pytest.fixture(scope="session")
def key_spec(fixtures_dir):
    """key_spec(model_type) -> [[key, shape, dtype], ...] of the official checkpoint."""

    def load(model_type: str):
        with open(fixtures_dir / "dpt" / f"keys_{model_type}.json") as f:
            return json.load(f)["keys"]

    return load


@pytest.fixture(scope="session")
def det_checkpoint(tmp_path_factory, detweights, key_spec):
    """det_checkpoint(model_type) -> path of a .pt file of deterministic weights with the
    official key layout, written once per session."""
    import torch

    made = {}
    root = tmp_path_factory.mktemp("checkpoints")

    def make(model_type: str) -> Path:
        if model_type not in made:
            path = root / f"det_{model_type}.pt"
            torch.save(detweights.deterministic_state_dict(key_spec(model_type)), path)
            made[model_type] = path
        return made[model_type]

    return make
