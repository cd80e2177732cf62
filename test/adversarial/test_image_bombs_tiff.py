"""A TIFF tile bomb: a 64x64 image declared in one 16384x16368 RGBA Deflate tile, a
few megabytes on disk. The header's image size passes ``max_input_pixels``; decoding it
unpacked the whole tile (1 GB, seconds per frame) in predict, bag and the node. It is
refused before decoding, naming the tile (docs/failure_behaviour.md, "Images")."""

from __future__ import annotations

import pytest
from attack import DPT_ROS, attack
from helpers import NET, tiff_file, write_bag

#: The bomb: what OpenCV's TIFF decoder lets through (a tile under 1 GiB).
BOMB_TILE = (16384, 16368)
#: Refusing the bomb may cost no more than refusing a malformed PNG (importing torch,
#: about 1.1 GB here) plus this; decoding the bomb's tile costs 1 GB more.
OVER_BASELINE_MB = 250
#: A whole run with a small model (about 1.7 GB here, 1.1 GB of it torch's libraries);
#: unpacking the bomb's tile on top of it exceeds this.
RUN_PEAK_MB = 2500
SMALL_NET = ["--network-size", "64x64", "--random-weights", "--backend", "torch"]


def predict(path, out):
    return attack(
        [*DPT_ROS, "predict", "--model-type", "dpt_hybrid", *SMALL_NET]
        + ["--input", str(path), "--output", str(out)],
        timeout=120,
    )


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiff") / "bomb.tiff"
    path.write_bytes(tiff_file(64, 64, tile=BOMB_TILE, samples=4))
    return path


def test_predict_refuses_a_tiff_tile_bomb(bomb, tmp_path):
    malformed = tmp_path / "cut.png"
    malformed.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(8))
    baseline = predict(malformed, tmp_path / "out")
    assert baseline.rc == 2 and "'cut.png' (PNG header" in baseline.stderr, baseline.stderr
    done = predict(bomb, tmp_path / "out")
    assert done.rc == 2, done.stderr
    errors = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "'bomb.tiff' (TIFF tile of 16384x16368 pixels" in errors[0], errors[0]
    assert "max_input_pixels" in errors[0]
    assert done.peak_rss_mb < baseline.peak_rss_mb + OVER_BASELINE_MB, (
        done.peak_rss_mb,
        baseline.peak_rss_mb,
    )
    assert not list((tmp_path / "out").glob("*"))


def test_bag_skips_a_tiff_tile_bomb_frame(bomb, tmp_path):
    inp = tmp_path / "in"
    topic = write_bag(inp, compressed=True, broken_frame=1, broken_data=bomb.read_bytes())
    done = attack(
        [*DPT_ROS, "bag", str(inp), "-o", str(tmp_path / "out"), "--image-topic", topic, *NET],
        timeout=120,
    )
    assert done.rc == 0, done.stderr
    assert "1 skipped" in done.stdout, done.stdout
    assert "TIFF tile of 16384x16368 pixels" in done.stderr, done.stderr
    assert done.peak_rss_mb < RUN_PEAK_MB, done.peak_rss_mb


def test_a_strip_that_claims_more_rows_than_the_image_stays_small(tmp_path):
    """RowsPerStrip far over ImageLength (a 1 GB strip for a 64x64 image): libtiff reads
    no more of a strip than the image's rows, so this one was never a bomb; kept as a
    guard against a decoder that stops clamping."""
    path = tmp_path / "strip.tiff"
    path.write_bytes(tiff_file(64, 64, rows_per_strip=4_000_000, samples=4))
    done = predict(path, tmp_path / "out")
    assert done.rc == 0, done.stderr
    assert (tmp_path / "out" / "strip_depth.npy").is_file()
    assert done.peak_rss_mb < RUN_PEAK_MB, done.peak_rss_mb
