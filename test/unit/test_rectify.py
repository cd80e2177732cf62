"""Rectification from camera_info (plumb_bob, rational_polynomial, equidistant): a bright
spot in the raw image lands where OpenCV's iterative undistortPoints puts it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from dpt_ros.ros.rectify import Rectifier, rectification_maps

W, H = 160, 120
K = [100.0, 0.0, 79.5, 0.0, 100.0, 59.5, 0.0, 0.0, 1.0]
P = [90.0, 0.0, 80.0, 0.0, 0.0, 92.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0]

MODELS = {
    "plumb_bob": [-0.30, 0.09, 0.001, -0.001, 0.0],
    "rational_polynomial": [-0.30, 0.09, 0.001, -0.001, 0.0, 0.02, 0.0, 0.0],
    "equidistant": [0.05, -0.01, 0.002, 0.0],
}


def camera(model: str) -> CameraInfo:
    info = CameraInfo(width=W, height=H, distortion_model=model)
    info.d = MODELS[model]
    info.k = K
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = P
    return info


def expected(model: str, u: float, v: float) -> np.ndarray:
    """Where OpenCV's iterative point undistortion puts raw pixel (u, v) under P."""
    k = np.array(K).reshape(3, 3)
    d = np.array(MODELS[model])
    p = np.array(P).reshape(3, 4)[:, :3]
    pts = np.array([[[u, v]]], dtype=np.float64)
    if model == "equidistant":
        out = cv2.fisheye.undistortPoints(pts, k, d, R=np.eye(3), P=p)
    else:
        out = cv2.undistortPoints(pts, k, d, R=np.eye(3), P=p)
    return out.reshape(2)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("spot", [(30.0, 25.0), (130.0, 95.0), (80.0, 60.0)])
def test_a_raw_spot_lands_at_its_rectified_position(model: str, spot: tuple[float, float]):
    u, v = spot
    raw = np.zeros((H, W, 3), np.uint8)
    raw[int(v) - 2 : int(v) + 3, int(u) - 2 : int(u) + 3] = 255
    rect = Rectifier()(raw, camera(model))[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0:H, 0:W]
    centroid = np.array([(rect * xs).sum(), (rect * ys).sum()]) / rect.sum()
    np.testing.assert_allclose(centroid, expected(model, u, v), atol=0.5)


def test_unknown_model_binning_and_size_are_refused_by_name() -> None:
    info = camera("plumb_bob")
    info.distortion_model = "kannala"
    with pytest.raises(ValueError, match="plumb_bob, rational_polynomial, equidistant"):
        rectification_maps(info)
    info = camera("plumb_bob")
    info.binning_x = 2
    with pytest.raises(ValueError, match="binning or ROI"):
        rectification_maps(info)
    with pytest.raises(ValueError, match="64x48 image with a camera_info of 160x120"):
        Rectifier()(np.zeros((48, 64, 3), np.uint8), camera("plumb_bob"))


def test_pipeline_runs_on_the_rectified_image() -> None:
    """With rectify the models and the cloud's colours see the rectified image; a
    distorted camera_info without it gets no correction."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from dpt_ros.models import Predictor
    from dpt_ros.pipeline.frames import FramePipeline
    from dpt_ros.pipeline.options import PipelineOptions
    from dpt_ros.ros.pointcloud import pointcloud2_to_arrays, unpack_rgb

    hybrid = Predictor(
        "dpt_hybrid", device="cpu", random_weights=True, progress=False, network_size=(96, 64)
    )
    info = camera("plumb_bob")
    raw = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    header = Header(stamp=Time(sec=1), frame_id="cam")
    options = PipelineOptions(
        rectify=True, relative_depth_scale=1.0, relative_depth_shift=0.5, cloud_edge_filter=False
    )
    out = FramePipeline(hybrid, None, options).process(raw, header, info)
    assert not out.warnings
    colours = unpack_rgb(pointcloud2_to_arrays(out.messages["points"])["rgb"])
    np.testing.assert_array_equal(colours, Rectifier()(raw, info))


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ([float("nan"), 0.09, 0.001, -0.001, 0.0], "NaN or infinity"),
        ([-0.30, float("inf"), 0.001, -0.001, 0.0], "NaN or infinity"),
        ([250.0, -40.0, 0.5, 0.5, 900.0], r"maps only \d+% of the rectified image"),
    ],
)
def test_nan_or_absurd_distortion_is_refused(d, message) -> None:
    """It blanked the frame silently; depth and points of a black image were published."""
    info = camera("plumb_bob")
    info.d = d
    with pytest.raises(ValueError, match=message):
        rectification_maps(info)


def test_the_pipeline_refuses_a_camera_info_it_cannot_rectify() -> None:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from dpt_ros.models import Predictor
    from dpt_ros.pipeline.frames import FramePipeline
    from dpt_ros.pipeline.options import PipelineOptions

    hybrid = Predictor(
        "dpt_hybrid", device="cpu", random_weights=True, progress=False, network_size=(96, 64)
    )
    info = camera("plumb_bob")
    info.d = [250.0, -40.0, 0.5, 0.5, 900.0]
    raw = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    options = PipelineOptions(
        rectify=True, relative_depth_scale=1.0, relative_depth_shift=0.5, cloud_edge_filter=False
    )
    out = FramePipeline(hybrid, None, options).process(raw, Header(stamp=Time(sec=1)), info)
    assert any(w.startswith("camera_info rejected: cannot rectify") for w in out.warnings)
    assert "points" not in out.messages and "depth/camera_info" not in out.messages
    assert "depth/relative" in out.messages  # the frame itself is still processed
