"""The files of ``dpt-ros reconstruct`` read back (PLY, COLMAP text, TUM, cameras.json,
windows), the frame input and windowing with its refusals, and the driver end to end
on a folder of PNGs with a synthetic model (dpt_ros.reconstruct)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from reconstruct_scenes import (
    FOCAL,
    HEIGHT,
    WIDTH,
    as_seen_by,
    depth_map,
    intrinsics,
    random_sim3,
    trajectory,
    true_window,
)

from dpt_ros.reconstruct.chain import WindowResult, world_from_camera
from dpt_ros.reconstruct.driver import ReconstructOptions, reconstruct
from dpt_ros.reconstruct.frames import (
    Frame,
    FrameSkips,
    check_output_folder,
    folder_frames,
    windows,
)
from dpt_ros.reconstruct.grid import intrinsics_to_input, maps_to_input
from dpt_ros.reconstruct.sim3 import quaternion_to_rotation
from dpt_ros.reconstruct.writers import (
    CameraRecord,
    select_points,
    write_colmap,
    write_ply,
    write_tum,
)

# --------------------------------------------------------------------------- readers


def read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    """(header lines, structured vertices) of a binary little-endian PLY."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    types = {"float": "<f4", "uchar": "u1", "double": "<f8", "int": "<i4"}
    fields = [(p.split()[2], types[p.split()[1]]) for p in header if p.startswith("property ")]
    count = int(next(h for h in header if h.startswith("element vertex")).split()[2])
    vertices = np.frombuffer(data[end:], dtype=np.dtype(fields))
    assert len(vertices) == count
    return header, vertices


def read_colmap(folder: Path):
    """cameras {id: (model, w, h, params)}, images {id: (q wxyz, t, camera, name)},
    points {id: (xyz, rgb)} from COLMAP's text format."""

    def rows(name: str) -> list[str]:
        return [
            line for line in (folder / name).read_text().split("\n") if not line.startswith("#")
        ]

    cameras = {}
    for line in rows("cameras.txt"):
        if line:
            e = line.split()
            cameras[int(e[0])] = (e[1], int(e[2]), int(e[3]), [float(v) for v in e[4:]])
    images = {}
    lines = rows("images.txt")
    for first, points2d in zip(lines[0::2], lines[1::2]):
        if not first:
            continue
        e = first.split()
        q = np.array([float(v) for v in e[1:5]])
        images[int(e[0])] = (q, np.array([float(v) for v in e[5:8]]), int(e[8]), e[9])
        assert points2d == ""
    points = {}
    for line in rows("points3D.txt"):
        if line:
            e = line.split()
            points[int(e[0])] = ([float(v) for v in e[1:4]], [int(v) for v in e[4:7]])
    return cameras, images, points


def _records(n: int = 4) -> list[CameraRecord]:
    poses = trajectory(n)
    return [
        CameraRecord(f"f{i}.png", f"f{i}", 0, poses[i], intrinsics(), WIDTH, HEIGHT, stamp_ns=None)
        for i in range(n)
    ]


# --------------------------------------------------------------------------- writers


def test_ply_reads_back_as_the_points(tmp_path):
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(100, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (100, 3)).astype(np.uint8)
    conf = rng.random(100).astype(np.float32)
    write_ply(tmp_path / "p.ply", xyz, rgb, conf)
    header, v = read_ply(tmp_path / "p.ply")
    assert [h.split()[-1] for h in header if h.startswith("property")] == [
        "x", "y", "z", "red", "green", "blue", "confidence"
    ]  # fmt: skip
    np.testing.assert_array_equal(np.stack([v["x"], v["y"], v["z"]], 1), xyz)
    np.testing.assert_array_equal(np.stack([v["red"], v["green"], v["blue"]], 1), rgb)
    np.testing.assert_array_equal(v["confidence"], conf)


