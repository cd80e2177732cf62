"""``dpt-ros reconstruct``: its refusals before any model loads, and a run end to end
through the predictor adapter with a stand-in for a multi-view predictor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from reconstruct_scenes import FOCAL, HEIGHT, WIDTH, depth_map, intrinsics, trajectory

from dpt_ros.cli import reconstruct as cli
from dpt_ros.cli.main import main
from dpt_ros.reconstruct.frames import window_count
from dpt_ros.runtime.build_choice import BuildChoice


def _pngs(folder: Path, count: int, size=(HEIGHT, WIDTH)) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), np.full((*size, 3), 20 * i, np.uint8))
    return folder


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("dpt-ros: error: "), err
    return err


def _fail_to_load(*args):
    raise AssertionError("the model must not load before the flags are checked")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--model-type", "depth_anything_3_mono_large"], "takes one frame at a time"),
        (["--model-type", "dpt_hybrid"], "takes one frame at a time"),
        (["--mode", "pad"], "--mode is VGGT's preprocessing"),
        (["--window", "4", "--overlap", "4"], "--overlap 4 must be at least 0 and smaller"),
        (["--confidence-percentile", "120"], "0..100"),
        (["--voxel", "0"], "--voxel must be a positive length"),
        (["--weights", "w.pt", "--random-weights"], "either --weights or --random-weights"),
    ],
)
def test_bad_flags_are_refused_before_the_model_loads(
    tmp_path, capsys, monkeypatch, extra, fragment
):
    monkeypatch.setattr(cli, "_load_predictor", _fail_to_load)
    inp = _pngs(tmp_path / "in", 2)
    argv = ["reconstruct", str(inp), "-o", str(tmp_path / "out")]
    if "--model-type" not in extra:
        argv += ["--model-type", "depth_anything_3_small"]
    assert main(argv + extra) == 2
    assert fragment in _error(capsys)


def test_inputs_are_checked_before_the_model_loads(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load_predictor", _fail_to_load)
    inp = _pngs(tmp_path / "in", 2)
    base = ["reconstruct", "--model-type", "depth_anything_3_small"]
    assert main([*base, str(inp), "-o", str(tmp_path)]) == 2
    assert "holds the input" in _error(capsys)
    assert main([*base, str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 2
    assert "input not found" in _error(capsys)
    bag = tmp_path / "x.mcap"
    bag.write_bytes(b"")
    assert main([*base, str(bag), "-o", str(tmp_path / "out")]) == 2
    assert "is a bag: give --image-topic" in _error(capsys)
    (tmp_path / "file.txt").write_text("x")
    assert main([*base, str(tmp_path / "file.txt"), "-o", str(tmp_path / "out")]) == 2
    assert "neither a folder of images nor a bag" in _error(capsys)


@dataclass(frozen=True)
class _Cameras:
    camera_from_world: np.ndarray
    intrinsics: np.ndarray
    reference_view: int
    world_points: np.ndarray | None = None


@dataclass(frozen=True)
class _Prediction:
    depth: np.ndarray
    confidence: np.ndarray
    cameras: _Cameras | None


class _WindowPredictor:
    """The model side's contract (Predictor.infer_window), on synthetic geometry: the
    frames' brightness says which frame each image is; every window in its own unit."""

    def __init__(self) -> None:
        self.poses = trajectory(7)
        self.calls: list[dict] = []

    def infer_window(self, images, reference_view="saddle_balanced", output_hw=None, **known):
        self.calls.append({"n": len(images), "reference_view": reference_view, "hw": output_hw})
        ids = [int(img[0, 0, 0]) // 20 for img in images]
        scale = 1.0 + len(self.calls)  # each window in a unit of its own
        k = np.repeat(intrinsics(WIDTH, HEIGHT, FOCAL)[None], len(ids), 0)
        depth = np.stack([depth_map(self.poses[i], k[0]) for i in ids]) * scale
        cfw = self.poses[ids].copy()
        cfw[:, :, 3] *= scale
        return _Prediction(
            depth.astype(np.float32),
            np.ones_like(depth, dtype=np.float32),
            _Cameras(cfw.astype(np.float32), k.astype(np.float32), 0),
        )


def test_reconstruct_through_the_predictor_adapter(tmp_path, capsys, monkeypatch):
    predictor = _WindowPredictor()
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: predictor)
    inp = _pngs(tmp_path / "in", 7)
    out = tmp_path / "out"
    argv = ["reconstruct", str(inp), "-o", str(out), "--model-type", "depth_anything_3_small"]
    argv += ["--window", "3", "--overlap", "1", "--reference-view", "first", "--voxel", "0.1"]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "7 frame(s) in 3 window(s), chained" in said
    assert [c["n"] for c in predictor.calls] == [3, 3, 3]
    assert {c["reference_view"] for c in predictor.calls} == {"first"}
    assert all(c["hw"] is None for c in predictor.calls)  # raw outputs, network grid
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["model"]["type"] == "depth_anything_3_small" and doc["chained"]
    got = np.array([f["camera_from_world"] for f in doc["frames"]])
    want = predictor.poses.copy()
    want[:, :, 3] *= 2.0  # the first window's unit
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert [w["sim3_to_world"]["scale"] for w in doc["windows"]] == pytest.approx(
        [1.0, 2 / 3, 2 / 4], rel=1e-5
    )
    for name in ("trajectory.tum", "points.ply", "colmap/images.txt", "windows/0002.npz"):
        assert (out / name).is_file()


