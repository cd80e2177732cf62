"""Tests for dpt_ros.ros.camera."""

from __future__ import annotations

import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from std_msgs.msg import Header

from dpt_ros.ros.camera import Intrinsics, check_camera_info_matches, scale_camera_info


def make_info(
    width: int = 640,
    height: int = 480,
    fx: float = 500.0,
    fy: float = 510.0,
    cx: float = 319.5,
    cy: float = 239.5,
    baseline_term: float = -50.0,  # P[3] = -fx * B, B = 0.1 m
) -> CameraInfo:
    info = CameraInfo()
    info.header = Header(stamp=Time(sec=3, nanosec=4), frame_id="cam_optical")
    info.width = width
    info.height = height
    info.distortion_model = "plumb_bob"
    info.d = array.array("d", [-0.1, 0.01, 0.001, -0.002, 0.0])
    info.k = np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
    info.r = np.array([1.0, 0.01, 0.0, -0.01, 1.0, 0.0, 0.0, 0.0, 1.0])
    info.p = np.array([fx, 0.0, cx, baseline_term, 0.0, fy, cy, 2.0, 0.0, 0.0, 1.0, 0.0])
    info.binning_x = 0
    info.binning_y = 0
    return info


# ---------------------------------------------------------------- Intrinsics


def test_from_camera_info() -> None:
    intr = Intrinsics.from_camera_info(make_info())
    assert intr == Intrinsics(fx=500.0, fy=510.0, cx=319.5, cy=239.5, width=640, height=480)
    np.testing.assert_array_equal(intr.matrix(), [[500, 0, 319.5], [0, 510, 239.5], [0, 0, 1]])


def test_to_camera_info_is_the_inverse_of_from_camera_info() -> None:
    intr = Intrinsics(fx=500.5, fy=480.25, cx=319.5, cy=239.75, width=640, height=480)
    info = intr.to_camera_info("cam_optical")
    assert Intrinsics.from_camera_info(info) == intr
    assert info.header.frame_id == "cam_optical"
    assert list(info.p) == [500.5, 0.0, 319.5, 0.0, 0.0, 480.25, 239.75, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert list(info.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    check_camera_info_matches(info, 640, 480)


def test_from_camera_info_all_zero_k() -> None:
    info = make_info()
    info.k = np.zeros(9)
    with pytest.raises(ValueError, match="all zero"):
        Intrinsics.from_camera_info(info)


@pytest.mark.parametrize("fx, fy", [(0.0, 500.0), (500.0, -1.0), (float("nan"), 500.0)])
def test_from_camera_info_bad_focal(fx: float, fy: float) -> None:
    with pytest.raises(ValueError) as err:
        Intrinsics.from_camera_info(make_info(fx=fx, fy=fy))
    assert f"fx={fx}" in str(err.value) and f"fy={fy}" in str(err.value)


def test_from_camera_info_zero_size() -> None:
    with pytest.raises(ValueError, match="width=0"):
        Intrinsics.from_camera_info(make_info(width=0))


def test_intrinsics_validation() -> None:
    with pytest.raises(ValueError, match="fx=0"):
        Intrinsics(fx=0.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2)
    with pytest.raises(ValueError, match="width=0"):
        Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=0, height=2)


def test_intrinsics_scaled_half() -> None:
    intr = Intrinsics(fx=500.0, fy=510.0, cx=319.5, cy=239.5, width=640, height=480)
    half = intr.scaled(320, 240)
    assert half == Intrinsics(fx=250.0, fy=255.0, cx=159.5, cy=119.5, width=320, height=240)
    assert hash(half) == hash(Intrinsics(250.0, 255.0, 159.5, 119.5, 320, 240))


def test_intrinsics_scaled_pixel_centre_convention() -> None:
    intr = Intrinsics(fx=400.0, fy=400.0, cx=300.0, cy=200.0, width=640, height=480)
    # 640x480 -> 384x384: sx = 0.6, sy = 0.8
    s = intr.scaled(384, 384)
    assert s.fx == pytest.approx(240.0)
    assert s.fy == pytest.approx(320.0)
    assert s.cx == pytest.approx(300.5 * 0.6 - 0.5)  # 179.8 (plain scaling: 180.0)
    assert s.cy == pytest.approx(200.5 * 0.8 - 0.5)  # 159.9 (plain scaling: 160.0)
    # round trip back to the original size
    back = s.scaled(640, 480)
    assert back.cx == pytest.approx(300.0) and back.cy == pytest.approx(200.0)
    assert back.fx == pytest.approx(400.0)


# ------------------------------------------------------------- CameraInfo


def test_scale_camera_info_half() -> None:
    info = make_info()
    out = scale_camera_info(info, 320, 240)
    assert (out.width, out.height) == (320, 240)
    np.testing.assert_allclose(out.k, [250.0, 0, 159.5, 0, 255.0, 119.5, 0, 0, 1])
    # P[3] = -fx*B scales with sx, P[7] with sy, P[2]/P[6] like cx/cy
    np.testing.assert_allclose(out.p, [250.0, 0, 159.5, -25.0, 0, 255.0, 119.5, 1.0, 0, 0, 1, 0])
    assert list(out.d) == list(info.d)
    np.testing.assert_array_equal(out.r, info.r)
    assert out.distortion_model == "plumb_bob"
    assert (out.binning_x, out.binning_y) == (0, 0)
    # roi all zero stays zero
    roi = out.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, 0, 0)


