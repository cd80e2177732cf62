"""Depth Anything 3 windows aligned to given cameras (``infer_window(...,
align_to_input=True)``, the reference API's ``align_to_input_ext_scale``): the scale
rule of :mod:`dpt_ros.models.camera_alignment` on exact data, and on a small
random-weight network the property the node relies on: the depth follows the unit of
the given cameras. The numbers against the reference are in
``test/fidelity/test_da3_window_goldens.py``."""

from __future__ import annotations

import numpy as np
import pytest

from dpt_ros.models import Predictor
from dpt_ros.models.camera_alignment import camera_centres, scale_to_given

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:.*RANDOM weights")]


def _rotation(angle: float, axis: int) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i] = r[j, j] = c
    r[i, j], r[j, i] = -s, s
    return r


def _cameras(centres: np.ndarray, yaw_step: float = 0.05) -> np.ndarray:
    """(N, 4, 4) float64 camera-from-world with these centres, turning about y."""
    cfw = np.tile(np.eye(4), (len(centres), 1, 1))
    for i, centre in enumerate(centres):
        r = _rotation(yaw_step * i, 1)
        cfw[i, :3, :3] = r
        cfw[i, :3, 3] = -r @ centre
    return cfw


def _moved(cfw: np.ndarray, scale: float, rotation: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The same cameras in a world where x -> scale * rotation @ x + shift."""
    out = cfw.copy()
    out[:, :3, :3] = cfw[:, :3, :3] @ rotation.T
    centres = scale * camera_centres(cfw) @ rotation.T + shift
    out[:, :3, 3] = -np.einsum("nij,nj->ni", out[:, :3, :3], centres)
    return out


GIVEN = _cameras(np.array([[1.0, 2.0, 3.0], [1.3, 2.02, 3.05], [1.6, 2.0, 3.2]]))


def test_scale_is_predicted_units_per_given_unit():
    predicted = _moved(GIVEN, 2.5, _rotation(0.7, 2) @ _rotation(0.3, 0), np.array([4, -1, 2]))
    assert scale_to_given(predicted[:, :3], GIVEN) == pytest.approx(2.5, rel=1e-12)
    assert scale_to_given(GIVEN, predicted) == pytest.approx(1 / 2.5, rel=1e-12)


def test_cameras_on_one_line_still_give_the_scale():
    """Two views (or a straight path): the reference's evo refuses the fit (rank-1
    covariance), although the scale, all that the outputs use, is defined."""
    line = _cameras(np.array([[0.0, 0, 0], [0.3, 0, 0], [0.9, 0, 0]]))
    predicted = _moved(line, 0.4, _rotation(1.0, 1), np.array([0.0, 1, 0]))
    assert scale_to_given(predicted, line) == pytest.approx(0.4, rel=1e-12)
    assert scale_to_given(predicted[:2], line[:2]) == pytest.approx(0.4, rel=1e-12)


def _path(views: int) -> np.ndarray:
    """A wavy path of ``views`` cameras, 0.3 apart along x."""
    i = np.arange(views, dtype=np.float64)
    return _cameras(np.stack([0.3 * i, 0.05 * np.sin(i), 0.02 * i * i], axis=1))


def test_ten_views_and_more_fit_by_ransac():
    """From 10 views the reference fits by RANSAC: exact data keep the exact scale, and
    two predicted cameras far off do not pull it, where the plain fit follows them."""
    given = _path(12)
    predicted = _moved(given, 3.0, _rotation(0.5, 0), np.array([1.0, 2, 3]))
    assert scale_to_given(predicted, given) == pytest.approx(3.0, rel=1e-12)
    off = predicted.copy()
    off[[4, 9], :3, 3] += np.array([[5.0, -4, 2], [-6.0, 3, 7]])
    assert scale_to_given(off, given) == pytest.approx(3.0, rel=1e-9)
    assert scale_to_given(off[:9], given[:9]) != pytest.approx(3.0, rel=1e-2)


def test_scale_refuses_what_gives_none():
    still = _cameras(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one centre"):
        scale_to_given(GIVEN, still)
    with pytest.raises(ValueError, match="2 views or more"):
        scale_to_given(GIVEN[:1], GIVEN[:1])
    with pytest.raises(ValueError, match="2 predicted cameras for 3"):
        scale_to_given(GIVEN[:2], GIVEN)
    nan = GIVEN.copy()
    nan[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match="not all finite"):
        scale_to_given(GIVEN, nan)


# --------------------------------------------------------------------------- predictor


@pytest.fixture(scope="module")
def small() -> Predictor:
    return Predictor(
        "depth_anything_3_small",
        device="cpu",
        random_weights=True,
        progress=False,
        backend="torch",
        network_size=(56, 56),
    )


VIEWS = [np.random.default_rng(i).integers(0, 256, (60, 80, 3), dtype=np.uint8) for i in range(3)]
#: Intrinsics of the 60x80 views.
K = np.tile(np.array([[70.0, 0, 40], [0, 68, 30], [0, 0, 1]], np.float32), (3, 1, 1))


def test_depth_and_cameras_follow_the_unit_of_the_given_cameras(small):
    metres = small.infer_window(VIEWS, extrinsics=GIVEN, intrinsics=K, align_to_input=True)
    doubled = GIVEN.copy()
    doubled[:, :3, 3] *= 2
    halves = small.infer_window(VIEWS, extrinsics=doubled, intrinsics=K, align_to_input=True)
    np.testing.assert_allclose(halves.depth, 2 * metres.depth, rtol=1e-5)
    np.testing.assert_allclose(halves.confidence, metres.confidence, rtol=1e-5)
    assert halves.cameras.scale == pytest.approx(metres.cameras.scale / 2, rel=1e-5)
    cfw = halves.cameras.camera_from_world
    np.testing.assert_allclose(cfw[..., 3], 2 * metres.cameras.camera_from_world[..., 3], 1e-5)
    np.testing.assert_allclose(cfw[..., :3], metres.cameras.camera_from_world[..., :3], 1e-6)


def test_aligned_window_is_the_conditioned_one_in_the_given_world(small):
    raw = small.infer_window(VIEWS, extrinsics=GIVEN, intrinsics=K)
    aligned = small.infer_window(
        VIEWS, extrinsics=GIVEN[:, :3], intrinsics=K, output_hw=(60, 80), align_to_input=True
    )
    assert raw.cameras.scale is None
    scale = aligned.cameras.scale
    assert scale == pytest.approx(scale_to_given(raw.cameras.camera_from_world, GIVEN), 1e-6)
    resized = small.infer_window(VIEWS, extrinsics=GIVEN, intrinsics=K, output_hw=(60, 80))
    np.testing.assert_allclose(aligned.depth, resized.depth / scale, rtol=1e-6)
    np.testing.assert_array_equal(aligned.confidence, resized.confidence)
    assert aligned.cameras.camera_from_world.dtype == np.float32
    np.testing.assert_allclose(aligned.cameras.camera_from_world, GIVEN[:, :3], rtol=1e-6)
    np.testing.assert_allclose(aligned.cameras.intrinsics, K, rtol=1e-6)  # back at 60x80


def test_align_to_input_needs_both_cameras_and_motion(small):
    with pytest.raises(ValueError, match="align_to_input needs the known cameras"):
        small.infer_window(VIEWS, align_to_input=True)
    with pytest.raises(ValueError, match="align_to_input needs the known cameras"):
        small.infer_window(VIEWS, extrinsics=GIVEN, align_to_input=True)
    still = _cameras(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one centre"):
        small.infer_window(VIEWS, extrinsics=still, intrinsics=K, align_to_input=True)
