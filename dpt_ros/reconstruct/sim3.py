"""Similarity transforms (Sim(3)) between 3-D point sets: the closed form of Umeyama
(1991), weighted, made robust by iteratively reweighted least squares (IRLS) with the
Cauchy weight. Plain numpy.

Why IRLS-Cauchy rather than RANSAC: the correspondences of two overlapping windows are
dense (every confident pixel of the shared frames, plus their cameras) and their errors
are mostly small with a minority of gross ones (depth edges, sky, reflections). IRLS
uses every point, is deterministic (no random samples, the same answer on every run),
costs a few weighted SVDs of 3 x 3 matrices, and gives the exact transform on exact
data. The Cauchy weight ``1 / (1 + (r / (c * sigma))**2)`` redescends, so a point far
off ends with almost no say, while Huber's weight would keep a linear pull from it;
``sigma`` is the median absolute residual (times 1.4826) of each iteration, so the
fit needs no threshold in the windows' unknown unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpt_ros.models.umeyama import Sim3, rotation_from_cross, umeyama

__all__ = ["Sim3", "Sim3Fit", "umeyama", "rotation_from_cross", "fit_sim3", "CAUCHY_C"]

#: Cauchy constant (95 % efficiency for Gaussian residuals), in units of sigma.
CAUCHY_C = 2.3849
#: IRLS iterations at most; it stops earlier once the transform stops changing.
MAX_ITERATIONS = 30


@dataclass(frozen=True)
class Sim3Fit:
    """A robust fit and its quality.

    Attributes:
        sim3: the transform, source -> target.
        points: correspondences used (camera centres and depth points).
        inlier_fraction: share of the points with a final Cauchy weight above 0.5
            (residual under ``CAUCHY_C * sigma``).
        rms: root mean square residual of those inliers, in the target's unit.
        iterations: IRLS iterations run.
    """

    sim3: Sim3
    points: int
    inlier_fraction: float
    rms: float
    iterations: int


def fit_sim3(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None = None,
    source_rotations: np.ndarray | None = None,
    target_rotations: np.ndarray | None = None,
    rotation_weight: float = 1.0,
    max_iterations: int = MAX_ITERATIONS,
    initial: Sim3 | None = None,
) -> Sim3Fit:
    """Robust Sim(3) from ``source`` to ``target``: weighted Umeyama, then IRLS with the
    Cauchy weight (see the module docstring).

    Args:
        source, target: (N, 3) corresponding points (N >= 3 unless rotations are given,
            then N >= 1 for the translation and scale; N >= 2 for a scale).
        weights: (N,) prior weights (e.g. confidences), >= 0.
        source_rotations, target_rotations: (M, 3, 3) world-from-camera rotations of the
            same M cameras in the two worlds, or None.
        rotation_weight: how much one pair of orientations counts, relative to all the
            points together (it is multiplied by the points' weighted spread, so that
            it does not depend on the unit).
        initial: a robust first guess (the chain's: scale from the median depth ratio,
            rotation from the orientations): the first weights come from its residuals
            instead of from the plain least-squares fit, which gross outliers pull off.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    prior = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    rot_pairs = None
    if source_rotations is not None and target_rotations is not None and len(source_rotations):
        rot_pairs = (
            np.asarray(source_rotations, np.float64),
            np.asarray(target_rotations, np.float64),
        )
    elif len(src) < 3:
        raise ValueError(f"a Sim(3) from points alone needs at least 3 points, got {len(src)}")
    w = prior.copy()
    fit = None
    iterations = 0
    sigma = 0.0
    spread = 0.0
    residuals = np.zeros(len(src))
    scale_of_scene = float(np.sqrt(np.mean(np.sum((dst - dst.mean(0)) ** 2, 1)))) or 1.0
    if initial is not None:
        residuals = np.linalg.norm(dst - initial.apply(src), axis=1)
        sigma = max(1.4826 * float(np.median(residuals)), 1e-9 * scale_of_scene)
        w = prior / (1.0 + (residuals / (CAUCHY_C * sigma)) ** 2)
    for step in range(1, max_iterations + 1):
        iterations = step
        rotations = None
        if rot_pairs is not None:
            total = float(w.sum())
            mu_s, mu_d = w @ src / total, w @ dst / total
            spread = np.sqrt(
                (w @ np.sum((src - mu_s) ** 2, 1)) * (w @ np.sum((dst - mu_d) ** 2, 1))
            )
            per_pair = rotation_weight * (spread if spread > 0 else total)
            rotations = (rot_pairs[0], rot_pairs[1], per_pair)
        new = umeyama(src, dst, w, rotations)
        residuals = np.linalg.norm(dst - new.apply(src), axis=1)
        sigma = max(1.4826 * float(np.median(residuals)), 1e-9 * scale_of_scene)
        w = prior / (1.0 + (residuals / (CAUCHY_C * sigma)) ** 2)
        converged = fit is not None and _close(fit, new, 1e-12 * scale_of_scene)
        fit = new
        if converged:
            break
    assert fit is not None
    inliers = residuals < CAUCHY_C * sigma
    rms = float(np.sqrt(np.mean(residuals[inliers] ** 2))) if inliers.any() else float("inf")
    return Sim3Fit(fit, len(src), float(inliers.mean()) if len(src) else 0.0, rms, iterations)


def _close(a: Sim3, b: Sim3, length: float) -> bool:
    return (
        abs(a.scale - b.scale) <= 1e-12 * a.scale
        and float(np.abs(a.rotation - b.rotation).max()) <= 1e-12
        and float(np.abs(a.translation - b.translation).max()) <= max(length, 1e-15)
    )


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> unit quaternion (x, y, z, w) with w >= 0 (Hamilton)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array(
            [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
        )
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array(
            [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        )
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array(
            [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        )
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array(
            [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
        )
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> (3, 3) rotation."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
