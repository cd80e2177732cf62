"""Tests for dpt_ros.ros.pointcloud, and for the back-projection that feeds it.

The back-projection properties (inverse K, optical-frame axes, NaN rules) are
checked on both the node's torch implementation
(:func:`dpt_ros.models.geometry.backproject`) and the numpy reference in
``test/support/reference_geometry.py``; the packing tests use the reference to make xyz.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Callable

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from reference_geometry import backproject
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.pointcloud import (
    make_pointcloud2,
    pack_rgb,
    pointcloud2_to_arrays,
    unpack_rgb,
)

HOST_BIG = sys.byteorder == "big"

# Odd sizes so that ceil(H / stride) matters for strides 2 and 3.
H, W = 7, 11
INTR = Intrinsics(fx=8.0, fy=9.5, cx=5.25, cy=2.75, width=W, height=H)
K = np.array([[8.0, 0.0, 5.25], [0.0, 9.5, 2.75], [0.0, 0.0, 1.0]])

Backproject = Callable[..., np.ndarray]


def header() -> Header:
    return Header(stamp=Time(sec=1, nanosec=2), frame_id="camera_optical_frame")


def depth_map() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0.5, 5.0, size=(H, W)).astype(np.float32)


def torch_backproject(
    depth_m: np.ndarray, intr: Intrinsics, stride: int = 1, max_depth: float = 0.0
) -> np.ndarray:
    """The node's torch back-projection (on the CPU) behind the reference's signature."""
    torch = pytest.importorskip("torch")
    from dpt_ros.models.geometry import backproject as device_backproject

    xyz = device_backproject(
        torch.from_numpy(np.ascontiguousarray(depth_m)),
        intr.fx,
        intr.fy,
        intr.cx,
        intr.cy,
        stride,
        max_depth,
    )
    return xyz.numpy()


@pytest.fixture(params=["reference", "torch"])
def any_backproject(request: pytest.FixtureRequest) -> Backproject:
    """Each back-projection implementation in turn."""
    return backproject if request.param == "reference" else torch_backproject


# ---------------------------------------------------------------- backproject


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_backproject_matches_inverse_k(any_backproject: Backproject, stride: int) -> None:
    depth = depth_map()
    xyz = any_backproject(depth, INTR, stride=stride)
    h, w = math.ceil(H / stride), math.ceil(W / stride)
    assert xyz.shape == (h, w, 3) and xyz.dtype == np.float32
    k_inv = np.linalg.inv(K)
    for i in range(h):
        for j in range(w):
            u, v = j * stride, i * stride
            expected = depth[v, u] * (k_inv @ np.array([u, v, 1.0]))
            np.testing.assert_allclose(xyz[i, j], expected, rtol=1e-5, atol=1e-6)


def test_backproject_optical_frame_axes(any_backproject: Backproject) -> None:
    depth = np.full((H, W), 2.0, dtype=np.float32)
    xyz = any_backproject(depth, INTR)
    assert xyz[0, 0, 0] < 0 and xyz[0, 0, 1] < 0  # top-left: left (-x) and up (-y)
    assert xyz[-1, -1, 0] > 0 and xyz[-1, -1, 1] > 0  # bottom-right: +x right, +y down
    np.testing.assert_array_equal(xyz[..., 2], 2.0)


def test_backproject_invalid_and_too_far_are_nan(any_backproject: Backproject) -> None:
    depth = np.full((H, W), 3.0, dtype=np.float32)
    bad = {(0, 0): np.nan, (0, 1): np.inf, (1, 0): -np.inf, (1, 1): 0.0, (2, 2): -1.0}
    for (r, c), val in bad.items():
        depth[r, c] = val
    depth[3, 4] = 9.0  # beyond max_depth
    depth[3, 5] = 8.0  # exactly max_depth: kept
    xyz = any_backproject(depth, INTR, max_depth=8.0)
    for r, c in [*bad, (3, 4)]:
        assert np.isnan(xyz[r, c]).all(), (r, c, xyz[r, c])
    assert np.isfinite(xyz[3, 5]).all() and xyz[3, 5, 2] == 8.0
    assert np.isfinite(xyz).all(axis=2).sum() == H * W - 6
    # without a limit the far pixel is valid
    assert np.isfinite(any_backproject(depth, INTR)[3, 4]).all()


def test_backproject_float64_input(any_backproject: Backproject) -> None:
    depth = depth_map()
    a = any_backproject(depth.astype(np.float64), INTR, stride=2)
    b = any_backproject(depth, INTR, stride=2)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_torch_backproject_equals_reference_bitwise(stride: int) -> None:
    """Same float64 rays rounded to float32, same float32 products: identical bits."""
    depth = depth_map()
    depth[1, 1], depth[2, 5] = np.nan, 12.0
    want = backproject(depth, INTR, stride=stride, max_depth=10.0)
    got = torch_backproject(depth, INTR, stride=stride, max_depth=10.0)
    np.testing.assert_array_equal(got, want)


def test_reference_backproject_errors() -> None:
    depth = depth_map()
    with pytest.raises(ValueError, match="intr.scaled"):
        backproject(depth[:, :-1], INTR)
    with pytest.raises(ValueError, match="stride"):
        backproject(depth, INTR, stride=0)
    with pytest.raises(ValueError, match="floating point"):
        backproject(depth.astype(np.uint16), INTR)
    with pytest.raises(ValueError, match="max_depth"):
        backproject(depth, INTR, max_depth=-1.0)


# ---------------------------------------------------------- PointCloud2 out


def test_pointcloud2_layout_xyz_rgb_labels() -> None:
    xyz = backproject(depth_map(), INTR, stride=2)
    h, w = xyz.shape[:2]
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, 151, size=(h, w), dtype=np.uint8)
    msg = make_pointcloud2(header(), xyz, rgb=rgb, labels=labels)

    assert isinstance(msg, PointCloud2)
    assert (msg.height, msg.width) == (h, w)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1),
        ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1),
        ("rgb", 12, PointField.FLOAT32, 1),
        ("label", 16, PointField.UINT32, 1),
    ]
    assert msg.point_step == 20 and msg.row_step == 20 * w
    assert len(msg.data) == msg.row_step * h
    assert msg.is_dense is False and msg.is_bigendian == HOST_BIG
    assert msg.header.frame_id == "camera_optical_frame"

    arrays = pointcloud2_to_arrays(msg)
    assert set(arrays) == {"x", "y", "z", "rgb", "label"}
    np.testing.assert_array_equal(np.stack([arrays["x"], arrays["y"], arrays["z"]], -1), xyz)
    np.testing.assert_array_equal(unpack_rgb(arrays["rgb"]), rgb)
    assert arrays["label"].dtype == np.uint32
    np.testing.assert_array_equal(arrays["label"], labels)


def test_pointcloud2_rgb_bytes_are_pcl_packed() -> None:
    xyz = np.zeros((1, 2, 3), dtype=np.float32)
    rgb = np.array([[(0x12, 0x34, 0x56), (255, 0, 128)]], dtype=np.uint8)
    msg = make_pointcloud2(header(), xyz, rgb=rgb)
    assert msg.point_step == 16 and msg.row_step == 32
    raw = bytes(msg.data)
    order = "big" if msg.is_bigendian else "little"
    assert int.from_bytes(raw[12:16], order) == 0x00123456
    assert int.from_bytes(raw[16 + 12 : 16 + 16], order) == 0x00FF0080
    np.testing.assert_array_equal(pack_rgb(rgb), [[0x123456, 0xFF0080]])
    np.testing.assert_array_equal(pack_rgb(rgb).view(np.float32), pointcloud2_to_arrays(msg)["rgb"])


def test_pointcloud2_nan_points_survive() -> None:
    depth = depth_map()
    depth[0, 0] = np.nan
    depth[2, 3] = 100.0
    xyz = backproject(depth, INTR, max_depth=10.0)
    back = pointcloud2_to_arrays(make_pointcloud2(header(), xyz))
    for name in "xyz":
        assert np.isnan(back[name][0, 0]) and np.isnan(back[name][2, 3])
        assert np.isfinite(back[name][1, 1])


def test_pointcloud2_xyz_only_and_labels_only() -> None:
    xyz = backproject(depth_map(), INTR, stride=3)
    msg = make_pointcloud2(header(), xyz)
    assert [f.name for f in msg.fields] == ["x", "y", "z"] and msg.point_step == 12
    labels = np.arange(xyz.shape[0] * xyz.shape[1], dtype=np.int64).reshape(xyz.shape[:2]) + 70000
    msg = make_pointcloud2(header(), xyz, labels=labels)
    assert [(f.name, f.offset) for f in msg.fields][-1] == ("label", 12)
    assert msg.point_step == 16
    np.testing.assert_array_equal(pointcloud2_to_arrays(msg)["label"], labels)


def test_make_pointcloud2_errors() -> None:
    xyz = np.zeros((2, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(h, w, 3\)"):
        make_pointcloud2(header(), xyz[..., :2])
    with pytest.raises(ValueError, match="rgb"):
        make_pointcloud2(header(), xyz, rgb=np.zeros((2, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="labels"):
        make_pointcloud2(header(), xyz, labels=np.zeros((3, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match=">= 0"):
        make_pointcloud2(header(), xyz, labels=-np.ones((2, 3), dtype=np.int32))


def test_header_copied() -> None:
    hdr = header()
    msg = make_pointcloud2(hdr, np.zeros((1, 1, 3), np.float32))
    hdr.frame_id = "changed"
    assert msg.header.frame_id == "camera_optical_frame"


# ------------------------------------------------- reading foreign layouts


def test_pointcloud2_to_arrays_generic_layout() -> None:
    """Big-endian, padded points, padded rows, float64 and multi-count fields."""
    h, w, point_step, row_step = 2, 3, 32, 3 * 32 + 8
    rng = np.random.default_rng(2)
    intensity = rng.uniform(0, 1, size=(h, w))
    xyz = rng.uniform(-1, 1, size=(h, w, 3)).astype(np.float32)
    ring = rng.integers(0, 65535, size=(h, w), dtype=np.uint16)
    raw = bytearray(b"\xab" * (row_step * h))
    for i in range(h):
        for j in range(w):
            base = i * row_step + j * point_step
            raw[base + 4 : base + 16] = xyz[i, j].astype(">f4").tobytes()  # xyz as count=3
            raw[base + 16 : base + 24] = np.array([intensity[i, j]], dtype=">f8").tobytes()
            raw[base + 24 : base + 26] = np.array([ring[i, j]], dtype=">u2").tobytes()
    msg = PointCloud2()
    msg.height, msg.width = h, w
    msg.fields = [
        PointField(name="pos", offset=4, datatype=PointField.FLOAT32, count=3),
        PointField(name="intensity", offset=16, datatype=PointField.FLOAT64, count=1),
        PointField(name="ring", offset=24, datatype=PointField.UINT16, count=1),
    ]
    msg.is_bigendian = True
    msg.point_step, msg.row_step = point_step, row_step
    msg.data = array.array("B", raw)

    out = pointcloud2_to_arrays(msg)
    assert out["pos"].shape == (h, w, 3) and out["pos"].dtype == np.float32
    np.testing.assert_array_equal(out["pos"], xyz)
    np.testing.assert_array_equal(out["intensity"], intensity)
    assert out["ring"].dtype == np.uint16 and out["ring"].dtype.isnative
    np.testing.assert_array_equal(out["ring"], ring)


def test_pointcloud2_to_arrays_errors() -> None:
    msg = make_pointcloud2(header(), np.zeros((2, 2, 3), np.float32))
    msg.data = msg.data[:-4]
    with pytest.raises(ValueError, match="44 bytes"):
        pointcloud2_to_arrays(msg)
    msg = make_pointcloud2(header(), np.zeros((2, 2, 3), np.float32))
    msg.fields[2].offset = 10  # z would span 10..14 > point_step 12
    with pytest.raises(ValueError, match="point_step"):
        pointcloud2_to_arrays(msg)
    msg = make_pointcloud2(header(), np.zeros((2, 2, 3), np.float32))
    msg.fields[0].datatype = 42
    with pytest.raises(ValueError, match="unknown datatype 42"):
        pointcloud2_to_arrays(msg)


def test_pointcloud2_to_arrays_short_row_step() -> None:
    msg = make_pointcloud2(header(), np.zeros((2, 2, 3), np.float32))
    msg.row_step = 20  # < width * point_step = 24
    with pytest.raises(ValueError, match="row_step=20"):
        pointcloud2_to_arrays(msg)


def test_empty_cloud_round_trip() -> None:
    xyz = np.zeros((0, 4, 3), np.float32)
    labels = np.zeros((0, 4), np.uint16)
    msg = make_pointcloud2(header(), xyz, rgb=np.zeros((0, 4, 3), np.uint8), labels=labels)
    assert (msg.height, msg.width, msg.point_step, len(msg.data)) == (0, 4, 20, 0)
    arrays = pointcloud2_to_arrays(msg)
    assert {k: (v.shape, v.dtype) for k, v in arrays.items()} == {
        "x": ((0, 4), np.float32),
        "y": ((0, 4), np.float32),
        "z": ((0, 4), np.float32),
        "rgb": ((0, 4), np.float32),
        "label": ((0, 4), np.uint32),
    }


def test_pointcloud2_survives_rclpy_serialization() -> None:
    """The message we build is publishable: rclpy serialises and restores it."""
    serialization = pytest.importorskip("rclpy.serialization")
    xyz = backproject(depth_map(), INTR, stride=2)
    rgb = np.full(xyz.shape, 7, dtype=np.uint8)
    labels = np.full(xyz.shape[:2], 3, dtype=np.uint8)
    msg = make_pointcloud2(header(), xyz, rgb=rgb, labels=labels)
    back = serialization.deserialize_message(serialization.serialize_message(msg), PointCloud2)
    arrays = pointcloud2_to_arrays(back)
    np.testing.assert_array_equal(arrays["z"], xyz[..., 2])
    np.testing.assert_array_equal(unpack_rgb(arrays["rgb"]), rgb)
    np.testing.assert_array_equal(arrays["label"], labels)
    assert back.header.frame_id == "camera_optical_frame"
