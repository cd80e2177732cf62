"""``dpt-ros bag`` writing sqlite3 or MCAP output onto a device that fills up (an 8 MiB
tmpfs): one clear error line (exit status 2, no traceback), and the output is a valid
bag that keeps the frames written up to the last checkpoint, with their input messages.
sqlite3 output used to end in a traceback with a bag of 0 messages (rosbags commits only
on close); MCAP output in an ``[Errno 28]`` line and a file filling the device, cut
inside a record, without summary or metadata.yaml (rosbags writes them on close)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from attack import DPT_ROS, attack
from helpers import read_bag, write_bag
from helpers import small_device as mounted_tmpfs

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 100
FAST = [
    "--depth-model",
    "depth_anything_v2_vits",
    "--network-size",
    "56x56",
    "--random-weights",
    "--relative-depth-scale",  # metres and points too: about 100 kB per frame
    "1",
    "--backend",
    "torch",
    "-q",
]


@pytest.fixture
def small_device(tmp_path):
    """An 8 MiB tmpfs (skipped where mounting is not permitted)."""
    with mounted_tmpfs(tmp_path / "small") as mount:
        yield mount


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_full_disk_keeps_a_valid_bag(tmp_path, small_device, storage):
    inp, out = tmp_path / "in", small_device / "out"
    write_bag(inp, frames=FRAMES)  # about 10 MiB of output: more than the device holds
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [*DPT_ROS, "bag", str(inp), "-o", str(out), "--image-topic", "/cam/image_raw", *FAST]
    argv += ["--storage", storage]
    done = attack(argv, env=env, timeout=900)
    assert done.rc == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    assert len(errors) == 1 and "no space left" in errors[0], done.stderr[-3000:]
    assert done.peak_rss_mb < 2000, done.peak_rss_mb
    kept = int(re.search(r"keeps the (\d+) frame", errors[0]).group(1))
    print(f"rc {done.rc}, peak {done.peak_rss_mb:.0f} MB, {done.wall_s:.0f} s: {errors[0]}")
    assert kept > 0, errors[0]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["metadata.yaml", f"out.{'db3' if storage == 'sqlite3' else storage}"])
    if storage == "mcap":  # the summary and footer were written: the file ends in magic
        assert (out / "out.mcap").read_bytes()[-8:] == b"\x89MCAP0\r\n"
    bag = read_bag(out)
    stamps = [t for t, _, _ in bag["/cam/depth/relative"]]
    assert len(stamps) == kept
    # Each kept frame's image is there too, and the counts in metadata.yaml hold.
    images = {t for t, _, _ in bag["/cam/image_raw"]}
    assert set(stamps) <= images
    from rosbags.rosbag2 import Reader

    with Reader(out) as reader:
        counted = {c.topic: c.msgcount for c in reader.connections}
    assert counted["/cam/depth/relative"] == kept
    assert counted["/cam/image_raw"] == len(images)
