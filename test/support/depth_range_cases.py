"""Shared test set-up."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from dpt_ros.ros.camera import Intrinsics


def header() -> Header:
    return Header(stamp=Time(sec=1), frame_id="cam")


def camera(h: int = 48, w: int = 64):
    return Intrinsics(40.0, 40.0, w / 2 - 0.5, h / 2 - 0.5, w, h).to_camera_info()


def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.kron(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
