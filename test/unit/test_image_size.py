"""Input size limit (``max_input_pixels``): sizes read from headers, oversized images
refused before decoding by the codec, ``dpt-ros predict``, ``dpt-ros bag`` and the node.

The "bombs" here are headers that claim 20000x20000 with no pixel data behind them:
before the limit they reached OpenCV (and failed as corrupt data); a real bomb (a small
PNG of 20000x20000 zeros) is measured by ``scripts/check_image_bomb.py``."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest
from helpers import NET, run_bag, tiff_file, write_bag
from image_size_cases import RGB, png_bomb
from sensor_msgs.msg import CompressedImage, Image

from dpt_ros.cli.main import main
from dpt_ros.ros.image_codec import ImageDecodeError, compressed_to_rgb, image_to_rgb
from dpt_ros.ros.image_size import DEFAULT_MAX_INPUT_PIXELS, encoded_size, size_problem


def jpeg_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A real small JPEG whose frame header is patched to claim width x height."""
    data = bytearray(cv2.imencode(".jpg", RGB)[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tiff", ".webp"])
def test_sizes_from_headers(ext):
    data = cv2.imencode(ext, RGB)[1]
    name, size = encoded_size(data)
    assert size == (37, 23), name
    assert size_problem(data, 37 * 23) is None
    assert "37x23 image (851 pixels) is larger than max_input_pixels=850" in size_problem(data, 850)


def test_compressed_bombs_are_refused_before_decoding():
    for bomb in (png_bomb(), jpeg_bomb()):
        msg = CompressedImage(format="png", data=bomb)
        with pytest.raises(ImageDecodeError, match="20000x20000 image .* max_input_pixels"):
            compressed_to_rgb(msg)
    assert DEFAULT_MAX_INPUT_PIXELS == 4096 * 4096
    ok = CompressedImage(format="png", data=cv2.imencode(".png", RGB[:, :, ::-1])[1].tobytes())
    np.testing.assert_array_equal(compressed_to_rgb(ok, 37 * 23), RGB)
    np.testing.assert_array_equal(compressed_to_rgb(ok, 0), RGB)
    with pytest.raises(ImageDecodeError, match="corrupt or in a format whose size cannot be read"):
        compressed_to_rgb(CompressedImage(format="x", data=b"P6\n20000 20000\n255\n"))


def test_raw_image_over_the_limit():
    msg = Image(height=20000, width=20000, encoding="rgb8", step=60000, data=b"\x00" * 30)
    with pytest.raises(ImageDecodeError, match="20000x20000 image .* max_input_pixels"):
        image_to_rgb(msg)
    small = Image(height=23, width=37, encoding="rgb8", step=111, data=RGB.tobytes())
    with pytest.raises(ImageDecodeError, match="max_input_pixels=850"):
        image_to_rgb(small, 850)
    np.testing.assert_array_equal(image_to_rgb(small, 851), RGB)


def test_predict_refuses_a_bomb_and_names_it(tmp_path, capsys):
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    rc = main(
        ["predict", "--model-type", "dpt_hybrid", "--random-weights"]
        + ["--input", str(tmp_path / "bomb.png"), "--output", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "'bomb.png' (20000x20000 image" in err and "max_input_pixels" in err


def test_bag_skips_frames_over_the_limit(tmp_path, capsys):
    inp = tmp_path / "in"
    topic = write_bag(inp, compressed=True)
    out = tmp_path / "out"
    assert (
        run_bag(
            str(inp),
            "-o",
            str(out),
            "--image-topic",
            topic,
            *NET,
            "--max-input-pixels",
            str(48 * 64 - 1),
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "0 frame(s)" in captured.out and "4 skipped" in captured.out
    assert "skipped 4 undecodable frame(s)" in captured.err


def _tiff_with_size_tags(entries: list[tuple[int, int]]) -> bytes:
    """A little-endian TIFF whose first directory holds ``entries`` as (tag, LONG value),
    in that order: the header a reader sees, with no strips behind it."""
    ifd = struct.pack("<H", len(entries))
    for tag, value in entries:
        ifd += struct.pack("<HHII", tag, 4, 1, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def test_tiff_size_is_the_first_tag_as_libtiff_reads_it():
    """libtiff keeps the first of two equal ImageWidth tags; a reader that kept the last
    one let a 20000x20000 TIFF through as 64x64 (389 KB decoded to 2.3 GB)."""
    same = _tiff_with_size_tags([(256, 64), (257, 48), (256, 64)])
    assert encoded_size(same) == ("TIFF", (64, 48))
    bomb = _tiff_with_size_tags([(256, 20000), (257, 20000), (256, 64), (257, 64)])
    assert encoded_size(bomb) == ("TIFF", None)
    problem = size_problem(bomb, DEFAULT_MAX_INPUT_PIXELS)
    assert problem is not None and "TIFF header" in problem and "ambiguous" in problem


def test_tiff_with_a_cut_directory_or_odd_tag_type_is_refused():
    whole = _tiff_with_size_tags([(256, 64), (257, 48)])
    assert encoded_size(whole[:-10]) == ("TIFF", None)  # second entry cut short
    ascii_width = whole.replace(struct.pack("<HH", 256, 4), struct.pack("<HH", 256, 2), 1)
    assert encoded_size(ascii_width) == ("TIFF", None)


def test_a_tiff_tile_larger_than_its_image_is_refused_before_decoding():
    """A tiled TIFF unpacks whole tiles: one 256x256 tile over a 16x16 image unpacks
    65536 pixels, counted against the limit (the attack tier holds the 1 GB version)."""
    bomb = CompressedImage(format="tiff", data=tiff_file(16, 16, tile=(256, 256), samples=4))
    with pytest.raises(ImageDecodeError, match=r"TIFF tile of 256x256 pixels: .* 65536 pixels"):
        compressed_to_rgb(bomb, 65535)
    assert compressed_to_rgb(bomb, 65536).shape == (16, 16, 3)
    assert "TIFF tile" in size_problem(bomb.data, 1000)


def test_tiled_and_stripped_tiffs_within_the_limit_decode():
    padded = 48 * 32  # 37x23 in 16x16 tiles
    tiled = tiff_file(37, 23, tile=(16, 16))
    assert encoded_size(tiled) == ("TIFF", (37, 23))
    assert size_problem(tiled, padded) is None
    assert "1536 pixels" in size_problem(tiled, padded - 1)
    for data in (tiled, tiff_file(37, 23, rows_per_strip=5), tiff_file(37, 23)):
        msg = CompressedImage(format="tiff", data=data)
        np.testing.assert_array_equal(compressed_to_rgb(msg, padded), np.zeros((23, 37, 3)))