def test_colmap_text_model_gives_the_cameras_back(tmp_path):
    records = _records()
    xyz = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    write_colmap(tmp_path, records, xyz, np.array([[1, 2, 3], [4, 5, 6]]))
    cameras, images, points = read_colmap(tmp_path)
    assert sorted(images) == [1, 2, 3, 4]
    for i, r in enumerate(records, start=1):
        model, w, h, params = cameras[images[i][2]]
        assert (model, w, h) == ("PINHOLE", WIDTH, HEIGHT)
        k = r.intrinsics  # COLMAP's principal point: OpenCV's + 0.5
        np.testing.assert_allclose(params, [k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5])
        q, t, _, name = images[i]
        assert name == r.name
        rot = quaternion_to_rotation(np.r_[q[1:], q[0]])  # w x y z -> x y z w
        np.testing.assert_allclose(rot, r.camera_from_world[:, :3], atol=1e-12)
        np.testing.assert_allclose(t, r.camera_from_world[:, 3], atol=1e-12)
    assert points[1] == ([1.0, 2.0, 3.0], [1, 2, 3]) and points[2][1] == [4, 5, 6]
    r0 = records[0]
    bag_frame = CameraRecord(
        "/cam/image_raw@500", "000000", 0, r0.camera_from_world, r0.intrinsics, WIDTH, HEIGHT
    )
    write_colmap(tmp_path, [bag_frame, records[1]], xyz[:0], np.zeros((0, 3)))
    _, images, points = read_colmap(tmp_path)
    assert [images[i][3] for i in (1, 2)] == ["000000.png", "f1.png"] and points == {}


def test_tum_lines_give_world_from_camera(tmp_path):
    records = _records()
    stamped = [
        r.__class__(**{**r.__dict__, "stamp_ns": 10**9 * (5 + i) + 7})
        for i, r in enumerate(records)
    ]
    for recs, stamps in ((records, [0, 1, 2, 3]), (stamped, [5.000000007 + i for i in range(4)])):
        write_tum(tmp_path / "t.tum", recs)
        lines = [
            ln for ln in (tmp_path / "t.tum").read_text().splitlines() if not ln.startswith("#")
        ]
        for line, r, stamp in zip(lines, recs, stamps):
            v = [float(x) for x in line.split()]
            assert len(v) == 8 and abs(v[0] - stamp) < 1e-9
            wfc = world_from_camera(r.camera_from_world)
            np.testing.assert_allclose(v[1:4], wfc[:, 3], atol=1e-7)
            np.testing.assert_allclose(quaternion_to_rotation(v[4:8]), wfc[:, :3], atol=1e-7)


def test_points_are_filtered_by_confidence_and_thinned_by_voxel():
    xyz = np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [1.5, 0.1, 0.1], [np.nan, 0, 0], [3, 3, 3]])
    rgb = np.array([[0, 0, 0], [100, 100, 100], [7, 7, 7], [1, 1, 1], [9, 9, 9]], np.uint8)
    conf = np.array([1.0, 3.0, 2.0, 9.0, 0.5])
    p, c, k = select_points(xyz, rgb, conf, min_confidence=0.9)
    assert len(p) == 3 and k.min() >= 0.9  # NaN dropped, 0.5 dropped
    p, c, k = select_points(xyz, rgb, conf, confidence_percentile=50)
    np.testing.assert_array_equal(np.sort(k), [2.0, 3.0])
    p, c, k = select_points(xyz, rgb, conf, min_confidence=0.9, voxel=1.0)
    assert len(p) == 2
    first = np.argmin(p[:, 0])  # the two points of the cube at the origin, merged
    np.testing.assert_allclose(p[first], [0.15, 0.15, 0.15], rtol=1e-6)
    assert c[first].tolist() == [50, 50, 50] and k[first] == 3.0


def test_intrinsics_follow_resize_crop_and_pad():
    k = np.array([[40.0, 0, 31.5], [0, 42.0, 23.5], [0, 0, 1]])
    point = np.array([0.3, -0.2, 2.0])
    for box in ([0, 0, 128, 96], [10, -20, 74, 28], [-5, 3, 59, 51]):
        box = np.array(box, float)
        k_in = intrinsics_to_input(k, (48, 64), box)
        u_net = (k @ point)[:2] / point[2]
        u_in = (k_in @ point)[:2] / point[2]
        scale = (box[2:] - box[:2]) / np.array([64, 48])
        np.testing.assert_allclose(u_in, (u_net + 0.5) * scale + box[:2] - 0.5, atol=1e-12)


