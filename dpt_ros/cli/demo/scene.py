"""The demo's synthetic scene: a numpy ray caster and its camera sequence.

A textured ground plane, boxes and spheres, seen from a camera moving forward at
10 Hz. :func:`render` gives the colour image and the exact depth of one frame;
:func:`render_sequence` renders the frames of the sequence in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

FRAME_PERIOD_NS = 100_000_000  # 10 Hz


@dataclass(frozen=True)
class Box:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    color: tuple[float, float, float]


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float
    color: tuple[float, float, float]


# World frame: X right, Y up, Z forward; the ground is Y = 0. Colours are RGB in 0..1.
BOXES = (
    Box((-1.6, 0.0, 4.6), (-0.6, 1.0, 5.6), (0.80, 0.22, 0.18)),
    Box((1.0, 0.0, 7.6), (2.2, 1.6, 8.8), (0.20, 0.35, 0.80)),
    Box((-3.4, 0.0, 10.0), (-2.2, 2.6, 11.2), (0.85, 0.75, 0.20)),
    Box((0.2, 0.0, 13.0), (1.8, 1.2, 14.0), (0.55, 0.55, 0.60)),
)
SPHERES = (
    Sphere((0.35, 0.5, 3.6), 0.5, (0.20, 0.70, 0.30)),
    Sphere((-0.9, 0.35, 7.2), 0.35, (0.75, 0.25, 0.70)),
    Sphere((2.6, 0.8, 5.4), 0.8, (0.95, 0.55, 0.15)),
)
_LIGHT = np.array([0.45, 0.8, -0.4]) / np.linalg.norm([0.45, 0.8, -0.4])
_SKY_TOP, _SKY_HORIZON = np.array([0.30, 0.50, 0.85]), np.array([0.78, 0.86, 0.95])

#: Values of :attr:`_Hits.kind`.
_SKY, _GROUND, _OBJECT = 0, 1, 2


def camera_intrinsics(width: int, height: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of the demo camera: 62 degrees horizontal field of view."""
    f = 0.5 * width / math.tan(math.radians(62.0) / 2)
    return f, f, (width - 1) / 2.0, (height - 1) / 2.0


def camera_pose(t: float) -> tuple[np.ndarray, np.ndarray]:
    """(rotation optical->world (3, 3), position (3,)) at ``t`` seconds."""
    yaw = math.radians(6.0) * math.sin(0.9 * t)
    pitch = math.radians(12.0)  # looking down
    position = np.array([0.4 * math.sin(0.6 * t), 1.25 + 0.03 * math.sin(2.0 * t), 1.5 * t])
    flip = np.diag([1.0, -1.0, 1.0])  # optical (y down) -> world axes (Y up)
    cp, sp = math.cos(pitch), math.sin(pitch)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    cy, sy = math.cos(yaw), math.sin(yaw)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return turn @ tilt @ flip, position


@dataclass
class _Hits:
    """The nearest surface found so far along each pixel's ray.

    Attributes:
        depth: (H, W) float64 hit distance, which is the depth along the optical axis
            in metres (see :func:`_camera_rays`); +inf where nothing was hit.
        normal: (H, W, 3) float64 unit surface normal (world frame).
        albedo: (H, W, 3) float64 surface colour, RGB in 0..1.
        kind: (H, W) int8: 0 sky, 1 ground, 2 object.
    """

    depth: np.ndarray
    normal: np.ndarray
    albedo: np.ndarray
    kind: np.ndarray

    @classmethod
    def empty(cls, height: int, width: int) -> _Hits:
        """Sky everywhere."""
        return cls(
            depth=np.full((height, width), np.inf),
            normal=np.zeros((height, width, 3)),
            albedo=np.zeros((height, width, 3)),
            kind=np.zeros((height, width), np.int8),
        )

    def keep_nearer(self, t_hit: np.ndarray, kind: int) -> np.ndarray:
        """Takes the hits of ``t_hit`` (H, W) nearer than the current ones.

        Returns:
            (H, W) bool mask of the pixels taken (their normal and albedo are left to
            the caller).
        """
        hit = t_hit < self.depth
        self.depth[hit], self.kind[hit] = t_hit[hit], kind
        return hit


def _camera_rays(t: float, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The camera position and pixel rays at ``t`` seconds.

    Returns:
        (position (3,) in metres, world ray directions (H, W, 3), pixel rows (H, W)
        float64). A direction's optical z is 1, so a hit distance along it is the
        hit's depth.
    """
    fx, fy, cx, cy = camera_intrinsics(width, height)
    rot, pos = camera_pose(t)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays_cam = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1)
    d = rays_cam @ rot.T  # world directions whose optical z is 1: hit distance = depth
    return pos, d, v


def _hit_ground(hits: _Hits, pos: np.ndarray, d: np.ndarray) -> None:
    """Intersects the rays ``pos + t d`` with the ground plane Y = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[..., 1] < -1e-9, -pos[1] / d[..., 1], np.inf)
    hit = hits.keep_nearer(t_ground, _GROUND)
    hits.normal[hit] = (0.0, 1.0, 0.0)


