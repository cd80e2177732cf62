"""A tampered engine cache: ``model.onnx`` replaced by a symlink to ``/dev/zero`` hung
every start while hashing it; a symlink to a file outside the cache was loaded; a
missing or corrupt sidecar ``model.onnx.json`` was never built again (PyTorch at every
start, about 30 times slower). Each is refused with a warning naming the problem and
built again under ``--engine-build`` (docs/speed.md, "Engines built on first use")."""

from __future__ import annotations

import os
import shutil

import cv2
import pytest
from attack import DPT_ROS, attack
from helpers import small_image

#: A whole run of dpt_hybrid at 64x64 (torch's libraries alone are about 1.1 GB here;
#: measured 2.2 GB), and one that builds its engine (in a child process: 3.0 GB).
RUN_PEAK_MB = 2500
BUILD_PEAK_MB = 4000


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(a cache folder holding the dpt_hybrid 64x64 ONNX Runtime engine, an input image)."""
    root = tmp_path_factory.mktemp("engine_tampering")
    image = root / "in.png"
    cv2.imwrite(str(image), small_image(64, 64))
    cache = root / "cache"
    done = _predict(cache, image, root / "out")
    assert done.rc == 0 and "built the onnxruntime engine" in done.stderr, done.stderr
    return cache, image


def _predict(cache, image, out, *extra, timeout: float = 600):
    env = {**os.environ, "DPT_ROS_CACHE": str(cache)}
    # An engine missing from the cache is built at start (predict's default, auto,
    # builds only where it pays off over the images: never for one small image).
    build = [] if "--engine-build" in extra else ["--engine-build", "eager"]
    return attack(
        [*DPT_ROS, "predict", "--model-type", "dpt_hybrid", "--random-weights"]
        + ["--network-size", "64x64", "--device", "cpu", *build, *extra]
        + ["--input", str(image), "--output", str(out)],
        env=env,
        timeout=timeout,  # an export of 30 s to minutes on a busy CPU
    )


def _copy(built, tmp_path):
    """A copy of the built cache (hard links: tamper by replacing files, never in place)
    and its engine folder."""
    cache = tmp_path / "cache"
    shutil.copytree(built[0], cache, copy_function=os.link)
    (folder,) = (p for p in (cache / "engines").iterdir() if not p.name.startswith("."))
    return cache, folder


def test_an_engine_linked_to_dev_zero_is_refused_not_read(built, tmp_path):
    cache, folder = _copy(built, tmp_path)
    (folder / "model.onnx").unlink()
    (folder / "model.onnx").symlink_to("/dev/zero")
    done = _predict(cache, built[1], tmp_path / "out", "--engine-build", "never", timeout=120)
    assert done.rc == 0, done.stderr
    assert "model.onnx is not a regular file" in done.stderr, done.stderr
    assert done.peak_rss_mb < RUN_PEAK_MB, done.peak_rss_mb


def test_an_engine_linked_out_of_the_cache_is_refused_and_built_again(built, tmp_path):
    cache, folder = _copy(built, tmp_path)
    outside = tmp_path / "elsewhere.onnx"
    os.link(folder / "model.onnx", outside)  # the very bytes: its SHA-256 matches
    (folder / "model.onnx").unlink()
    (folder / "model.onnx").symlink_to(outside)
    done = _predict(cache, built[1], tmp_path / "out")
    assert done.rc == 0, done.stderr
    assert "model.onnx links out of the engine cache" in done.stderr, done.stderr
    assert "built the onnxruntime engine" in done.stderr, done.stderr
    assert not (folder / "model.onnx").is_symlink()
    assert done.peak_rss_mb < BUILD_PEAK_MB, done.peak_rss_mb


@pytest.mark.parametrize("sidecar", ["missing", "corrupt"])
def test_a_missing_or_corrupt_sidecar_gets_the_engine_built_again(built, tmp_path, sidecar):
    cache, folder = _copy(built, tmp_path)
    (folder / "model.onnx.json").unlink()
    if sidecar == "corrupt":
        (folder / "model.onnx.json").write_text('{"model_type": "dpt_hyb', encoding="utf-8")
    done = _predict(cache, built[1], tmp_path / "out")
    assert done.rc == 0, done.stderr
    assert "is unusable: its sidecar model.onnx.json" in done.stderr, done.stderr
    assert "built the onnxruntime engine" in done.stderr, done.stderr
    again = _predict(cache, built[1], tmp_path / "out")
    assert again.rc == 0 and "engine" not in again.stderr, again.stderr  # loaded as it is
    assert done.peak_rss_mb < BUILD_PEAK_MB and again.peak_rss_mb < RUN_PEAK_MB