def test_maps_to_input_scale_a_plane_exactly_and_blank_outside_a_crop():
    depth = np.full((24, 32), 2.5, np.float32)
    conf = np.ones((24, 32), np.float32)
    d, c = maps_to_input(depth, conf, (48, 64), np.array([0.0, 0.0, 64.0, 48.0]))
    assert d.shape == (48, 64) and np.all(d == 2.5) and np.all(c == 1)
    d, c = maps_to_input(depth, conf, (48, 64), np.array([0.0, 8.0, 64.0, 40.0]))
    assert np.isnan(d[:8]).all() and np.isnan(d[40:]).all() and np.all(d[8:40] == 2.5)
    assert np.all(c[:8] == 0)


# --------------------------------------------------------------------------- frames


def _frames(shapes) -> list[Frame]:
    return [Frame(i, f"{i}.png", str(i), np.zeros((*s, 3), np.uint8)) for i, s in enumerate(shapes)]


def test_windows_share_overlap_frames_and_the_last_is_shorter(caplog):
    fs = _frames([(4, 4)] * 10)
    with caplog.at_level(logging.WARNING, "dpt_ros.reconstruct"):
        got = [[f.index for f in w] for w in windows(iter(fs), 4, 1)]
    assert got == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert not caplog.records
    with caplog.at_level(logging.WARNING, "dpt_ros.reconstruct"):
        got = [[f.index for f in w] for w in windows(iter(fs), 4, 2)]
    assert got == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    got = [[f.index for f in w] for w in windows(iter(fs), 4, 0)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [r.getMessage() for r in caplog.records] == [
        "the last window holds 2 frame(s), fewer than --window 4"
    ]


def test_a_window_larger_than_the_frames_is_one_window(caplog):
    with caplog.at_level(logging.WARNING, "dpt_ros.reconstruct"):
        got = list(windows(iter(_frames([(4, 4)] * 3)), 8, 2))
    assert [len(w) for w in got] == [3]
    assert len(caplog.records) == 1 and "fewer than --window 8" in caplog.text


@pytest.mark.parametrize(("size", "overlap"), [(4, 4), (4, 5), (4, -1), (0, 0)])
def test_overlap_must_be_below_the_window(size, overlap):
    with pytest.raises(ValueError, match="--overlap|--window"):
        list(windows(iter(_frames([(4, 4)])), size, overlap))
    with pytest.raises(ValueError, match="--overlap|--window"):
        ReconstructOptions(size, overlap).validated()


def test_frames_of_another_size_in_a_window_are_refused():
    fs = _frames([(4, 4), (4, 4), (4, 6)])
    with pytest.raises(ValueError, match=r"'2.png' is 6x4 but '0.png'.*is 4x4"):
        list(windows(iter(fs), 3, 1))
    # Across windows sizes may change.
    assert [len(w) for w in windows(iter(fs), 2, 0)] == [2, 1]


def _write_pngs(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        img = np.full((HEIGHT, WIDTH, 3), 10 * i, np.uint8)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), img)


def test_corrupt_and_oversized_images_are_skipped_and_counted(tmp_path):
    _write_pngs(tmp_path / "in", 3)
    (tmp_path / "in" / "frame_001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    skips = FrameSkips()
    got = list(folder_frames(tmp_path / "in", 0, skips))
    assert [f.name for f in got] == ["frame_000.png", "frame_002.png"]
    assert [f.index for f in got] == [0, 1] and len(skips.images) == 1
    assert "frame_001.png" in skips.images[0]
    skips = FrameSkips()
    assert list(folder_frames(tmp_path / "in", 100, skips)) == []
    assert len(skips.images) == 3 and "larger than max_input_pixels=100" in skips.images[0]


def test_an_output_folder_holding_an_input_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match="holds the input"):
        check_output_folder(tmp_path, [tmp_path / "in"])
    with pytest.raises(ValueError, match="holds the input"):
        check_output_folder(tmp_path / "in", [tmp_path / "in"])
    check_output_folder(tmp_path / "out", [tmp_path / "in"])
    check_output_folder(tmp_path / "in" / "out", [tmp_path / "in"])  # a folder input's child
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    with pytest.raises(ValueError, match="inside the bag folder"):
        check_output_folder(bag / "out", [bag])


