"""A window's prediction brought into the world and unit of known cameras, as Depth
Anything 3's API does (``DepthAnything3.inference`` with ``extrinsics``, ``intrinsics``
and its default ``align_to_input_ext_scale=True``; depth-anything-3 0.1.1). Plain
numpy: no torch.

The reference's rule, read from its ``_align_to_input_extrinsics_intrinsics``:

1. the Sim(3) of Umeyama (1991), with scale, that takes the given cameras' centres onto
   the predicted cameras' centres (``align_poses_umeyama(predicted, given)``: evo's
   ``PosePath3D.align``, the given path aligned to the predicted one, so
   ``predicted_centre ~ s R given_centre + t`` and ``s`` is predicted units per given
   unit);
2. the returned cameras are the given ones (camera-from-world, 3 x 4) and the returned
   intrinsics the given ones on the network grid (the predicted ones are dropped);
3. the depth is divided by ``s``: in the given cameras' unit. Confidence is unchanged.

Only the scale of the fit reaches the outputs (step 2 discards its rotation and
translation), and the Umeyama scale of :func:`dpt_ros.reconstruct.sim3.umeyama` is the
reference's (``trace(D S) / sigma_x^2`` with the same sign correction), so that function
is used. Two differences, both where the reference fails:

- centres on one line (two views, or a robot driving straight) make the
  cross-covariance rank 1; evo refuses the fit there ("Degenerate covariance rank"),
  although its scale is still defined (the ratio of the two paths' extents along the
  line: the rotation is what is ambiguous, and it is discarded). Here the scale is
  given;
- from 10 views the reference fits with RANSAC (``ransac_view_thresh=10``, random
  subsets of half the views); that is not reproduced, and such windows are refused.
"""

from __future__ import annotations

import numpy as np

from dpt_ros.reconstruct.sim3 import umeyama

__all__ = ["MAX_ALIGNED_VIEWS", "camera_centres", "camera_from_world_3x4", "scale_to_given"]

#: The reference fits by RANSAC from 10 views (``ransac_view_thresh``); not reproduced.
MAX_ALIGNED_VIEWS = 9


def camera_from_world_3x4(camera_from_world: np.ndarray) -> np.ndarray:
    """(N, 3, 4) or (N, 4, 4) camera-from-world -> (N, 3, 4) float32 ``[R | t]``."""
    cfw = np.asarray(camera_from_world)
    if cfw.ndim != 3 or cfw.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(
            f"camera-from-world must be (N, 3, 4) or (N, 4, 4), got {tuple(cfw.shape)}"
        )
    return np.ascontiguousarray(cfw[:, :3, :4], dtype=np.float32)


def camera_centres(camera_from_world: np.ndarray) -> np.ndarray:
    """(N, 3) float64 camera centres ``-R^T t`` in the world of (N, 3|4, 4)
    camera-from-world ``[R | t]``."""
    cfw = np.asarray(camera_from_world, dtype=np.float64)[:, :3, :4]
    return -np.einsum("nji,nj->ni", cfw[:, :, :3], cfw[:, :, 3])


def scale_to_given(predicted: np.ndarray, given: np.ndarray) -> float:
    """The reference's scale ``s`` between a window's predicted cameras and the given
    ones: predicted units per given unit, so ``depth / s`` is in the given unit.

    Args:
        predicted: (N, 3|4, 4) camera-from-world as the network estimates them.
        given: (N, 3|4, 4) camera-from-world known (odometry ...), any world and unit.

    Returns:
        ``s`` > 0, the scale of the Umeyama Sim(3) taking the given camera centres onto
        the predicted ones.

    Raises:
        ValueError: the view counts differ, fewer than 2 or more than
            :data:`MAX_ALIGNED_VIEWS` views, the given cameras share one centre (no
            motion: no scale), or the fit gives no positive scale.
    """
    src = camera_centres(given)
    dst = camera_centres(predicted)
    views = len(src)
    if len(dst) != views:
        raise ValueError(f"{len(dst)} predicted cameras for {views} given ones")
    if not 2 <= views <= MAX_ALIGNED_VIEWS:
        raise ValueError(
            f"aligning to given cameras needs 2 to {MAX_ALIGNED_VIEWS} views, got {views} "
            "(the reference switches to a RANSAC fit from 10, not reproduced)"
        )
    if not np.isfinite(src).all() or not np.isfinite(dst).all():
        raise ValueError("the cameras' centres are not all finite")
    spread = src - src.mean(axis=0)
    if not float(np.einsum("ij,ij->", spread, spread)) > 0:
        raise ValueError(
            "the given cameras all have one centre: without motion between them the "
            "window's scale is unknown"
        )
    return float(umeyama(src, dst).scale)
