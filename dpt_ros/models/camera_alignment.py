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
translation). :func:`dpt_ros.models.umeyama.umeyama` (which the reconstruction's robust fit
builds on) is the reference's fit (evo's
``umeyama_alignment``: the same cross-covariance, SVD, sign correction, ``s = trace(D
S) / sigma_x^2`` and translation), so that function is used.

From :data:`RANSAC_VIEWS` views the reference fits by RANSAC (its
``_ransac_align_sim3`` with ``random_state=42``), reproduced here step for step: a
first fit on all views sets the inlier threshold (the median, over the given centres so
aligned, of the distance to the nearest predicted centre); 10 subsets of
``max(3, (N + 1) // 2)`` views drawn by ``numpy.random.default_rng(42).choice``, each
fit scored by its inliers (then their mean error), subsets that evo refuses skipped; a
last fit on the best subset's inliers where there are 3 or more.

One difference, where the reference fails: centres on one line (two views, or a robot
driving straight) make the cross-covariance rank 1; evo refuses the fit ("Degenerate
covariance rank"), although its scale is still defined (the ratio of the two paths'
extents along the line: the rotation is what is ambiguous, and it is discarded). Here
the scale is given (inside RANSAC, subsets evo refuses are skipped as the reference
skips them).
"""

from __future__ import annotations

import numpy as np

from dpt_ros.models.umeyama import Sim3, umeyama

__all__ = ["RANSAC_VIEWS", "camera_centres", "camera_from_world_3x4", "scale_to_given"]

#: From this many views the reference fits by RANSAC (its ``ransac_view_thresh``).
RANSAC_VIEWS = 10
#: The reference's RANSAC: subsets tried, and the seed of its generator.
RANSAC_ITERATIONS = 10
RANSAC_SEED = 42


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
        the predicted ones (by RANSAC from :data:`RANSAC_VIEWS` views).

    Raises:
        ValueError: the view counts differ, fewer than 2 views, centres not finite,
            the given cameras share one centre (no motion: no scale), or the fit gives
            no positive scale.
    """
    src = camera_centres(given)
    dst = camera_centres(predicted)
    views = len(src)
    if len(dst) != views:
        raise ValueError(f"{len(dst)} predicted cameras for {views} given ones")
    if views < 2:
        raise ValueError(f"aligning to given cameras needs 2 views or more, got {views}")
    if not np.isfinite(src).all() or not np.isfinite(dst).all():
        raise ValueError("the cameras' centres are not all finite")
    spread = src - src.mean(axis=0)
    if not float(np.einsum("ij,ij->", spread, spread)) > 0:
        raise ValueError(
            "the given cameras all have one centre: without motion between them the "
            "window's scale is unknown"
        )
    first = umeyama(src, dst)
    if views < RANSAC_VIEWS or _evo_refuses(src, dst):
        return float(first.scale)
    return float(_ransac(src, dst, first).scale)


def _evo_refuses(src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether evo's ``umeyama_alignment`` raises on these points: fewer than 2
    singular values of the cross-covariance above float64's epsilon."""
    cross = (dst - dst.mean(axis=0)).T @ (src - src.mean(axis=0)) / len(src)
    singular = np.linalg.svd(cross, compute_uv=False)
    return int(np.count_nonzero(singular > np.finfo(np.float64).eps)) < 2


def _ransac(src: np.ndarray, dst: np.ndarray, first: Sim3) -> Sim3:
    """The reference's ``_ransac_align_sim3`` (default subset size and threshold, its
    10 iterations, seed 42): see the module's docstring."""
    views = len(src)
    aligned = first.apply(src)
    nearest = np.linalg.norm(aligned[:, None] - dst[None], axis=-1).min(axis=1)
    threshold = float(np.median(nearest))
    rng = np.random.default_rng(RANSAC_SEED)
    subset = max(3, (views + 1) // 2)
    best, best_inliers, best_score = first, None, (-1, np.inf)
    for _ in range(RANSAC_ITERATIONS):
        sample = rng.choice(np.arange(views), size=subset, replace=False)
        if _evo_refuses(src[sample], dst[sample]):
            continue
        try:
            fit = umeyama(src[sample], dst[sample])
        except ValueError:  # no positive scale: a degenerate subset, skipped
            continue
        errors = np.linalg.norm(fit.apply(src) - dst, axis=1)
        inliers = errors <= threshold
        count = int(inliers.sum())
        mean = float(errors[inliers].mean()) if count else np.inf
        if count > best_score[0] or (count == best_score[0] and mean < best_score[1]):
            best, best_inliers, best_score = fit, inliers, (count, mean)
    if best_inliers is not None and best_inliers.sum() >= 3:
        return umeyama(src[best_inliers], dst[best_inliers])
    return best
