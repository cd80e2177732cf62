"""Shared test set-up."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dpt_ros.cli.main import main


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


@pytest.fixture(scope="module")
def small_rgb(scene_a_rgb) -> np.ndarray:
    """scene_a reduced to 96x128."""
    return cv2.resize(scene_a_rgb, (128, 96), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def small_png(module_tmp, small_rgb) -> Path:
    return write_rgb(module_tmp("images") / "scene.png", small_rgb)
