"""Synthetic geometry for the reconstruct tests and ``scripts/reconstruct_report.py``: a
camera moving along a curve inside a textured box room, ray-cast exactly; windows of its
frames, each given an arbitrary Sim(3) of its own, as a multi-view model would return
them (every window in its own world and unit)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dpt_ros.reconstruct.chain import WindowResult
from dpt_ros.reconstruct.sim3 import Sim3

#: Half the side of the room, in metres; the room is centred on the world origin.
ROOM = 5.0
WIDTH, HEIGHT = 64, 48
FOCAL = 50.0


def intrinsics(width: int = WIDTH, height: int = HEIGHT, focal: float = FOCAL) -> np.ndarray:
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])


def rotation(axis: Sequence[float], angle: float) -> np.ndarray:
    """Rodrigues: rotation by ``angle`` radians about ``axis``."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def trajectory(frames: int = 10) -> np.ndarray:
    """(frames, 3, 4) camera-from-world of a camera on a curve, turning as it goes."""
    poses = []
    for i in range(frames):
        s = i / max(frames - 1, 1)
        centre = np.array([1.5 * np.sin(2 * s), 0.3 * np.sin(5 * s), 1.2 * s - 0.6])
        r_wc = rotation([0, 1, 0], 1.2 * s) @ rotation([1, 0, 0], 0.2 * np.sin(3 * s))
        r_cw = r_wc.T
        poses.append(np.concatenate([r_cw, (-r_cw @ centre)[:, None]], axis=1))
    return np.stack(poses)


def depth_map(
    camera_from_world: np.ndarray, k: np.ndarray, width: int = WIDTH, height: int = HEIGHT
) -> np.ndarray:
    """(height, width) z-depth of the room's walls seen by the camera."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    r_wc = camera_from_world[:, :3].T
    centre = -r_wc @ camera_from_world[:, 3]
    d = rays @ r_wc.T  # world direction per unit of z-depth
    with np.errstate(divide="ignore"):
        t = np.where(d > 0, (ROOM - centre) / d, (-ROOM - centre) / d)
    return np.min(np.where(np.isfinite(t) & (t > 0), t, np.inf), axis=-1)


def random_sim3(rng: np.random.Generator) -> Sim3:
    return Sim3(
        float(np.exp(rng.uniform(-1.5, 1.5))),
        rotation(rng.normal(size=3), rng.uniform(0, np.pi)),
        rng.normal(scale=10.0, size=3),
    )


def true_window(frames: Sequence[int], poses: np.ndarray) -> WindowResult:
    """The exact outputs of ``frames`` in the true world (metres)."""
    k = intrinsics()
    depth = np.stack([depth_map(poses[i], k) for i in frames]).astype(np.float64)
    return WindowResult(
        depth=depth,
        confidence=np.ones_like(depth) + 0.01 * np.arange(depth[0].size).reshape(depth[0].shape),
        camera_from_world=poses[list(frames)].copy(),
        intrinsics=np.repeat(k[None], len(frames), 0),
    )


def as_seen_by(window: WindowResult, sim3: Sim3) -> WindowResult:
    """A true window moved into a world of its own by ``sim3`` (true -> window world),
    in float64 so that the chain can be checked to 1e-6."""
    return WindowResult(
        depth=window.depth * sim3.scale,
        confidence=window.confidence,
        camera_from_world=sim3.transform_camera_from_world(window.camera_from_world),
        intrinsics=window.intrinsics,
        reference_view=window.reference_view,
    )


def window_frames(count: int, size: int, overlap: int) -> list[list[int]]:
    """The frame indices of each window (the last one shorter)."""
    out, start = [], 0
    while True:
        out.append(list(range(start, min(start + size, count))))
        if start + size >= count:
            return out
        start += size - overlap
