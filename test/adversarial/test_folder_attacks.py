"""Malformed transformers ``save_pretrained`` folders given to ``dpt-ros predict
--weights``: a config.json that is a FIFO, a link to /dev/zero, hundreds of megabytes,
or nested beyond any parser. Each is one error line naming the file (exit 2), in
bounded time and memory, and nothing is read that a model folder would not hold."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from attack import DPT_ROS, attack

#: predict up to the weights peaks at 1.1 GB (importing the CUDA build of torch alone
#: peaks at 0.9 GB on the CPU); parsing the 300 MB config would add about 0.6 GB.
PEAK_MB = 1400


def _predict_with_folder(tmp_path, folder):
    image = tmp_path / "image.png"
    cv2.imwrite(str(image), np.zeros((48, 64, 3), np.uint8))
    return attack(
        [
            *DPT_ROS,
            "predict",
            "--model-type",
            "depth_anything_v2_vits",
            "--weights",
            str(folder),
            "--backend",
            "torch",
            "--input",
            str(image),
            "--output",
            str(tmp_path / "out"),
        ],
        timeout=180,
    )


def _one_error(done, *fragments: str) -> str:
    assert done.rc == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    assert len(errors) == 1, done.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def _folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_a_config_that_is_no_regular_file_is_refused_unread(tmp_path, kind):
    folder = _folder(tmp_path)
    config = folder / "config.json"
    if kind == "fifo":
        os.mkfifo(config)  # opening it for reading would wait for a writer forever
    elif kind == "dev_zero":
        config.symlink_to("/dev/zero")  # reading it never ends
    else:
        config.mkdir()
    done = _predict_with_folder(tmp_path, folder)
    _one_error(done, str(config), "not a regular file")
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb


def test_a_huge_config_is_refused_by_its_size(tmp_path):
    folder = _folder(tmp_path)
    config = folder / "config.json"
    with config.open("w") as f:  # 300 MB of one JSON string: parsing would take ~1 GB
        f.write('{"model_type": "depth_anything", "pad": "')
        block = "x" * (1 << 20)
        for _ in range(300):
            f.write(block)
        f.write('"}')
    done = _predict_with_folder(tmp_path, folder)
    _one_error(done, str(config), "MB")
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
    assert done.wall_s < 120, done.wall_s


def test_a_config_nested_beyond_any_parser_is_one_error(tmp_path):
    folder = _folder(tmp_path)
    (folder / "config.json").write_text("[" * 5_000_000 + "]" * 5_000_000)
    done = _predict_with_folder(tmp_path, folder)
    _one_error(done, "config.json")
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
