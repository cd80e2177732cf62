"""Tests for dpt_ros.viz.colormap and dpt_ros.viz.ade20k."""

from __future__ import annotations

import numpy as np
import pytest

from dpt_ros.viz import ade20k
from dpt_ros.viz.colormap import TURBO_LUT, StableRange, colorize, overlay_labels, turbo_lut

# ------------------------------------------------------------------ LUT


def test_turbo_lut_shape_and_shape_of_map() -> None:
    assert TURBO_LUT.shape == (256, 3) and TURBO_LUT.dtype == np.uint8
    assert not TURBO_LUT.flags.writeable
    # Turbo: dark at both ends, blue-ish low, green in the middle, red high.
    low, mid, high = TURBO_LUT[40], TURBO_LUT[128], TURBO_LUT[230]
    assert low[2] > low[0] and low[2] > 150  # blue
    assert mid[1] > 200 and mid[1] > mid[2]  # green dominates
    assert high[0] > 180 and high[0] > high[2]  # red
    assert TURBO_LUT[0].max() < 60 and TURBO_LUT[255].sum() < 250  # dark ends
    assert turbo_lut(16).shape == (16, 3)


# -------------------------------------------------------------- colorize


def test_colorize_endpoints_and_invalid() -> None:
    values = np.array([[1.0, 3.0, 2.0], [np.nan, np.inf, -np.inf], [0.0, 5.0, 1.0]], np.float32)
    out = colorize(values, vmin=1.0, vmax=3.0, invalid_color=(1, 2, 3))
    assert out.shape == (3, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], TURBO_LUT[0])  # vmin
    np.testing.assert_array_equal(out[0, 1], TURBO_LUT[255])  # vmax
    np.testing.assert_array_equal(out[0, 2], TURBO_LUT[128])  # midpoint 127.5 -> 128
    for c in range(3):
        np.testing.assert_array_equal(out[1, c], (1, 2, 3))
    np.testing.assert_array_equal(out[2, 0], TURBO_LUT[0])  # below range clamps
    np.testing.assert_array_equal(out[2, 1], TURBO_LUT[255])  # above range clamps


def test_colorize_default_invalid_black_and_reversed() -> None:
    values = np.array([[np.nan, 0.0, 10.0]])
    out = colorize(values, 0.0, 10.0)
    np.testing.assert_array_equal(out[0, 0], (0, 0, 0))
    rev = colorize(values, 10.0, 0.0)
    np.testing.assert_array_equal(rev[0, 1], TURBO_LUT[255])
    np.testing.assert_array_equal(rev[0, 2], TURBO_LUT[0])