def test_scale_camera_info_anisotropic_and_upscale() -> None:
    info = make_info(fx=400.0, fy=420.0, cx=300.0, cy=200.0, baseline_term=-40.0)
    out = scale_camera_info(info, 384, 384)  # sx = 0.6, sy = 0.8
    np.testing.assert_allclose(out.k, [240.0, 0, 179.8, 0, 336.0, 159.9, 0, 0, 1])
    np.testing.assert_allclose(out.p, [240.0, 0, 179.8, -24.0, 0, 336.0, 159.9, 1.6, 0, 0, 1, 0])
    up = scale_camera_info(info, 1280, 960)  # x2: cx' = 300.5*2 - 0.5 = 600.5
    np.testing.assert_allclose(up.k, [800.0, 0, 600.5, 0, 840.0, 400.5, 0, 0, 1])


def test_scale_camera_info_copies_and_leaves_input_alone() -> None:
    info = make_info()
    info.binning_x = 2
    info.binning_y = 2
    k_before = np.array(info.k)
    out = scale_camera_info(info, 320, 240)
    np.testing.assert_array_equal(info.k, k_before)
    assert (info.width, info.binning_x) == (640, 2)
    assert (out.binning_x, out.binning_y) == (0, 0)
    assert out.header is not info.header
    assert out.header.frame_id == "cam_optical" and out.header.stamp.sec == 3
    info.header.frame_id = "other"
    assert out.header.frame_id == "cam_optical"
    out.d[0] = 5.0
    assert info.d[0] == -0.1


def test_scale_camera_info_roi() -> None:
    info = make_info()
    info.roi = RegionOfInterest(x_offset=64, y_offset=48, width=320, height=240, do_rectify=True)
    out = scale_camera_info(info, 320, 240)
    roi = out.roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (32, 24, 160, 120)
    assert roi.do_rectify is True


def test_scale_camera_info_uncalibrated_stays_zero() -> None:
    info = make_info()
    info.k = np.zeros(9)
    info.p = np.zeros(12)
    out = scale_camera_info(info, 320, 240)
    assert not np.any(out.k) and not np.any(out.p)


def test_scale_camera_info_bad_sizes() -> None:
    with pytest.raises(ValueError, match="width=0"):
        scale_camera_info(make_info(), 0, 240)
    with pytest.raises(ValueError, match="camera_info"):
        scale_camera_info(make_info(width=0), 320, 240)


def test_scale_matches_intrinsics_scaled() -> None:
    info = make_info(fx=612.3, fy=611.9, cx=322.1, cy=241.7)
    a = Intrinsics.from_camera_info(scale_camera_info(info, 518, 392))
    b = Intrinsics.from_camera_info(info).scaled(518, 392)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(a, name) == pytest.approx(getattr(b, name))
    assert (a.width, a.height) == (b.width, b.height) == (518, 392)


def test_check_camera_info_matches() -> None:
    info = make_info()
    check_camera_info_matches(info, 640, 480)  # no error
    with pytest.raises(ValueError) as err:
        check_camera_info_matches(info, 320, 240)
    assert "640x480" in str(err.value) and "320x240" in str(err.value)