def _hit_spheres(hits: _Hits, pos: np.ndarray, d: np.ndarray) -> None:
    """Intersects the rays ``pos + t d`` with :data:`SPHERES`."""
    for s in SPHERES:
        oc = pos - np.asarray(s.center)
        a = np.einsum("hwc,hwc->hw", d, d)
        b = 2.0 * (d @ oc)
        c = oc @ oc - s.radius**2
        disc = b * b - 4 * a * c
        with np.errstate(invalid="ignore"):
            t_hit = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
        t_hit = np.where((disc >= 0) & (t_hit > 0), t_hit, np.inf)
        hit = hits.keep_nearer(t_hit, _OBJECT)
        p = pos + d[hit] * t_hit[hit][:, None]
        hits.normal[hit] = (p - np.asarray(s.center)) / s.radius
        hits.albedo[hit] = s.color


def _hit_boxes(hits: _Hits, pos: np.ndarray, d: np.ndarray) -> None:
    """Intersects the rays ``pos + t d`` with :data:`BOXES` (slab test)."""
    for box in BOXES:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (np.asarray(box.lo) - pos) / d
            t2 = (np.asarray(box.hi) - pos) / d
        t1 = np.nan_to_num(t1, nan=-np.inf)
        t2 = np.nan_to_num(t2, nan=np.inf)
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near, t_far = near.max(-1), far.min(-1)
        t_hit = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
        hit = hits.keep_nearer(t_hit, _OBJECT)
        axis = near.argmax(-1)[hit]
        n = np.zeros((int(hit.sum()), 3))
        n[np.arange(len(axis)), axis] = -np.sign(d[hit][np.arange(len(axis)), axis])
        hits.normal[hit] = n
        hits.albedo[hit] = box.color


def _texture_ground(hits: _Hits, pos: np.ndarray, d: np.ndarray) -> None:
    """Gives the ground pixels a 0.5 m checkerboard with a fine texture."""
    ground = hits.kind == _GROUND
    p = pos + d[ground] * hits.depth[ground][:, None]
    tile = (np.floor(p[:, 0] / 0.5) + np.floor(p[:, 2] / 0.5)).astype(np.int64) & 1
    grain = 0.08 * np.sin(7.3 * p[:, 0]) * np.sin(5.1 * p[:, 2])  # fine texture
    base = np.where(tile[:, None] == 1, (0.42, 0.52, 0.30), (0.58, 0.62, 0.42))
    hits.albedo[ground] = base * (1.0 + grain[:, None])


def _shade(hits: _Hits, v: np.ndarray, height: int) -> np.ndarray:
    """Lights the hits, adds distance fog and the sky gradient.

    Args:
        hits: the nearest hit of every pixel.
        v: (H, W) float64 pixel rows.
        height: image height in pixels.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    lit = 0.35 + 0.65 * np.clip(hits.normal @ _LIGHT, 0.0, None)
    color = hits.albedo * lit[..., None]
    depth = hits.depth
    fog = 1.0 - np.exp(-np.where(np.isfinite(depth), depth, 0.0) / 40.0)
    sky_mix = np.clip((v / height)[..., None] * 1.6, 0.0, 1.0)
    sky = _SKY_TOP * (1 - sky_mix) + _SKY_HORIZON * sky_mix
    color = color * (1 - fog[..., None]) + _SKY_HORIZON * fog[..., None]
    color[hits.kind == _SKY] = sky[hits.kind == _SKY]
    return np.clip(np.rint(color * 255.0), 0, 255).astype(np.uint8)


def render(t: float, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray-casts the scene at time ``t``.

    Returns:
        ((H, W, 3) uint8 RGB, (H, W) float32 depth along the optical axis in metres,
        +inf where only sky is seen).
    """
    pos, d, v = _camera_rays(t, width, height)
    hits = _Hits.empty(height, width)
    _hit_ground(hits, pos, d)
    _hit_spheres(hits, pos, d)
    _hit_boxes(hits, pos, d)
    _texture_ground(hits, pos, d)
    rgb = _shade(hits, v, height)
    return rgb, hits.depth.astype(np.float32)


def render_sequence(
    frames: int, width: int, height: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Renders the camera sequence, one frame every :data:`FRAME_PERIOD_NS`, lazily.

    Yields:
        (time of the frame since the first one in nanoseconds, (H, W, 3) uint8 RGB,
        (H, W) float32 depth in metres as :func:`render`), for each of ``frames``.
    """
    for i in range(frames):
        offset_ns = i * FRAME_PERIOD_NS
        rgb, depth = render(offset_ns / 1e9, width, height)
        yield offset_ns, rgb, depth
