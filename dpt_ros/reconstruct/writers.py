"""The files of ``dpt-ros reconstruct`` (plain numpy; no pycolmap, no PLY library).

Every file appears complete or not at all (written beside its place, then renamed).
Conventions, named in every file: ``camera_from_world`` maps world points into the
camera's OpenCV optical frame (x right, y down, z forward); TUM lines hold the
world-from-camera pose with the quaternion x y z w; COLMAP's images.txt holds the
world-to-camera pose with the quaternion w x y z and its principal point is in COLMAP's
pixel convention (0.5 = centre of the first pixel, OpenCV's cx + 0.5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpt_ros.reconstruct.chain import WindowResult, world_from_camera
from dpt_ros.reconstruct.sim3 import rotation_to_quaternion
from dpt_ros.viz.pictures import atomic_file

__all__ = [
    "CameraRecord",
    "write_window",
    "write_frame_maps",
    "write_cameras_json",
    "write_tum",
    "select_points",
    "write_ply",
    "write_colmap",
    "PLY_DTYPE",
]

#: One vertex of points.ply: binary little-endian.
PLY_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("red", "u1"),
        ("green", "u1"),
        ("blue", "u1"),
        ("confidence", "<f4"),
    ]
)


@dataclass(frozen=True)
class CameraRecord:
    """One frame's camera in the reconstruction.

    Attributes:
        name: the input file name or ``<topic>@<stamp>``.
        stem: its output stem.
        window: the window its depth and camera come from (the first that holds it).
        camera_from_world: (3, 4) in the reconstruction's world and unit.
        intrinsics: (3, 3) pixels on the output grid.
        width, height: the output grid.
        stamp_ns: header stamp (bags), else None.
        camera_info: (3, 3) the calibration's intrinsics at the input size, else None.
    """

    name: str
    stem: str
    window: int
    camera_from_world: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int
    stamp_ns: int | None = None
    camera_info: np.ndarray | None = None


def write_window(path: Path, window: WindowResult, names: Sequence[str]) -> None:
    """``windows/<k>.npz``: a window's raw outputs on the network grid, before chaining:
    ``depth`` (N, h, w), ``confidence`` (N, h, w), ``camera_from_world`` (N, 3, 4),
    ``intrinsics`` (N, 3, 3), ``reference_view`` (), ``names`` (N,) str, and
    ``world_points`` (N, h, w, 3) when the model gives them, and ``network_box`` (N, 4)
    ``x0, y0, x1, y1`` (input pixels) when the grid covers other than the whole image
    (VGGT's crop or pad: where the box exceeds the image the maps are the model's
    outputs on white padding, not image)."""
    arrays: dict[str, Any] = {
        "depth": np.asarray(window.depth, dtype=np.float32),
        "confidence": np.asarray(window.confidence, dtype=np.float32),
        "camera_from_world": np.asarray(window.camera_from_world, dtype=np.float32),
        "intrinsics": np.asarray(window.intrinsics, dtype=np.float32),
        "reference_view": np.int64(window.reference_view),
        "names": np.array([str(n) for n in names]),
    }
    if window.world_points is not None:
        arrays["world_points"] = np.asarray(window.world_points, dtype=np.float32)
    if window.network_box is not None:
        arrays["network_box"] = np.asarray(window.network_box, dtype=np.float64)
    with atomic_file(path) as f:
        np.savez(f, **arrays)


def write_frame_maps(out: Path, stem: str, depth: np.ndarray, confidence: np.ndarray) -> None:
    """``depth/<stem>.npy`` and ``confidence/<stem>.npy``, float32."""
    for folder, array in (("depth", depth), ("confidence", confidence)):
        with atomic_file(out / folder / f"{stem}.npy") as f:
            np.save(f, np.asarray(array, dtype=np.float32))


def _matrix(m: np.ndarray | None) -> list[list[float]] | None:
    return None if m is None else [[float(v) for v in row] for row in np.asarray(m)]


def write_cameras_json(
    path: Path,
    records: Sequence[CameraRecord],
    *,
    unit: str,
    scale: str,
    chained: bool,
    one_world: bool,
    windows: Sequence[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> None:
    """``cameras.json``: the conventions, how scale and world were set, each window's
    alignment, and per frame its camera. ``chained``: windows aligned to each other
    (``--overlap`` > 0); ``one_world``: every pose in one world (chained, or one
    window)."""
    doc: dict[str, Any] = {
        "conventions": {
            "camera_from_world": "3x4 [R|t], world point -> OpenCV optical frame "
            "(x right, y down, z forward)",
            "intrinsics": "3x3 pixels on the output grid, (0, 0) = centre of the top-left pixel",
            "depth": "z in the optical frame, in the unit below; depth/<stem>.npy",
        },
        "unit": unit,
        "scale": scale,
        "chained": chained,
        "world": "the first window's world"
        if one_world
        else "each window's own world (windows not chained: poses of different windows "
        "are not comparable)",
        "windows": list(windows),
        "frames": [
            {
                "name": r.name,
                "stem": r.stem,
                "window": r.window,
                "width": r.width,
                "height": r.height,
                "stamp_ns": r.stamp_ns,
                "camera_from_world": _matrix(r.camera_from_world),
                "intrinsics": _matrix(r.intrinsics),
                **(
                    {"camera_info_intrinsics": _matrix(r.camera_info)}
                    if r.camera_info is not None
                    else {}
                ),
            }
            for r in records
        ],
    }
    if extra:
        doc.update(extra)
    with atomic_file(path) as f:
        f.write((json.dumps(doc, indent=1) + "\n").encode())


def write_tum(path: Path, records: Sequence[CameraRecord]) -> None:
    """``trajectory.tum``: ``stamp tx ty tz qx qy qz qw``, world-from-camera; the stamp
    in seconds from the bag, else the frame's index."""
    lines = [
        "# dpt-ros reconstruct: world-from-camera (OpenCV optical frame), stamp tx ty tz qx qy qz qw"
    ]
    for i, r in enumerate(records):
        wfc = world_from_camera(r.camera_from_world)
        q = rotation_to_quaternion(wfc[:3, :3])
        stamp = f"{r.stamp_ns / 1e9:.9f}" if r.stamp_ns is not None else str(i)
        values = " ".join(f"{v:.9g}" for v in (*wfc[:3, 3], *q))
        lines.append(f"{stamp} {values}")
    with atomic_file(path) as f:
        f.write(("\n".join(lines) + "\n").encode())


