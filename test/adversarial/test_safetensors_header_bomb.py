"""A safetensors file whose header is tens of megabytes of empty tensors: parsing it
took 89 s and 1.2 GB before the layout check refused it. The header's length and its
tensor count are bounded by what the largest official layout needs, checked before the
header is parsed (docs/models.md, "Checks on every weights file")."""

from __future__ import annotations

import json
import struct

import cv2
from attack import DPT_ROS, attack
from helpers import small_image

#: Refused before the model is built: torch's libraries (about 1.1 GB here) and no more.
PEAK_MB = 1600
#: Empty tensors in the attack's header (about 52 MB of JSON).
EMPTY_TENSORS = 760_000


def header_bomb(entries: int) -> bytes:
    header = {
        f"t{i:07d}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(entries)
    }
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


def test_a_header_of_empty_tensors_is_refused_before_parsing(tmp_path):
    bomb = tmp_path / "model.safetensors"
    bomb.write_bytes(header_bomb(EMPTY_TENSORS))
    cv2.imwrite(str(tmp_path / "in.png"), small_image())
    done = attack(
        [*DPT_ROS, "predict", "--model-type", "depth_anything_3_small", "--weights", str(bomb)]
        + ["--network-size", "70x56", "--backend", "torch"]
        + ["--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out")],
        timeout=120,
    )
    assert done.rc == 2, done.stderr[-2000:]
    (error,) = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    assert "safetensors header" in error and "larger than" in error, error
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
