"""The synthetic scenes of the alignment tests and ``scripts/alignment_report.py``: a camera
above a ground plane, walls and boxes, ray-cast; relative outputs and sparse references."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpt_ros.alignment.fit import Alignment
from dpt_ros.ros.camera import Intrinsics

SCALE0 = 0.004  # 1/m per relative unit


WIDTH, HEIGHT = 160, 120


# Axis-aligned box fronts in the level frame: z (m), x range, height above the ground.
BOXES = ((3.5, (-0.4, 0.8), 1.0), (6.0, (1.0, 2.5), 2.0))


FAR_WALL_Z = 10.0


LEFT_WALL_X = -3.0
CAMERA_HEIGHT = 1.2  # metres


SHIFT0 = 0.03  # 1/m


def make_scene(pitch_deg: float = 0.0, width: int = WIDTH, height: int = HEIGHT) -> Scene:
    """Ray-cast the scene for a camera ``CAMERA_HEIGHT`` above the ground, pitched down."""
    f = 0.75 * width
    intr = Intrinsics(
        fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height
    )
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones_like(u)], -1)
    rot = pitch(pitch_deg)
    d = rays @ rot.T  # level-frame direction per unit of camera depth
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[..., 1] > 0, CAMERA_HEIGHT / d[..., 1], np.inf)
        t_far = np.where(d[..., 2] > 0, FAR_WALL_Z / d[..., 2], np.inf)
        t_left = np.where(d[..., 0] < 0, LEFT_WALL_X / d[..., 0], np.inf)
        t_box = np.full(u.shape, np.inf)
        for z, (x0, x1), top in BOXES:
            t = z / d[..., 2]
            x, y = t * d[..., 0], t * d[..., 1]
            hit = (
                (t > 0) & (x >= x0) & (x <= x1) & (y >= CAMERA_HEIGHT - top) & (y <= CAMERA_HEIGHT)
            )
            t_box = np.where(hit, np.minimum(t_box, t), t_box)
    stack = np.stack([t_ground, t_box, t_left, t_far])
    depth = stack.min(axis=0)
    nearest = stack.argmin(axis=0)
    assert np.all(np.isfinite(depth)) and np.all(depth > 0)
    normal = rot.T @ np.array([0.0, -1.0, 0.0])
    return Scene(intr, depth, nearest == 0, nearest == 1, normal)


def make_relative(
    scene: Scene,
    noise: float = 0.0,
    scale: float = SCALE0,
    shift: float = SHIFT0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(H, W) float32 relative inverse depth with multiplicative inverse-depth noise."""
    inv = 1.0 / scene.depth
    if noise:
        gen = rng if rng is not None else np.random.default_rng(1)
        inv = inv * (1.0 + noise * gen.standard_normal(inv.shape))
    return ((inv - shift) / scale).astype(np.float32)


def make_reference(
    scene: Scene,
    density: float = 0.03,
    outliers: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(H, W) sparse metric reference: NaN except ``density`` of the pixels.

    ``outliers`` of the known pixels are wrong: half a depth uniform in 0.3..15 m, half
    the true depth times 1.5..3 (multipath, returns from behind thin objects).
    """
    gen = rng if rng is not None else np.random.default_rng(2)
    ref = np.full(scene.depth.shape, np.nan)
    flat = gen.choice(
        scene.depth.size, size=max(1, round(density * scene.depth.size)), replace=False
    )
    values = scene.depth.reshape(-1)[flat].copy()
    bad = gen.random(flat.size) < outliers
    random_depth = gen.random(flat.size) < 0.5
    values[bad & random_depth] = gen.uniform(0.3, 15.0, int((bad & random_depth).sum()))
    far = bad & ~random_depth
    values[far] *= gen.uniform(1.5, 3.0, int(far.sum()))
    ref.reshape(-1)[flat] = values
    return ref


def median_error(got: np.ndarray, want: np.ndarray) -> float:
    """Median relative depth error; NaN depths count as 100 %."""
    err = np.abs(got.astype(np.float64) / want - 1.0)
    return float(np.median(np.where(np.isfinite(err), err, 1.0)))


def oracle(scale: float = SCALE0, shift: float = SHIFT0) -> Alignment:
    """The true calibration as an Alignment."""
    return Alignment(scale, shift, 1, 1.0, 0.0, 0.0, 1)


def normal_angle_deg(a: tuple[float, float, float] | None, b: np.ndarray) -> float:
    assert a is not None
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


@dataclass(frozen=True)
class Scene:
    """Ground-truth geometry of one view.

    Attributes:
        intrinsics: Pinhole intrinsics of the (HEIGHT, WIDTH) image.
        depth: (H, W) float64 true depth, metres (every ray hits a surface).
        ground: (H, W) bool, pixels that see the ground.
        boxes: (H, W) bool, pixels that see a box front.
        normal: (3,) the ground's unit up normal in the camera optical frame.
    """

    intrinsics: Intrinsics
    depth: np.ndarray
    ground: np.ndarray
    boxes: np.ndarray
    normal: np.ndarray


def pitch(deg: float) -> np.ndarray:
    """Camera-to-level rotation of a camera pitched down by ``deg`` degrees."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])