def select_points(
    xyz: np.ndarray,
    rgb: np.ndarray,
    confidence: np.ndarray,
    *,
    min_confidence: float | None = None,
    confidence_percentile: float | None = None,
    voxel: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filters and thins a cloud: finite points only; confidence >= ``min_confidence``
    and/or >= the ``confidence_percentile``-th percentile (0..100) of the finite points'
    confidence; then one point per cube of side ``voxel`` (the mean position and colour
    of its points, their largest confidence).

    Args:
        xyz: (M, 3) float, rgb: (M, 3) uint8, confidence: (M,) float.

    Returns:
        xyz (K, 3) float32, rgb (K, 3) uint8, confidence (K,) float32.
    """
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    conf = np.asarray(confidence, dtype=np.float32).reshape(-1)
    keep = np.isfinite(xyz).all(axis=1) & np.isfinite(conf)
    if min_confidence is not None:
        keep &= conf >= min_confidence
    if confidence_percentile is not None and keep.any():
        keep &= conf >= np.percentile(conf[keep], confidence_percentile)
    if not keep.all():
        xyz, rgb, conf = xyz[keep], rgb[keep], conf[keep]
    if voxel and len(xyz):
        order, group, counts = _voxel_groups(xyz, voxel)
        inverse = np.empty_like(group)
        inverse[order] = group  # the group of each point, in the points' order
        sums = np.stack([np.bincount(inverse, xyz[:, i], len(counts)) for i in range(3)], 1)
        colour = np.stack([np.bincount(inverse, rgb[:, i], len(counts)) for i in range(3)], 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        conf = np.maximum.reduceat(conf[order], starts)
        xyz = (sums / counts[:, None]).astype(np.float32)
        rgb = np.clip(np.rint(colour / counts[:, None]), 0, 255).astype(np.uint8)
    return xyz.astype(np.float32), rgb.astype(np.uint8), conf.astype(np.float32)


def _voxel_groups(xyz: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points grouped by the cube of side ``voxel`` they fall in: (order (M,) that sorts
    the points by group, group of each sorted point (M,), points per group (G,))."""
    keys = np.floor(xyz * (1.0 / voxel)).astype(np.int64)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    if float(np.prod(dims.astype(np.float64))) >= 2.0**62:  # too wide for one key per cube
        _, flat = np.unique(keys, axis=0, return_inverse=True)
        flat = flat.reshape(-1)
    else:
        flat = np.ravel_multi_index(tuple(keys.T), tuple(dims))
    order = np.argsort(flat)
    ordered = flat[order]
    group = np.concatenate([[0], np.cumsum(ordered[1:] != ordered[:-1])])
    return order, group, np.bincount(group)


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray, confidence: np.ndarray) -> None:
    """``points.ply``: binary little-endian, vertices ``x y z`` (float),
    ``red green blue`` (uchar), ``confidence`` (float)."""
    vertices = np.empty(len(xyz), dtype=PLY_DTYPE)
    for i, axis in enumerate("xyz"):
        vertices[axis] = xyz[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = rgb[:, i]
    vertices["confidence"] = confidence
    header = (
        "ply\n"
        "format binary_little_endian 1.0\n"
        "comment dpt-ros reconstruct: the reconstruction's world and unit (cameras.json)\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "property float confidence\n"
        "end_header\n"
    )
    with atomic_file(path) as f:
        f.write(header.encode("ascii"))
        f.write(vertices.tobytes())


def colmap_name(record: CameraRecord) -> str:
    """The image's NAME in images.txt: the input file's name, or ``<stem>.png`` for a
    name COLMAP's one-line format cannot hold (a bag's ``<topic>@<stamp>``, spaces)."""
    name = record.name
    if "/" in name or any(c.isspace() for c in name) or not name:
        return f"{record.stem}.png"
    return name


def write_colmap(
    folder: Path,
    records: Sequence[CameraRecord],
    xyz: np.ndarray,
    rgb: np.ndarray,
) -> None:
    """A COLMAP text model: ``cameras.txt`` (one PINHOLE camera per frame:
    ``CAMERA_ID PINHOLE WIDTH HEIGHT fx fy cx cy``, the principal point in COLMAP's
    convention), ``images.txt`` (``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME``,
    world-to-camera, then an empty line of 2-D points; NAME from :func:`colmap_name`)
    and ``points3D.txt``
    (``POINT3D_ID X Y Z R G B ERROR`` with error 0 and an empty track)."""
    folder.mkdir(parents=True, exist_ok=True)
    cams = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(records)}",
    ]
    images = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(records)}, mean observations per image: 0",
    ]
    for i, r in enumerate(records, start=1):
        k = r.intrinsics
        params = (k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5)
        cams.append(f"{i} PINHOLE {r.width} {r.height} " + " ".join(f"{v:.17g}" for v in params))
        cfw = np.asarray(r.camera_from_world, dtype=np.float64)
        x, y, z, w = rotation_to_quaternion(cfw[:3, :3])
        pose = " ".join(f"{v:.17g}" for v in (w, x, y, z, *cfw[:3, 3]))
        images.append(f"{i} {pose} {i} {colmap_name(r)}")
        images.append("")
    with atomic_file(folder / "cameras.txt") as f:
        f.write(("\n".join(cams) + "\n").encode())
    with atomic_file(folder / "images.txt") as f:
        f.write(("\n".join(images) + "\n").encode())
    header = (
        "# 3D point list with one line of data per point:\n"
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
        f"# Number of points: {len(xyz)}, mean track length: 0\n"
    )
    with atomic_file(folder / "points3D.txt") as f:
        f.write(header.encode())
        if len(xyz):
            ids = np.arange(1, len(xyz) + 1)
            table = np.column_stack([ids, np.asarray(xyz, np.float64), np.asarray(rgb, np.int64)])
            fmt = "%d %.9g %.9g %.9g %d %d %d 0"
            np.savetxt(f, table, fmt=fmt)