# --------------------------------------------------------------------------- driver


class SyntheticModel:
    """A multi-view "model" that knows the scene: each window exact, in a world and unit
    of its own, on a network grid of half the input's size (a plain resize)."""

    def __init__(self, poses: np.ndarray, seed: int = 0, net_scale: float = 1.0) -> None:
        self.poses = poses
        self.rng = np.random.default_rng(seed)
        self.net_scale = net_scale
        self.sim3s: list = []
        self.calls: list[list[str]] = []

    def __call__(self, images, names) -> WindowResult:
        self.calls.append(list(names))
        ids = [int(Path(n).stem.split("_")[1]) for n in names]
        s = self.net_scale
        w, h = round(WIDTH * s), round(HEIGHT * s)
        k = intrinsics(w, h, FOCAL * s)
        depth = np.stack([depth_map(self.poses[i], k, w, h) for i in ids])
        truth = WindowResult(
            depth,
            np.ones_like(depth) * 2,
            self.poses[ids],
            np.repeat(k[None], len(ids), 0),
            reference_view=len(ids) // 2,
        )
        sim3 = random_sim3(self.rng)
        self.sim3s.append(sim3)
        seen = as_seen_by(truth, sim3)
        return WindowResult(
            seen.depth.astype(np.float32),
            seen.confidence.astype(np.float32),
            seen.camera_from_world.astype(np.float32),
            seen.intrinsics.astype(np.float32),
            reference_view=truth.reference_view,
        )


def test_reconstruct_end_to_end_on_a_folder_of_pngs(tmp_path):
    _write_pngs(tmp_path / "in", 10)
    poses = trajectory(10)
    model = SyntheticModel(poses, seed=3)
    skips = FrameSkips()
    out = tmp_path / "out"
    options = ReconstructOptions(window=4, overlap=2, output_size="network", voxel=0.05)
    summary = reconstruct(
        folder_frames(tmp_path / "in", 0, skips), model, out, options, skips=skips
    )
    assert (summary.frames, summary.windows, summary.chained) == (10, 4, True)
    assert [len(c) for c in model.calls] == [4, 4, 4, 4]
    # windows/: raw outputs, before chaining.
    raw = np.load(out / "windows" / "0001.npz")
    assert raw["names"].tolist() == model.calls[1]
    assert int(raw["reference_view"]) == 2 and "world_points" not in raw
    np.testing.assert_allclose(
        raw["camera_from_world"],
        model.sim3s[1].transform_camera_from_world(poses[2:6]),
        rtol=1e-5,
        atol=1e-4,
    )
    # cameras.json: the chained trajectory, window 0's Sim(3) from the truth.
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["unit"] == "relative" and doc["chained"] is True
    assert [f["window"] for f in doc["frames"]] == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    got = np.array([f["camera_from_world"] for f in doc["frames"]])
    want = model.sim3s[0].transform_camera_from_world(poses)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()  # float32 windows
    assert doc["skipped"] == {"images": 0, "camera_info": 0}
    # depth/: every frame, in the first window's unit.
    d7 = np.load(out / "depth" / "frame_007.npy")
    k = intrinsics()
    np.testing.assert_allclose(d7, depth_map(poses[7], k) * model.sim3s[0].scale, rtol=1e-4)
    assert len(list((out / "confidence").glob("*.npy"))) == 10
    # trajectory.tum and the COLMAP model agree with cameras.json.
    lines = [ln for ln in (out / "trajectory.tum").read_text().splitlines() if ln[0] != "#"]
    assert len(lines) == 10 and lines[3].split()[0] == "3"
    _, images, points = read_colmap(out / "colmap")
    assert images[1][3] == "frame_000.png" and len(points) == summary.points > 0
    # points.ply: on the walls of the room (scaled into the first window's world).
    _, v = read_ply(out / "points.ply")
    xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    room = model.sim3s[0].inverse().apply(xyz)
    assert np.abs(np.abs(room).max(axis=1) - 5.0).max() < 0.05 + 1e-3
    cubes = np.floor(xyz / 0.05)  # one point per cube, across frames too
    assert len(np.unique(cubes, axis=0)) == len(xyz) > 100


