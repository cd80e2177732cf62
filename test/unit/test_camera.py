"""Tests for dpt_ros.ros.camera."""

from __future__ import annotations

import array
import re

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from std_msgs.msg import Header

from dpt_ros.ros.camera import (
    Intrinsics,
    check_camera_info_matches,
    depth_camera_info,
    focal_length_range,
    is_distorted,
    scale_camera_info,
)


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


def test_from_camera_info_all_zero_k_and_p() -> None:
    info = make_info()
    info.k = np.zeros(9)
    info.p = np.zeros(12)
    with pytest.raises(ValueError, match="all zero"):
        Intrinsics.from_camera_info(info)


def test_from_camera_info_follows_p_not_k() -> None:
    """A rectified image follows P: with K fx 500 and P fx 430, a pixel at the image edge
    at 3 m lands 31 cm off when K is used."""
    info = make_info(fx=500.0, fy=500.0)
    info.p = np.array([430.0, 0.0, 319.5, 0.0, 0.0, 440.0, 250.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    intr = Intrinsics.from_camera_info(info)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (430.0, 440.0, 319.5, 250.0)
    x_p = (639 - intr.cx) * 3.0 / intr.fx
    x_k = (639 - 319.5) * 3.0 / 500.0
    assert abs(x_p - x_k) == pytest.approx(0.312, abs=1e-3)


def test_from_camera_info_falls_back_to_k_when_p_is_zero() -> None:
    info = make_info(fx=500.0, fy=510.0)
    info.p = np.zeros(12)
    intr = Intrinsics.from_camera_info(info)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500.0, 510.0, 319.5, 239.5)


def test_binning_and_roi_adjust_the_model_as_image_geometry() -> None:
    """ROI 320x240 at (64, 48), binning 2: a 160x120 image whose principal point is
    ``(c - offset) / binning`` and focal length ``f / binning``."""
    info = make_info(fx=500.0, fy=510.0, cx=319.5, cy=239.5)
    info.binning_x = info.binning_y = 2
    info.roi = RegionOfInterest(x_offset=64, y_offset=48, width=320, height=240)
    intr = Intrinsics.from_camera_info(info)
    assert intr == Intrinsics(250.0, 255.0, (319.5 - 64) / 2, (239.5 - 48) / 2, 160, 120)
    check_camera_info_matches(info, 160, 120)
    with pytest.raises(ValueError, match=r"ROI 320x240\+64\+48 and binning 2x2, i.e. 160x120"):
        check_camera_info_matches(info, 640, 480)


def test_depth_camera_info_describes_the_published_image() -> None:
    """Rectified (D = 0, R = I), K = P's left 3x3, P rescaled with its baseline term."""
    info = make_info(fx=500.0, fy=510.0, baseline_term=-50.0)
    info.p = np.array([430.0, 0.0, 330.0, -43.0, 0.0, 440.0, 250.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    header = Header(stamp=Time(sec=9), frame_id="depth_frame")
    intr, out = depth_camera_info(info, 320, 240, header)
    assert intr == Intrinsics.from_camera_info(info).scaled(320, 240)
    assert list(out.d) == [0.0] * 5 and out.distortion_model == "plumb_bob"
    assert list(out.r) == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert list(out.k) == [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    assert list(out.p) == [intr.fx, 0.0, intr.cx, -21.5, 0.0, intr.fy, intr.cy, 0.0, 0, 0, 1, 0]
    assert (out.width, out.height, out.binning_x, out.binning_y) == (320, 240, 0, 0)
    assert out.header == header and out.header is not header
    assert not is_distorted(out) and is_distorted(info)


def test_depth_camera_info_fills_a_zero_p_from_k() -> None:
    """A driver that fills only K must not get a zero P published (depth_image_proc
    divides by P's focal length)."""
    info = make_info(fx=500.0, fy=510.0)
    info.p = np.zeros(12)
    _, out = depth_camera_info(info, 640, 480, Header())
    assert list(out.p) == [500.0, 0.0, 319.5, 0.0, 0.0, 510.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("fx, fy", [(0.0, 500.0), (500.0, -1.0), (float("nan"), 500.0)])
def test_from_camera_info_bad_focal(fx: float, fy: float) -> None:
    with pytest.raises(ValueError) as err:
        Intrinsics.from_camera_info(make_info(fx=fx, fy=fy))
    assert f"fx={fx}" in str(err.value) and f"fy={fy}" in str(err.value)


def test_focal_length_range_is_a_179_to_half_degree_field_of_view() -> None:
    shortest, longest = focal_length_range(640, 480)
    assert shortest == pytest.approx(640 * np.tan(np.radians(0.5)) / 2)  # 2.79 px
    assert longest == pytest.approx(640 / (2 * np.tan(np.radians(0.25))))  # 73337 px
    assert focal_length_range(480, 640) == (shortest, longest)  # the larger side


@pytest.mark.parametrize(
    ("fx", "fy", "name"),
    [(1e30, 510.0, "fx=1e+30"), (1e-30, 510.0, "fx=1e-30"), (500.0, 1e6, "fy=1e+06")],
)
def test_from_camera_info_refuses_implausible_focal_lengths(fx, fy, name) -> None:
    """fx = 1e30 made metric depth of 1e27 m; fx = 1e-30 put every point at the camera."""
    with pytest.raises(ValueError, match=re.escape(f"focal length {name} px for its 640x480")):
        Intrinsics.from_camera_info(make_info(fx=fx, fy=fy))
    shortest, longest = focal_length_range(640, 480)
    for ok in (shortest, longest, 1.0 * shortest + 1e-9):
        assert Intrinsics.from_camera_info(make_info(fx=ok, fy=500.0)).fx == ok
    binned = make_info(fx=longest * 1.5)
    binned.binning_x = binned.binning_y = 2  # 320x240 image, fx 1.5 * longest / 2: too long
    with pytest.raises(ValueError, match="for its 320x240 image"):
        Intrinsics.from_camera_info(binned)


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


def f37_camera_info() -> CameraInfo:
    """A real plumb_bob calibration: the F37 1080p camera of Horizon's RDK X3 as its
    mipi_cam driver publishes it (raw K and D; P from camera_calibration)."""
    info = CameraInfo(width=1920, height=1080, distortion_model="plumb_bob")
    info.d = array.array("d", [0.169978, -0.697303, -0.002944, -0.004961, 0.0])
    info.k = np.array([1726.597634, 0.0, 904.979671, 0.0, 1737.359551, 529.123375, 0, 0, 1.0])
    info.r = np.eye(3).reshape(9)
    info.p = np.array(
        [1685.497559, 0.0, 881.6396, 0.0, 0.0, 1756.460205, 526.781147, 0.0, 0, 0, 1.0, 0]
    )
    return info


def image_geometry_points(info: CameraInfo, u: np.ndarray, v: np.ndarray, z: np.ndarray):
    """image_geometry's ``projectPixelTo3dRay`` on rectified pixels, scaled to depth z:
    ``x = (u - cx - Tx) / fx``, ``y = (v - cy - Ty) / fy`` from P."""
    p = np.asarray(info.p, dtype=np.float64).reshape(3, 4)
    x = (u - p[0, 2] - p[0, 3]) / p[0, 0]
    y = (v - p[1, 2] - p[1, 3]) / p[1, 1]
    return np.stack([x * z, y * z, z], axis=-1)


@pytest.mark.parametrize("out_wh", [(1920, 1080), (480, 270)])
def test_real_calibration_points_match_image_geometry(out_wh: tuple[int, int]) -> None:
    """Points of a tilted plane (1.5 to 6 m) from the F37's camera_info are within 1 mm of
    image_geometry's projection, at full size and at a quarter of it."""
    import torch

    from dpt_ros.models.geometry import backproject

    info = f37_camera_info()
    w, h = out_wh
    intr, _ = depth_camera_info(info, w, h, Header())
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    z = 1.5 + 4.5 * vv / (h - 1)
    got = backproject(torch.from_numpy(z).float(), intr.fx, intr.fy, intr.cx, intr.cy).numpy()
    # The same pixel centres in the full-resolution image (align_corners=False).
    u_full = (uu + 0.5) * 1920 / w - 0.5
    v_full = (vv + 0.5) * 1080 / h - 0.5
    want = image_geometry_points(info, u_full, v_full, z)
    assert np.abs(got - want).max() < 1e-3
    # K instead of P puts the image corner tens of centimetres off at these depths.
    k_x = (u_full[-1, -1] - 904.979671) / 1726.597634 * z[-1, -1]
    assert abs(k_x - want[-1, -1, 0]) > 0.1


def test_an_roi_outside_the_sensor_is_refused() -> None:
    info = make_info()
    info.roi = RegionOfInterest(x_offset=600, y_offset=0, width=320, height=240)
    with pytest.raises(ValueError, match=r"ROI 320x240\+600\+0 lies outside its 640x480"):
        Intrinsics.from_camera_info(info)


@pytest.mark.parametrize("index", [3, 7])
def test_a_non_finite_tx_or_ty_in_p_is_refused(index: int) -> None:
    info = make_info()
    info.p[index] = float("inf")
    with pytest.raises(ValueError, match="P holds NaN or infinity"):
        depth_camera_info(info, 320, 240, Header())
