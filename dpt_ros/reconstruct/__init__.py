"""Offline reconstruction from windows of views (``dpt-ros reconstruct``): frames in,
a multi-view model's windows chained by robust Sim(3) alignment, cameras, depth, a
fused cloud and a COLMAP model out. Plain numpy (and OpenCV): no torch, no rclpy; the
model is a callable (:data:`dpt_ros.reconstruct.driver.RunWindow`)."""

from dpt_ros.reconstruct.chain import AlignedWindow, WindowChain, WindowResult
from dpt_ros.reconstruct.driver import (
    ReconstructOptions,
    ReconstructSummary,
    RunWindow,
    reconstruct,
)
from dpt_ros.reconstruct.sim3 import Sim3, Sim3Fit, fit_sim3, umeyama

__all__ = [
    "AlignedWindow",
    "ReconstructOptions",
    "ReconstructSummary",
    "RunWindow",
    "Sim3",
    "Sim3Fit",
    "WindowChain",
    "WindowResult",
    "fit_sim3",
    "reconstruct",
    "umeyama",
]
