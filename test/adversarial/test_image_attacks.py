"""Image attacks on ``dpt-ros predict`` and ``dpt-ros bag``, as a hostile user makes
them: decompression bombs (a PNG of 20000x20000 pixels in 1 MB), a TIFF whose size tags
disagree, and frames too thin or too elongated for the network, for every family.

docs/failure_behaviour.md is the contract: each is refused from its header
or before inference, named in one error line (predict, exit 2) or skipped and counted
(bag), the good inputs beside it are still processed, and memory stays bounded (the
program's own peak, measured from outside)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from attack import DPT_ROS, attack

#: A predict or bag run on a tiny network with random weights peaks at about 0.5-1.3 GB
#: (torch, the model); decoding the bomb alone would add 1.2 GB (2.3 GB measured).
PEAK_MB = 1800
#: Generous: catches a hang or a decoded bomb, not a slow machine.
WALL_S = 300


def _png_bomb(path: Path, size: int = 20000) -> Path:
    """A valid PNG of ``size`` x ``size`` black RGB pixels, about 1 MB, written row by
    row (little memory to make)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    zipper = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * size)
    idat = b"".join(zipper.compress(row) for _ in range(size)) + zipper.flush()
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def _tiff_with_two_widths(path: Path) -> Path:
    """A 64x48 uncompressed RGB TIFF whose directory gives ImageWidth twice, 64 and
    20000: which one a decoder takes is not a size check's to guess."""
    width, height = 64, 48
    pixels = np.zeros((height, width, 3), np.uint8).tobytes()
    entries = [
        (256, 4, 1, width),
        (256, 4, 1, 20000),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (262, 3, 1, 2),  # RGB
        (273, 4, 1, 0),  # StripOffsets: patched below
        (277, 3, 1, 3),
        (278, 4, 1, height),
        (279, 4, 1, len(pixels)),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + pixels)
    return path


def _good_image(path: Path) -> Path:
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(path), rgb)
    return path


def _predict(model: str, network: str, inputs: Path, out: Path, *extra: str):
    return attack(
        [
            *DPT_ROS,
            "predict",
            "--model-type",
            model,
            "--random-weights",
            "--backend",
            "torch",
            "--network-size",
            network,
            "--input",
            str(inputs),
            "--output",
            str(out),
            *extra,
        ],
        timeout=WALL_S,
    )


def _only_error(done, *fragments: str) -> str:
    errors = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def test_png_bomb_is_refused_from_its_header_and_the_good_image_kept(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    bomb = _png_bomb(inputs / "bomb.png")
    assert bomb.stat().st_size < 2_000_000
    _good_image(inputs / "good.png")
    done = _predict("dpt_hybrid", "64x64", inputs, tmp_path / "out")
    assert done.rc == 2, done.stderr
    _only_error(done, "bomb.png", "20000x20000")
    assert (tmp_path / "out" / "good_depth.npy").is_file()
    assert not list((tmp_path / "out").glob("bomb*"))
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb


def test_tiff_with_two_sizes_is_refused(tmp_path):
    tiff = _tiff_with_two_widths(tmp_path / "two_widths.tif")
    done = _predict("dpt_hybrid", "64x64", tiff, tmp_path / "out")
    assert done.rc == 2, done.stderr
    _only_error(done, "two_widths.tif")
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb


#: (model type, network size): every family, on a small network so a run is quick.
FAMILIES = {
    "dpt": ("dpt_hybrid", "64x64"),
    "dav2": ("depth_anything_v2_vits", "70x70"),
    "da3": ("depth_anything_3_small", "70x70"),
}
#: What each family's resize makes of a thin or tiny image, and so the outcome: DPT
#: scales as little as possible ("minimal": a 1x10 image is a 32x64 input), Depth
#: Anything 3 brings the longest side to the network size (a 1x10 image is 14x70, a
#: 2x2000 one would be 70:1); Depth Anything V2 brings the shortest side up to it, so a
#: 1x10 image would be a 70x700 input, 10:1.
THIN = {
    ("dpt", "1x10"): "processed",
    ("dpt", "2x2000"): "processed",
    ("dpt", "1x1"): "processed",
    ("dav2", "1x10"): "10.0:1",
    ("dav2", "2x2000"): "1000.0:1",
    ("dav2", "1x1"): "processed",
    ("da3", "1x10"): "processed",
    ("da3", "2x2000"): "70.0:1",
    ("da3", "1x1"): "processed",
}


@pytest.mark.parametrize("family,shape", sorted(THIN), ids=[f"{f}-{s}" for f, s in sorted(THIN)])
def test_thin_and_tiny_frames_are_run_or_refused_before_inference(tmp_path, family, shape):
    model, network = FAMILIES[family]
    h, w = (int(v) for v in shape.split("x"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    cv2.imwrite(str(inputs / "thin.png"), np.full((h, w, 3), 128, np.uint8))
    _good_image(inputs / "good.png")
    done = _predict(model, network, inputs, tmp_path / "out")
    want = THIN[family, shape]
    if want == "processed":
        assert done.rc == 0, done.stderr
        depth = np.load(tmp_path / "out" / "thin_depth.npy")
        assert depth.shape == (h, w) and np.isfinite(depth).all()
    else:
        assert done.rc == 2, done.stderr
        _only_error(done, "thin.png", model, want, "more elongated than 8:1")
    assert (tmp_path / "out" / "good_depth.npy").is_file()
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb


def _bag_with_frames(path: Path, frames: list[bytes]) -> str:
    """A bag of CompressedImage frames (PNG bytes as given), 10 Hz. Returns the topic."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CompressedImage

    topic = "/cam/image_raw/compressed"
    with Writer(path, version=8) as writer:
        conn = writer.add_connection(
            topic, "sensor_msgs/msg/CompressedImage", typestore=get_typestore(Stores.ROS2_HUMBLE)
        )
        for i, data in enumerate(frames):
            msg = CompressedImage(format="png", data=data)
            msg.header.frame_id = "cam_optical"
            msg.header.stamp.sec = 100 + i
            writer.write(conn, (100 + i) * 10**9, serialize_message(msg))
    return topic


def test_bag_skips_a_bomb_frame_and_keeps_the_rest(tmp_path):
    good = _good_image(tmp_path / "good.png").read_bytes()
    bomb = _png_bomb(tmp_path / "bomb.png").read_bytes()
    thin = cv2.imencode(".png", np.zeros((1, 10, 3), np.uint8))[1].tobytes()
    topic = _bag_with_frames(tmp_path / "in", [good, bomb, good, thin, good])
    done = attack(
        [
            *DPT_ROS,
            "bag",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--image-topic",
            topic,
            "--random-weights",
            "--backend",
            "torch",
            "--network-size",
            "64x64",
            "-q",
        ],
        timeout=WALL_S,
    )
    assert done.rc == 0, done.stderr
    assert "Traceback" not in done.stderr
    from rosbags.rosbag2 import Reader

    with Reader(tmp_path / "out") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts[topic] == 5  # every input message copied
    # the bomb skipped; the 1x10 frame is a 32x64 network input for DPT: processed
    assert counts["/cam/depth/relative"] == 4, counts
    assert f"skipped 1 undecodable frame(s) of {topic}" in done.stderr, done.stderr
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