def test_colorize_degenerate_range_and_errors() -> None:
    out = colorize(np.full((2, 2), 4.0), 4.0, 4.0)
    np.testing.assert_array_equal(out, np.broadcast_to(TURBO_LUT[0], (2, 2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        colorize(np.zeros(3), 0.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        colorize(np.zeros((2, 2)), 0.0, float("nan"))
    with pytest.raises(ValueError, match="invalid_color"):
        colorize(np.zeros((2, 2)), 0.0, 1.0, invalid_color=(0, 0, 300))


# ----------------------------------------------------------- StableRange


def frame(lo: float, hi: float, n: int = 101) -> np.ndarray:
    """Frame whose 2nd/98th percentiles are lo + 0.02*(hi-lo), lo + 0.98*(hi-lo)."""
    return np.linspace(lo, hi, n * n, dtype=np.float64).reshape(n, n)


def test_stable_range_first_frame_initialises() -> None:
    sr = StableRange()
    assert sr.range is None and not sr.initialized
    vmin, vmax = sr.update(frame(0.0, 10.0))
    assert vmin == pytest.approx(0.2, abs=1e-6) and vmax == pytest.approx(9.8, abs=1e-6)
    assert sr.range == (vmin, vmax)


def test_stable_range_outlier_frame_moves_by_alpha() -> None:
    sr = StableRange(alpha=0.1)
    for _ in range(5):
        vmin, vmax = sr.update(frame(0.0, 10.0))
    # sudden outlier frame with percentiles (20, 980)
    vmin2, vmax2 = sr.update(frame(0.0, 1000.0))
    assert vmin2 - vmin == pytest.approx(0.1 * (20.0 - vmin), rel=1e-6)
    assert vmax2 - vmax == pytest.approx(0.1 * (980.0 - vmax), rel=1e-6)
    # and it relaxes back towards the normal range afterwards
    vmin3, vmax3 = sr.update(frame(0.0, 10.0))
    assert vmax3 < vmax2 and vmax3 == pytest.approx(0.9 * vmax2 + 0.1 * 9.8)


def test_stable_range_ignores_non_finite_and_subsamples() -> None:
    sr = StableRange(max_samples=1000)
    values = frame(0.0, 10.0, n=300).astype(np.float32)
    values[::7] = np.nan
    values[1::11] = np.inf
    vmin, vmax = sr.update(values)
    assert 0.0 <= vmin < 0.5 and 9.5 < vmax <= 10.0
    # an all-invalid frame leaves the range alone
    assert sr.update(np.full((4, 4), np.nan)) == (vmin, vmax)
    assert StableRange().update(np.full((4, 4), np.nan)) == (0.0, 1.0)


def test_stable_range_guards_flat_frames() -> None:
    sr = StableRange(min_span=0.01)
    vmin, vmax = sr.update(np.full((10, 10), 3.0))
    assert vmax > vmin and vmax - vmin == pytest.approx(0.01)
    assert (vmin + vmax) / 2 == pytest.approx(3.0)


def test_stable_range_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alpha"):
        StableRange(alpha=0.0)
    with pytest.raises(ValueError, match="percentiles"):
        StableRange(low_percentile=90, high_percentile=10)


# -------------------------------------------------------- overlay_labels


def test_overlay_labels() -> None:
    rgb = np.full((2, 2, 3), 100, dtype=np.uint8)
    rgb[1, 1] = (10, 20, 30)
    labels = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    palette = np.array([(0, 0, 0), (200, 0, 52), (254, 254, 254)], dtype=np.uint8)
    out = overlay_labels(rgb, labels, palette, alpha=0.5)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], (100, 100, 100))  # unlabelled untouched
    np.testing.assert_array_equal(out[0, 1], (150, 50, 76))
    np.testing.assert_array_equal(out[1, 0], (177, 177, 177))
    np.testing.assert_array_equal(out[1, 1], (132, 137, 142))
    quarter = overlay_labels(rgb, labels, palette, alpha=0.25)
    np.testing.assert_array_equal(quarter[0, 1], (125, 75, 88))  # 75 + 0.25 * (200, 0, 52)
    assert out is not rgb and rgb[0, 1, 0] == 100
    full = overlay_labels(rgb, labels, palette, alpha=1.0)
    np.testing.assert_array_equal(full[0, 1], (200, 0, 52))
    np.testing.assert_array_equal(full[0, 0], (100, 100, 100))


def test_overlay_labels_with_ade20k_palette_and_errors() -> None:
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    labels = np.array([[0, 1, 150], [7, 49, 3]], dtype=np.uint8)
    out = overlay_labels(rgb, labels, ade20k.PALETTE, alpha=1.0)
    np.testing.assert_array_equal(out[0, 1], (120, 120, 120))  # wall
    np.testing.assert_array_equal(out[0, 2], ade20k.PALETTE[150])
    with pytest.raises(ValueError, match="151 entries"):
        overlay_labels(rgb, np.full((2, 3), 151, np.uint8), ade20k.PALETTE)
    with pytest.raises(ValueError, match="shape"):
        overlay_labels(rgb, np.zeros((3, 2), np.uint8), ade20k.PALETTE)
    with pytest.raises(ValueError, match="alpha"):
        overlay_labels(rgb, labels, ade20k.PALETTE, alpha=1.5)


# ------------------------------------------------------------------ ade20k


def test_ade20k_names() -> None:
    assert ade20k.NUM_CLASSES == 150
    assert len(ade20k.CLASS_NAMES) == 150 and len(set(ade20k.CLASS_NAMES)) == 150
    assert ade20k.CLASS_NAMES[0] == "wall" and ade20k.CLASS_NAMES[-1] == "flag"
    assert all(name == name.strip() and name for name in ade20k.CLASS_NAMES)
    assert ade20k.label_name(0) == "unlabelled"
    assert ade20k.label_name(1) == "wall"
    assert ade20k.label_name(13) == "person"
    assert ade20k.label_name(np.uint8(150)) == "flag"
    with pytest.raises(ValueError, match="1..150"):
        ade20k.label_name(151)
    with pytest.raises(TypeError):
        ade20k.label_name(1.0)  # type: ignore[arg-type]


def test_ade20k_palette() -> None:
    pal = ade20k.PALETTE
    assert pal.shape == (151, 3) and pal.dtype == np.uint8
    np.testing.assert_array_equal(pal[0], (0, 0, 0))
    np.testing.assert_array_equal(pal[1], (120, 120, 120))  # wall
    np.testing.assert_array_equal(pal[150], (92, 0, 255))  # flag
    # Unlabelled black is not used by any class.
    assert not np.any(np.all(pal[1:] == 0, axis=1))
    # Colours are unique except the one duplicate of the standard palette:
    # road (7) and skyscraper (49) are both (140, 140, 140).
    colours = [tuple(c) for c in pal.tolist()]
    dupes = {c for c in colours if colours.count(c) > 1}
    assert dupes == {(140, 140, 140)}
    assert [i for i, c in enumerate(colours) if c == (140, 140, 140)] == [7, 49]
    assert len(set(colours)) == 150
