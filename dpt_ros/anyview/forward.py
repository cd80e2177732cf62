"""One window through a model with windows, and its result as the chain takes it: the
stage between :meth:`dpt_ros.anyview.WindowState.plan` and ``finish``
(:func:`run_window`), and one frame from plan to finish (:func:`run_frame`, shared by
the node and the bag tool). No rclpy, and no
torch import here (the predictor brings its own)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dpt_ros.anyview.window import WindowOutput, WindowPlan, WindowState
from dpt_ros.reconstruct.chain import WindowResult

if TYPE_CHECKING:
    from dpt_ros.models import Predictor


def run_window(
    predictor: Predictor,
    plan: WindowPlan,
    reference_view: str,
    output_hw: tuple[int, int] | None,
    view_keys: Sequence[Hashable] | None = None,
) -> tuple[WindowResult, bool, str]:
    """Runs ``plan``'s views in one forward.

    Args:
        predictor: a type with windows.
        plan: the views, and the cameras from odometry when conditioned.
        reference_view: Depth Anything 3's choice of reference view.
        output_hw: (h, w) of the maps; None = the network grid.
        view_keys: one key per view (the camera and the stamp): keyframes seen in the
            last windows reuse what the model kept of them
            (:meth:`~dpt_ros.models.Predictor.infer_window`).

    Returns:
        (the window's result, whether it was conditioned on the plan's cameras: then
        its world is the odometry's and its unit the odometry's, and why it was not
        when the plan asked for it: empty otherwise).
    """
    conditioned = plan.extrinsics is not None
    more: dict[str, Any] = {"view_keys": view_keys}
    if conditioned:
        more.update(extrinsics=plan.extrinsics, intrinsics=plan.intrinsics, align_to_input=True)
    try:
        prediction = predictor.infer_window(
            plan.images, reference_view, output_hw=output_hw, **more
        )
    except ValueError as exc:
        if not conditioned:
            raise
        # The cameras gave no scale to align to: the window runs on its own.
        result, _, _ = run_window(
            predictor,
            replace(plan, extrinsics=None, intrinsics=None),
            reference_view,
            output_hw,
            view_keys,
        )
        return result, False, f"alignment to the odometry's cameras failed: {exc}"
    cameras = prediction.cameras
    if cameras is None or prediction.depth is None:
        raise ValueError(f"{predictor.spec.name} gave no cameras or depth for a window")
    depth = np.asarray(prediction.depth, np.float32)
    confidence = (
        np.ones_like(depth)
        if prediction.confidence is None
        else np.asarray(prediction.confidence, np.float32)
    )
    result = WindowResult(
        depth=depth,
        confidence=confidence,
        camera_from_world=np.asarray(cameras.camera_from_world, np.float64),
        intrinsics=np.asarray(cameras.intrinsics, np.float64),
        reference_view=int(cameras.reference_view),
    )
    return result, conditioned, plan.conditioning


def run_frame(
    predictor: Predictor,
    state: WindowState,
    rgb: np.ndarray,
    stamp_ns: int,
    intrinsics: np.ndarray | None,
    output_hw: tuple[int, int] | None,
    camera: Hashable = "",
    lock: AbstractContextManager[Any] | None = None,
) -> tuple[WindowPlan, WindowOutput]:
    """One frame through its camera's window, as the node and the bag tool run it:
    :meth:`WindowState.plan`, :func:`run_window`, :meth:`WindowState.finish`.

    Args:
        predictor: a type with windows.
        state: the camera's window.
        rgb: (H, W, 3) uint8, the current frame.
        stamp_ns: its stamp.
        intrinsics: (3, 3) pixels of ``rgb`` from its camera_info, or None.
        output_hw: (h, w) of the maps; None = the network grid.
        camera: names the camera in the keys of the model's per-view cache.
        lock: held while ``state`` changes (the node's odometry arrives on another
            thread); None = no other thread.

    Returns:
        (the plan: ``restarted`` says why the window started again, empty if it did
        not; the finished window).
    """
    guard = lock if lock is not None else nullcontext()
    with guard:
        plan = state.plan(rgb, stamp_ns, intrinsics)
    if plan.restarted:
        predictor.view_cache.clear()  # stamps seen before may name other images
    keys = [(camera, view_stamp) for view_stamp in plan.stamps]
    result, conditioned, why = run_window(
        predictor, plan, state.options.reference_view, output_hw, keys
    )
    if why != plan.conditioning:
        plan = replace(plan, conditioning=why)
    with guard:
        out = state.finish(plan, result, conditioned)
    return plan, out
