"""The cloud's default density (``cloud.stride: 0``, auto) and ``points_confident``: an
organised cloud with NaN points either way (REP-118 and PointCloud2 rules), at about the
density of ika's Depth Anything 3 node, pixel-aligned with the labels while segmentation
runs, and a confident copy for costmap layers that read no confidence field."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from reference_geometry import backproject
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.pipeline.frames import ON_DEMAND_TOPICS, FramePipeline
from dpt_ros.pipeline.options import AUTO_CLOUD_COLUMNS, PipelineOptions
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.confidence import confident_points
from dpt_ros.ros.image_codec import image_msg_to_array
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights")

#: ika's cloud in the official Nav2 tutorial: its 504 x 280 network output, every 2nd
#: point (point_cloud_downsample_factor 2): 252 x 140.
IKA_POINTS = 252 * 140


def test_the_auto_stride_rule():
    auto = PipelineOptions()
    assert auto.cloud_stride == 0 and AUTO_CLOUD_COLUMNS == 256
    for width, stride in ((64, 1), (256, 1), (257, 2), (504, 2), (640, 3), (1280, 5), (1920, 8)):
        assert auto.cloud_stride_for(width, segmentation=False) == stride, width
        assert -(-width // stride) <= AUTO_CLOUD_COLUMNS  # at most 256 points across
    assert auto.cloud_stride_for(1920, segmentation=True) == 1  # aligned with the labels
    given = PipelineOptions(cloud_stride=2)
    assert given.cloud_stride_for(1920, True) == given.cloud_stride_for(64, False) == 2
    assert (
        PipelineOptions(cloud_stride=-1).problems() and PipelineOptions(cloud_stride=65).problems()
    )
    assert not PipelineOptions(cloud_stride=0).problems()


@pytest.fixture(scope="module")
def hybrid():
    return Predictor(
        "dpt_hybrid",
        device="cpu",
        backend="torch",
        random_weights=True,
        progress=False,
        network_size=(96, 64),
    )


def vga_frame() -> np.ndarray:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))


def vga_info() -> CameraInfo:
    return Intrinsics(
        fx=500.0, fy=500.0, cx=319.5, cy=239.5, width=640, height=480
    ).to_camera_info()


HEADER = Header(stamp=Time(sec=5, nanosec=1), frame_id="camera_optical_frame")
METRES = dict(relative_depth_scale=2.0, relative_depth_shift=0.2)


def test_the_default_cloud_at_640x480_has_about_ikas_density(hybrid):
    """Before: every pixel, 307,200 points (6.1 MB with rgb and 4 more bytes a point)."""
    pipeline = FramePipeline(hybrid, None, PipelineOptions(**METRES))
    out = pipeline.process(vga_frame(), HEADER, vga_info())
    cloud = out.messages["points"]
    assert (cloud.height, cloud.width) == (160, 214)  # every 3rd pixel, organised
    assert abs(cloud.height * cloud.width - IKA_POINTS) / IKA_POINTS < 0.05
    assert not cloud.is_dense and cloud.row_step == cloud.point_step * cloud.width
    assert len(cloud.data) == cloud.row_step * cloud.height
    # The points are the back-projection of the published depth at pixels (3j, 3i).
    depth = image_msg_to_array(out.messages["depth/image"])
    want = backproject(depth, Intrinsics.from_camera_info(vga_info()), stride=3)
    fields = pointcloud2_to_arrays(cloud)
    got = np.stack([fields["x"], fields["y"], fields["z"]], axis=-1)
    finite = np.isfinite(got).all(axis=-1)
    assert finite.mean() > 0.5  # the flying-pixel filter leaves NaN points, not holes
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-6)
    assert np.isnan(got[~finite]).all()
    assert pipeline.cloud_stride(640) == 3


def test_with_segmentation_the_auto_cloud_keeps_every_labelled_pixel(hybrid):
    """Nav2's semantic layer drops a frame whose cloud is smaller than its labels."""
    segmentation = Predictor(
        "dpt_hybrid_ade20k",
        device="cpu",
        backend="torch",
        random_weights=True,
        progress=False,
        network_size=(96, 64),
    )
    pipeline = FramePipeline(hybrid, segmentation, PipelineOptions(**METRES))
    out = pipeline.process(vga_frame(), HEADER, vga_info())
    labels = out.messages["segmentation/labels"]
    cloud = out.messages["points"]
    assert (cloud.height, cloud.width) == (labels.height, labels.width) == (480, 640)
    # A stride given explicitly is kept (the node warns about it, see test_semantic).
    pipeline.options = PipelineOptions(cloud_stride=2, **METRES)
    cloud = pipeline.process(vga_frame(), HEADER, vga_info()).messages["points"]
    assert (cloud.height, cloud.width) == (240, 320)


def test_points_confident_is_built_on_demand_only(hybrid):
    """A model without a confidence output: points_confident is points itself (every
    point marks, as before); it is built only when asked for, and alone if points is
    not wanted."""
    assert "points_confident" in ON_DEMAND_TOPICS
    pipeline = FramePipeline(hybrid, None, PipelineOptions(cloud_stride=4, **METRES))
    assert {"points", "points_confident"} <= set(pipeline.topics())
    rgb, info = vga_frame(), vga_info()
    plain = pipeline.process(rgb, HEADER, info).messages
    assert "points" in plain and "points_confident" not in plain
    both = pipeline.process_batch([rgb], [HEADER], [info], on_demand={"points_confident"})
    assert both[0].messages["points_confident"] is both[0].messages["points"]
    alone = pipeline.process_batch(
        [rgb], [HEADER], [info], on_demand={"points_confident"}, skip={"points"}
    )[0].messages
    assert "points" not in alone
    np.testing.assert_array_equal(
        np.asarray(alone["points_confident"].data), np.asarray(both[0].messages["points"].data)
    )
    neither = pipeline.process_batch([rgb], [HEADER], [info], skip={"points"})[0]
    assert "points" not in neither.messages and "xyz" not in neither.arrays


def test_confident_points_leaves_nan_where_unsure():
    xyz = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1.0
    xyz[0, 0] = np.nan  # already no point
    confidence = np.array([[3.0, 1.2, 2.0], [np.nan, 5.0, 1.99]], np.float32)
    got = confident_points(xyz, confidence, 2.0)
    keep = np.array([[True, False, True], [False, True, False]])
    assert got is not xyz and got.shape == xyz.shape
    np.testing.assert_array_equal(got[keep & ~np.isnan(xyz).any(-1)], xyz[keep][1:])
    assert np.isnan(got[~keep]).all() and np.isnan(got[0, 0]).all()
    assert not np.isnan(xyz[0, 1]).any()  # the input is not changed
    assert confident_points(xyz, None, 2.0) is xyz
    assert confident_points(xyz, confidence, 0.0) is xyz
    with pytest.raises(ValueError, match=r"confidence must be \(2, 3\)"):
        confident_points(xyz, confidence[:, :2], 2.0)