def test_reconstruct_on_the_input_grid(tmp_path):
    _write_pngs(tmp_path / "in", 5)
    poses = trajectory(5)
    model = SyntheticModel(poses, seed=4, net_scale=0.5)
    out = tmp_path / "out"
    options = ReconstructOptions(window=3, overlap=1, output_size="input")
    reconstruct(folder_frames(tmp_path / "in", 0, FrameSkips()), model, out, options)
    assert np.load(out / "windows" / "0000.npz")["depth"].shape == (3, HEIGHT // 2, WIDTH // 2)
    assert np.load(out / "depth" / "frame_004.npy").shape == (HEIGHT, WIDTH)
    doc = json.loads((out / "cameras.json").read_text())
    k_in = np.array(doc["frames"][0]["intrinsics"])
    # The network's intrinsics of a half-size grid, carried back to the input's pixels.
    np.testing.assert_allclose(k_in, intrinsics(), rtol=1e-6)
    d = np.load(out / "depth" / "frame_002.npy")
    truth = depth_map(poses[2], intrinsics()) * model.sim3s[0].scale
    inner = (slice(4, -4), slice(4, -4))  # bilinear: exact on planes, not across edges
    assert np.median(np.abs(d[inner] / truth[inner] - 1)) < 1e-3


def test_without_overlap_cameras_json_says_not_chained(tmp_path, caplog):
    _write_pngs(tmp_path / "in", 6)
    model = SyntheticModel(trajectory(6), seed=5)
    with caplog.at_level(logging.WARNING, "dpt_ros.reconstruct"):
        summary = reconstruct(
            folder_frames(tmp_path / "in", 0, FrameSkips()),
            model,
            tmp_path / "out",
            ReconstructOptions(window=3, overlap=0),
        )
    doc = json.loads((tmp_path / "out" / "cameras.json").read_text())
    assert summary.chained is False and doc["chained"] is False
    assert "own world" in doc["world"] and "not chained" in caplog.text
    assert all(w["fit"] is None for w in doc["windows"])


def test_a_model_returning_the_wrong_views_is_refused(tmp_path):
    _write_pngs(tmp_path / "in", 3)
    poses = trajectory(3)

    def short(images, names):
        return true_window([0], poses)

    with pytest.raises(ValueError, match="returned 1 views for a window of 3"):
        reconstruct(
            folder_frames(tmp_path / "in", 0, FrameSkips()),
            short,
            tmp_path / "out",
            ReconstructOptions(window=3),
        )


def test_no_readable_frame_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match="no readable frame"):
        reconstruct(
            folder_frames(tmp_path / "in", 0, FrameSkips()),
            SyntheticModel(trajectory(1)),
            tmp_path / "out",
            ReconstructOptions(window=2),
        )


def test_maps_to_input_resizes_as_the_node_does():
    """A plain resize equals the live node's (``Predictor.infer_window(output_hw=...)``):
    depth bilinear in inverse depth with an invalid pixel kept to its nearest pixels,
    confidence bilinear, ``align_corners=False``."""
    import torch
    import torch.nn.functional as F

    from dpt_ros.models.geometry import upsample_depth

    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 20.0, (21, 28)).astype(np.float32)
    depth[5, 7] = np.nan
    conf = rng.uniform(1.0, 3.0, (21, 28)).astype(np.float32)
    d, c = maps_to_input(depth, conf, (48, 64), np.array([0.0, 0.0, 64.0, 48.0]))
    want = upsample_depth(torch.from_numpy(depth)[None], (48, 64))[0].numpy()
    assert np.array_equal(np.isnan(d), np.isnan(want)) and 0 < np.isnan(d).sum() < 16
    np.testing.assert_allclose(d, want, rtol=1e-6)
    conf_want = F.interpolate(
        torch.from_numpy(conf)[None, None], size=(48, 64), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    np.testing.assert_allclose(c, conf_want, rtol=1e-6)
