"""``dpt-ros`` command line: run in-process through ``dpt_ros.cli.main.main``.

Two tests run real networks (deterministic weights, a 96x128 image); the rest replace
the Predictor with a fake so that input handling and error reporting stay fast.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_cases import run, write_rgb
from helpers import one_error_line

import dpt_ros.cli.predict
from dpt_ros.cli.predict import depth_to_color, depth_to_png16, output_stems
from dpt_ros.models import get_spec, model_names
from dpt_ros.models.family import Prediction
from dpt_ros.viz.colormap import TURBO_LUT


class _FakePredictor:
    """Stands in for dpt_ros.models.Predictor: records its inputs, answers instantly."""

    def __init__(self, options, **kwargs):
        self.options = options
        self.spec = get_spec(options.model_type)
        self.is_depth, self.is_metric = self.spec.is_depth, self.spec.is_metric
        self.needs_intrinsics = self.spec.needs_intrinsics
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.runtime = None  # neither torch nor an engine cache: no backend to choose
        self.seen = []
        _FakePredictor.instances.append(self)

    def prepare(self, image_hw, batch: int = 1) -> None:
        """No engine to build."""

    def infer(self, images: np.ndarray, intrinsics=None, output_hw=None, fill_sky=False):
        (image,) = images
        self.seen.append(image)
        h, w = image.shape[:2]
        if self.spec.is_depth:
            depth = np.linspace(1.0, 5.0, h * w, dtype=np.float32).reshape(1, h, w)
            return Prediction(depth=depth) if self.is_metric else Prediction(inverse_depth=depth)
        return Prediction(labels=(np.arange(h * w) % 150 + 1).astype(np.uint8).reshape(1, h, w))


@pytest.fixture
def fake_predictor(monkeypatch):
    _FakePredictor.instances = []
    monkeypatch.setattr(dpt_ros.cli.predict, "Predictor", _FakePredictor)  # as predict uses it
    return _FakePredictor


# --------------------------------------------------------------------------- help


def test_console_script_help():
    script = Path(sys.executable).parent / "dpt-ros"
    exe = str(script) if script.exists() else shutil.which("dpt-ros")
    if exe is None:
        pytest.skip("the dpt-ros console script is not installed")
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: dpt-ros" in done.stdout and "predict" in done.stdout


def test_predict_help_lists_models_and_output_conventions(capsys):
    rc, out, _ = run(capsys, "predict", "--help")
    assert rc == 0
    for name in model_names():
        assert name in out
    assert "millimetres" in out and "65535" in out and "0 = invalid" in out
    assert "write_depth" in out and "1..150" in out


def test_usage_errors_return_2_without_raising(capsys):
    assert (
        run(
            capsys,
        )[0]
        == 2
    )
    rc, _, err = run(capsys, "predict", "--input", "x.png")
    assert rc == 2 and "--model-type" in err
    rc, _, err = run(
        capsys, "predict", "--model-type", "dpt_hybrid", "--input", "x.png", "--precision", "fp64"
    )
    assert rc == 2 and "fp64" in err


# --------------------------------------------------------------------------- real networks


def test_predict_one_image_never_waits_for_an_engine_build(tmp_path, capsys, monkeypatch):
    """dpt_large on one 720x1280 image first built an onnxruntime engine (over 4 min
    under load) before its one image ran. --backend auto (--engine-build auto) now runs
    the image on PyTorch, builds nothing (a build cannot pay off over no further
    image), and says so in one line."""
    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path / "cache"))
    image = write_rgb(tmp_path / "one.png", np.zeros((48, 64, 3), np.uint8))
    rc, out, err = run(
        capsys,
        "predict",
        "--model-type",
        "dpt_hybrid",
        "--random-weights",
        "--network-size",
        "64x64",
        "--device",
        "cpu",
        "--input",
        image,
        "--output",
        tmp_path / "out",
    )
    assert rc == 0, err
    lines = [line for line in err.splitlines() if line.startswith("dpt-ros: backend:")]
    assert len(lines) == 1, err
    assert lines[0].startswith(
        "dpt-ros: backend: torch (building the onnxruntime engine would take ~"
    )
    assert "0 more frames x " in lines[0]
    assert not (tmp_path / "cache" / "engines").exists()  # nothing built
    assert (tmp_path / "out" / "one_depth.npy").is_file()


# --------------------------------------------------------------------------- inputs (fake)


def test_directory_input(tmp_path, capsys, fake_predictor, small_rgb):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    write_rgb(src / "b.png", small_rgb)
    write_rgb(src / "a.jpg", small_rgb)
    gray16 = np.arange(40 * 60, dtype=np.uint16).reshape(40, 60) * 27
    assert cv2.imwrite(str(src / "c.tif"), gray16)
    write_rgb(src / "D.PNG", np.zeros((8, 8, 3), np.uint8) + np.uint8([255, 0, 0]))
    write_rgb(src / "sub" / "deeper.png", small_rgb)  # not recursive
    (src / "notes.txt").write_text("not an image")  # not an image extension
    out_dir = tmp_path / "out"
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid_nyu",
        "--weights",
        "unused.pt",
        "--input",
        src,
        "--output",
        out_dir,
    )
    assert rc == 0, err
    names = [line.split(":")[0] for line in out.splitlines()[:-1]]
    assert names == ["'D.PNG'", "'a.jpg'", "'b.png'", "'c.tif'"]  # sorted by name, quoted
    assert out.splitlines()[-1].startswith("4 image(s) with dpt_hybrid_nyu")
    (fake,) = fake_predictor.instances
    for image in fake.seen:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert (fake.seen[0] == [255, 0, 0]).all()  # RGB order: red stays red
    np.testing.assert_array_equal(fake.seen[3], np.repeat((gray16 >> 8)[:, :, None], 3, 2))
    for stem in ("D", "a", "b", "c"):
        assert (out_dir / f"{stem}_depth.npy").is_file()
        assert (out_dir / f"{stem}_depth.png").is_file()
        assert (out_dir / f"{stem}_depth_color.png").is_file()
    assert not list(out_dir.glob("deeper*"))
    # Metric model: millimetres.
    depth = np.load(out_dir / "b_depth.npy")
    png = cv2.imread(str(out_dir / "b_depth.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png, np.rint(depth.astype(np.float64) * 1000).astype(np.uint16))


def test_file_names_cannot_forge_lines(tmp_path, capsys, fake_predictor, small_rgb):
    """A file name with a newline, a forged log level and an ESC sequence is shown
    quoted and escaped in every line it enters (it was printed raw)."""
    src = tmp_path / "in"
    src.mkdir()
    forged = "a\n[FATAL] [dpt_node]: forged\x1b[2J\r"
    write_rgb(src / f"{forged}.png", small_rgb)
    (src / f"{forged}bad.png").write_bytes(b"not an image")
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid_nyu",
        "--weights",
        "unused.pt",
        "--input",
        src,
        "--output",
        tmp_path / "out",
    )
    assert rc == 2
    for text in (out, err):
        assert "\x1b" not in text and "\r" not in text
        assert not any(line.startswith("[FATAL]") for line in text.splitlines()), text
    assert repr(f"{forged}.png") + ": " in out
    assert repr(f"{forged}bad.png") in err


def test_shared_stems_get_distinct_outputs(tmp_path, capsys, fake_predictor, small_rgb):
    src = tmp_path / "in"
    src.mkdir()
    write_rgb(src / "a.png", small_rgb)
    write_rgb(src / "a.jpg", small_rgb)
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid_ade20k",
        "--random-weights",
        "--input",
        src,
        "--output",
        tmp_path / "out",
    )
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_jpg_labels.png",
        "a_jpg_labels_color.png",
        "a_png_labels.png",
        "a_png_labels_color.png",
    ]
    assert output_stems([Path("x.png"), Path("y.png")]) == ["x", "y"]


def test_unreadable_images_are_reported_after_the_others(
    tmp_path, capsys, fake_predictor, small_rgb
):
    src = tmp_path / "in"
    src.mkdir()
    write_rgb(src / "good.png", small_rgb)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (src / "empty.png").write_bytes(b"")
    truncated = cv2.imencode(".png", small_rgb)[1].tobytes()[:200]
    (src / "truncated.png").write_bytes(truncated)
    out_dir = tmp_path / "out"
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--weights",
        "w.pt",
        "--input",
        src,
        "--output",
        out_dir,
    )
    one_error_line(rc, err, "3 of 4", "broken.jpg", "empty.png", "truncated.png")
    assert (out_dir / "good_depth.npy").is_file()
    assert out.startswith("'good.png': 128x96")  # names quoted (untrusted text)


# --------------------------------------------------------------------------- errors


def test_missing_input(tmp_path, capsys):
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--random-weights",
        "--input",
        tmp_path / "nope.png",
        "--output",
        tmp_path / "out",
    )
    one_error_line(rc, err, "input not found", "nope.png")


def test_empty_directory(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no images here")
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--random-weights",
        "--input",
        tmp_path / "in",
        "--output",
        tmp_path / "out",
    )
    one_error_line(rc, err, "no images in directory")


def test_corrupt_image_file(tmp_path, capsys, det_checkpoint):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then garbage")
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--weights",
        det_checkpoint("dpt_hybrid"),
        "--input",
        bad,
        "--output",
        tmp_path / "out",
        "--device",
        "cpu",
    )
    one_error_line(rc, err, "1 of 1", "photo.png")
    assert out == ""


def test_unknown_model_type(tmp_path, capsys, small_png):
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_small",
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
    )
    one_error_line(rc, err, "dpt_small", *model_names())


def test_weights_for_another_model(tmp_path, capsys, det_checkpoint, small_png):
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_large",
        "--weights",
        det_checkpoint("dpt_hybrid"),
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
        "--device",
        "cpu",
    )
    one_error_line(rc, err, "not dpt_large", "--model-type dpt_hybrid")


def test_weights_not_a_checkpoint(tmp_path, capsys, small_png):
    weights = tmp_path / "weights.pt"
    weights.write_text("hello")
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--weights",
        weights,
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
        "--device",
        "cpu",
    )
    one_error_line(rc, err, "not a readable PyTorch weights file")


def test_missing_weights_file(tmp_path, capsys, small_png):
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--weights",
        tmp_path / "missing.pt",
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
        "--device",
        "cpu",
    )
    one_error_line(rc, err, "weights file not found")


def test_no_weights_offline(tmp_path, capsys, monkeypatch, small_png):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in this test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path / "cache"))
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
        "--device",
        "cpu",
    )
    one_error_line(rc, err, "could not download", get_spec("dpt_hybrid").file_name)


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--weights", "w.pt", "--random-weights"], "not both"),
        (["--random-weights", "--device", "gpu0"], "unknown device 'gpu0'"),
    ],
)
def test_argument_errors(tmp_path, capsys, small_png, extra, fragment):
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
        *extra,
    )
    one_error_line(rc, err, fragment)


def test_output_path_is_a_file(tmp_path, capsys, small_png):
    target = tmp_path / "taken"
    target.write_text("")
    rc, _, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--random-weights",
        "--input",
        small_png,
        "--output",
        target,
    )
    one_error_line(rc, err, "not a directory")


def test_random_weights_need_no_weights_file(tmp_path, capsys, fake_predictor, small_png):
    rc, out, err = run(
        capsys,
        "predict",
        "--backend",
        "torch",
        "--model-type",
        "dpt_hybrid",
        "--random-weights",
        "--input",
        small_png,
        "--output",
        tmp_path / "out",
    )
    assert rc == 0 and err == "" and "scene.png" in out


# --------------------------------------------------------------------------- encodings


def test_depth_png16_metric_is_millimetres():
    depth = np.array([[0.5, 1.2344, 70.0, 0.0], [-1.0, np.nan, np.inf, 0.0004]], np.float32)
    np.testing.assert_array_equal(
        depth_to_png16(depth, metric=True), [[500, 1234, 65535, 0], [0, 0, 0, 0]]
    )


def test_depth_png16_relative_spans_the_range():
    depth = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    np.testing.assert_array_equal(depth_to_png16(depth, metric=False), [[0, 16384], [32768, 65535]])
    assert not depth_to_png16(np.full((2, 2), 3.0, np.float32), metric=False).any()
    with_nan = depth.copy()
    with_nan[0, 1] = np.nan
    assert depth_to_png16(with_nan, metric=False)[0, 1] == 0


def test_depth_color_near_is_warm():
    ramp = np.linspace(1.0, 10.0, 100, dtype=np.float32).reshape(10, 10)
    for metric, near, far in ((True, (0, 0), (9, 9)), (False, (9, 9), (0, 0))):
        rgb = depth_to_color(ramp, metric)
        np.testing.assert_array_equal(rgb[near], TURBO_LUT[-1])  # warm end
        np.testing.assert_array_equal(rgb[far], TURBO_LUT[0])
        assert rgb[near][0] > rgb[near][2]  # red
    metric = ramp.copy()
    metric[5, 5] = 0.0
    assert (depth_to_color(metric, True)[5, 5] == 0).all()  # invalid: black


def test_predict_skips_a_thin_image_with_the_reason(tmp_path, capsys, small_rgb):
    """An image whose network input would be 40:1 is skipped and named with the reason;
    the others are written."""
    src = tmp_path / "in"
    src.mkdir()
    write_rgb(src / "good.png", small_rgb)
    write_rgb(src / "thin.png", np.zeros((100, 4000, 3), np.uint8))
    out_dir = tmp_path / "out"
    rc, out, err = run(
        capsys,
        "predict",
        "--model-type",
        "dpt_hybrid",
        "--random-weights",
        "--device",
        "cpu",
        "--backend",
        "torch",
        "--network-size",
        "64x64",
        "--input",
        src,
        "--output",
        out_dir,
    )
    one_error_line(rc, err, "1 of 2", "thin.png", "2560x64 network input, 40.0:1")
    assert (out_dir / "good_depth.npy").is_file()
    assert not (out_dir / "thin_depth.npy").exists()


def test_a_full_disk_leaves_no_truncated_output(tmp_path, capsys, fake_predictor, small_rgb):
    """A disk that fills while ``<stem>_depth.npy`` is written left a truncated .npy
    (loadable by nothing, mistaken for a result); each output now appears whole or not
    at all, and the error names the file."""
    import errno
    import io

    real_save = np.save

    def save_onto_a_full_disk(file, array, *args, **kwargs):
        encoded = io.BytesIO()
        real_save(encoded, array, *args, **kwargs)
        half = encoded.getvalue()[: len(encoded.getvalue()) // 2]
        if isinstance(file, (str, Path)):
            Path(file).write_bytes(half)
        else:
            file.write(half)
        raise OSError(errno.ENOSPC, "No space left on device")

    write_rgb(tmp_path / "a.png", small_rgb)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "a_depth.npy").write_bytes(b"the run before")
    np.save, saved = save_onto_a_full_disk, np.save
    try:
        rc, _, err = run(
            capsys, "predict", "--backend", "torch", "--model-type", "dpt_hybrid",
            "--random-weights", "--input", tmp_path / "a.png", "--output", out,
        )  # fmt: skip
    finally:
        np.save = saved
    one_error_line(rc, err, "a_depth.npy", "No space left on device")
    assert sorted(p.name for p in out.iterdir()) == ["a_depth.npy"]
    assert (out / "a_depth.npy").read_bytes() == b"the run before"  # kept, not truncated
