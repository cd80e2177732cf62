"""Similarity transforms (Sim(3)) and their closed-form least-squares fit between two
3-D point sets (Umeyama 1991), weighted. Plain numpy.

In the model layer because a window aligned to given cameras
(:mod:`dpt_ros.models.camera_alignment`) uses the fit; the offline reconstruction's
robust fit (:mod:`dpt_ros.reconstruct.sim3`) builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Sim3", "rotation_from_cross", "umeyama"]


@dataclass(frozen=True)
class Sim3:
    """``x -> scale * rotation @ x + translation``.

    Attributes:
        scale: float > 0.
        rotation: (3, 3) float64 proper rotation.
        translation: (3,) float64.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @staticmethod
    def identity() -> Sim3:
        return Sim3(1.0, np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points -> (..., 3) transformed points (float64)."""
        p = np.asarray(points, dtype=np.float64)
        return self.scale * p @ self.rotation.T + self.translation

    def compose(self, other: Sim3) -> Sim3:
        """``self ∘ other``: ``other`` first."""
        return Sim3(
            self.scale * other.scale,
            self.rotation @ other.rotation,
            self.scale * self.rotation @ other.translation + self.translation,
        )

    def inverse(self) -> Sim3:
        r_t = self.rotation.T
        return Sim3(1.0 / self.scale, r_t, -(r_t @ self.translation) / self.scale)

    def transform_camera_from_world(self, camera_from_world: np.ndarray) -> np.ndarray:
        """Camera poses of the source world in the target world.

        A camera ``[R | t]`` (camera-from-world, (..., 3, 4)) of the source world becomes
        ``[R @ rotation.T | scale * t - R @ rotation.T @ translation]``: the same camera
        in the target world, its camera frame in the target unit (lengths in it are
        ``scale`` times those of the source, as its depths are).
        """
        cfw = np.asarray(camera_from_world, dtype=np.float64)
        r = cfw[..., :3, :3] @ self.rotation.T
        t = self.scale * cfw[..., :3, 3] - (r @ self.translation[:, None])[..., 0]
        return np.concatenate([r, t[..., None]], axis=-1)


def rotation_from_cross(cross: np.ndarray) -> np.ndarray:
    """The rotation R maximising ``trace(R.T @ cross)`` (proper: det = +1)."""
    u, _, vt = np.linalg.svd(cross)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    return (u * d) @ vt


def umeyama(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None = None,
    rotations: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> Sim3:
    """The weighted least-squares Sim(3) taking ``source`` onto ``target``.

    Minimises ``sum_i w_i |target_i - (s R source_i + t)|^2`` (Umeyama 1991); with
    ``rotations`` = (source_rotations (M, 3, 3), target_rotations (M, 3, 3), weight) the
    rotation also maximises ``weight * sum_j trace(R.T @ T_j @ S_j.T)``: pairs of
    world-from-camera orientations that ``R`` should carry onto each other (shared
    cameras), added to the points' cross-covariance before its SVD.

    Args:
        source, target: (N, 3) corresponding points.
        weights: (N,) non-negative, not all zero; default all 1.

    Raises:
        ValueError: shapes differ, fewer than one point, or the weights sum to zero.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    if src.shape != dst.shape or len(src) == 0:
        raise ValueError(f"need matching non-empty (N, 3) point sets, got {src.shape}, {dst.shape}")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if not total > 0:
        raise ValueError("the weights of the points sum to zero")
    mu_s = w @ src / total
    mu_d = w @ dst / total
    cs, cd = src - mu_s, dst - mu_d
    cross = (cd * w[:, None]).T @ cs  # sum w (d - mu_d)(s - mu_s)^T
    if rotations is not None:
        r_src, r_dst, weight = rotations
        cross = cross + weight * np.einsum("mij,mkj->ik", r_dst, r_src)
    rotation = rotation_from_cross(cross)
    var_s = float(w @ np.einsum("ij,ij->i", cs, cs))
    scale = float(np.einsum("ij,ij->", cd * w[:, None], cs @ rotation.T)) / var_s if var_s else 1.0
    if not scale > 0:
        raise ValueError("the points give no positive scale (degenerate or mirrored sets)")
    return Sim3(scale, rotation, mu_d - scale * rotation @ mu_s)