def test_several_inputs_get_a_folder_each(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: _WindowPredictor())
    a, b = _pngs(tmp_path / "a" / "seq", 3), _pngs(tmp_path / "b" / "seq", 2)
    (tmp_path / "b" / "seq" / "frame_009.png").write_bytes(b"corrupt")
    argv = ["reconstruct", str(a), str(b), "-o", str(tmp_path / "out")]
    assert main([*argv, "--model-type", "depth_anything_3_small", "--window", "3"]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "out" / "seq" / "cameras.json").is_file()
    assert (tmp_path / "out" / "seq_2" / "cameras.json").is_file()
    assert "skipped 1 unreadable image(s): 'frame_009.png'" in captured.err
    doc = json.loads((tmp_path / "out" / "seq_2" / "cameras.json").read_text())
    assert doc["skipped"]["images"] == 1 and len(doc["frames"]) == 2


class _DecidingPredictor(_WindowPredictor):
    """The stand-in with an engine runtime (``--engine-build auto``): what it was asked
    after each input's first window, and a refusal to build."""

    backend = "torch"
    backend_status = "torch"

    def __init__(self) -> None:
        super().__init__()
        self.runtime = SimpleNamespace(backend="onnxruntime", window_build_choice=None)
        self.asked: list[tuple[int, int, float]] = []

    def build_window_engine_if_it_pays(self, windows_left: int, torch_s: float):
        self.asked.append((len(self.calls), windows_left, torch_s))
        return BuildChoice(False, 50.0, 0.2 * windows_left, windows_left, 2.0, 0.1, False)


@pytest.mark.parametrize(("flag", "asked"), [([], True), (["--engine-build", "never"], False)])
def test_auto_decides_after_each_inputs_first_window(tmp_path, capsys, monkeypatch, flag, asked):
    """Under ``--engine-build auto`` (the default) the build is decided once an input's
    first window has run, over the windows still to come (7 frames, windows of 3
    sharing 1: 3 windows, so 2 to come; 5 frames: 2 windows), and said in one line;
    under another ``--engine-build`` nothing is asked."""
    predictor = _DecidingPredictor()
    monkeypatch.setattr(cli, "_load_predictor", lambda args, spec: predictor)
    a, b = _pngs(tmp_path / "a" / "seq", 7), _pngs(tmp_path / "b" / "seq", 5)
    argv = ["reconstruct", str(a), str(b), "-o", str(tmp_path / "out"), *flag]
    argv += ["--model-type", "depth_anything_3_small", "--window", "3", "--overlap", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    if not asked:
        assert predictor.asked == [] and "backend:" not in err
        return
    assert [(calls, left) for calls, left, _ in predictor.asked] == [(1, 2), (4, 1)]
    assert all(seconds > 0 for _, _, seconds in predictor.asked)
    lines = [line for line in err.splitlines() if line.startswith("dpt-ros: backend: ")]
    assert lines == [
        "dpt-ros: backend: torch (building the onnxruntime engine would take ~50 s "
        f"(estimated), more than the ~{0.2 * n:.0f} s it would save (10% of {n} more "
        f"window{'s' if n > 1 else ''} x 2.00 s))"
        for n in (2, 1)
    ]


def test_window_counts_follow_the_windows():
    assert [window_count(n, 3, 1) for n in (0, 1, 3, 4, 5, 6, 7)] == [0, 1, 1, 2, 2, 3, 3]
    assert [window_count(n, 2, 0) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]


def test_a_single_frame_predictor_or_a_mode_it_lacks_is_refused():
    with pytest.raises(ValueError, match="single-frame model cannot reconstruct"):
        cli.window_runner(object(), "first")
    with pytest.raises(ValueError, match="takes no --mode"):
        cli.window_runner(_WindowPredictor(), "first", mode="pad")
