"""Window engines of Depth Anything 3 (fixed N), built and cached on first use like
single-image engines: onnxruntime against PyTorch through ``Predictor.infer_window``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from da3_cases import SMALL

from dpt_ros.models import Predictor

#: Each output against PyTorch's, relative to its largest magnitude (the issue's bound).
RTOL = 1e-4


def _views(scene_rgb: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` views of the scene: 160x120 crops moving to the right and down."""
    rgb = cv2.resize(scene_rgb, (240, 180), interpolation=cv2.INTER_AREA)
    return [rgb[6 * i : 6 * i + 120, 20 * i : 20 * i + 160].copy() for i in range(count)]


def _assert_close(got, want) -> None:
    pairs = {
        "depth": (got.depth, want.depth),
        "confidence": (got.confidence, want.confidence),
        "camera_from_world": (got.cameras.camera_from_world, want.cameras.camera_from_world),
        "intrinsics": (got.cameras.intrinsics, want.cameras.intrinsics),
    }
    for name, (g, w) in pairs.items():
        assert g.shape == w.shape, name
        assert np.abs(g - w).max() / np.abs(w).max() <= RTOL, name
    assert got.cameras.reference_view == want.cameras.reference_view


@pytest.fixture(scope="module")
def predictors(small_file, tmp_path_factory):
    """da3-small at a 70-pixel network on PyTorch, and on onnxruntime window engines
    built at first use (``eager``: the first window of a shape waits for its engine)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    kwargs = {"weights": str(small_file), "network_size": (70, 70)}
    cache = tmp_path_factory.mktemp("engines")
    torch_predictor = Predictor(SMALL, backend="torch", **kwargs)
    engine = Predictor(
        SMALL, backend="onnxruntime", engine_build="eager", cache_dir=cache, **kwargs
    )
    return torch_predictor, engine, cache


def _key_files(cache) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((cache / "engines").glob("*/key.json"))]


def test_two_views_run_on_an_engine_within_1e4_of_torch(predictors, scene_a_rgb):
    torch_predictor, engine, cache = predictors
    views = _views(scene_a_rgb, 2)
    want = torch_predictor.infer_window(views)
    got = engine.infer_window(views)
    assert engine.backend == "onnxruntime" and engine.engine_cached is False
    _assert_close(got, want)
    windows = [k["window"] for k in _key_files(cache) if "window" in k]
    assert {"views": 2, "height": 56, "width": 70}.items() <= windows[0].items()
    # on the output grid too: the maps are resized and the intrinsics follow, as PyTorch's
    _assert_close(
        engine.infer_window(views, output_hw=(120, 160)),
        torch_predictor.infer_window(views, output_hw=(120, 160)),
    )
    # kept keyframes are the torch network's: an engine runs its whole graph
    _assert_close(engine.infer_window(views, view_keys=["a", "b"]), want)
    assert len(engine.view_cache) == 0


def test_three_views_choose_and_restore_the_reference_view_as_torch(predictors, scene_a_rgb):
    """saddle_balanced: the choice is in the graph, made on each window's own tokens;
    the views are reordered inside and the outputs come back in the input order. The
    orders below make PyTorch choose more than one view, so the engine is seen choosing
    other views than the one it was traced with."""
    torch_predictor, engine, cache = predictors
    views = _views(scene_a_rgb, 3)
    chosen = set()
    for order in ((0, 1, 2), (2, 0, 1), (1, 2, 0)):
        window = [views[i] for i in order]
        want = torch_predictor.infer_window(window, reference_view="saddle_balanced")
        got = engine.infer_window(window, reference_view="saddle_balanced")
        _assert_close(got, want)
        chosen.add(want.cameras.reference_view)
    assert len(chosen) > 1, chosen
    windows = [k["window"] for k in _key_files(cache) if "window" in k]
    assert any(w["views"] == 3 and w["reference_view"] == "saddle_balanced" for w in windows)
    # another strategy is another engine: first keeps view 0 as the reference
    got = engine.infer_window(views, reference_view="first")
    _assert_close(got, torch_predictor.infer_window(views, reference_view="first"))
    assert got.cameras.reference_view == 0


def test_known_cameras_run_on_their_own_engine(predictors, scene_a_rgb):
    torch_predictor, engine, cache = predictors
    views = _views(scene_a_rgb, 3)
    k = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]], np.float32)
    extrinsics = np.tile(np.eye(4, dtype=np.float32)[:3], (3, 1, 1))
    extrinsics[:, 0, 3] = [0.0, -0.2, -0.4]
    intrinsics = np.stack([k] * 3)
    want = torch_predictor.infer_window(views, extrinsics=extrinsics, intrinsics=intrinsics)
    got = engine.infer_window(views, extrinsics=extrinsics, intrinsics=intrinsics)
    _assert_close(got, want)
    assert any(k.get("window", {}).get("known_cameras") for k in _key_files(cache))


def test_the_export_check_reorders_for_the_graphs_reference_view(predictors, scene_a_rgb):
    """Where the graph's choice ties PyTorch's to rounding, the export's check compares
    with PyTorch's window reordered under ``first``: that equals the saddle forward for
    the view it chose, whichever view that is."""
    import torch

    from dpt_ros.models.network.depth_anything3 import DepthAnything3Window
    from dpt_ros.runtime.export import _tie_checked

    torch_predictor = predictors[0]
    spec = torch_predictor.spec
    window = DepthAnything3Window(torch_predictor.model, "saddle_balanced")
    views = _views(scene_a_rgb, 3)
    chosen = set()
    for order in ((0, 1, 2), (2, 0, 1), (1, 2, 0)):
        batch = torch.from_numpy(np.stack([views[i] for i in order]))
        hw = torch_predictor.input_size(batch.shape[1:3])
        x = spec.family.preprocess(
            spec, batch, hw, torch_predictor.net_hw, torch_predictor._mean, torch_predictor._std
        )[None].float()
        with torch.inference_mode():
            want = window(x)
        view = int(want[4][0])
        chosen.add(view)
        got = _tie_checked(window, x, view, view, Path("window.onnx"))
        for g, w in zip(got, want):
            assert torch.allclose(g.float(), w.float(), rtol=0, atol=1e-5 * float(w.abs().max()))
    assert len(chosen) > 1


def test_reconstruct_builds_no_window_engine_that_would_not_pay_off(tmp_path, monkeypatch, capsys):
    """``dpt-ros reconstruct`` under ``--engine-build auto`` (its default) with
    ``--backend auto``: the first window runs on PyTorch, no build waits before it, and
    for a short job (3 frames, windows of 2 sharing 1: one window to come) the estimate
    keeps PyTorch, says so in one line, and leaves the engine cache empty."""
    pytest.importorskip("onnxruntime")
    from dpt_ros.cli.main import main

    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "frames"
    folder.mkdir()
    scene = cv2.imread(str(Path(__file__).parents[1] / "fixtures" / "scene_a.png"))
    for i, view in enumerate(_views(scene[:, :, ::-1], 3)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), view[:, :, ::-1])
    argv = ["reconstruct", str(folder), "-o", str(tmp_path / "out"), "--model-type", SMALL]
    argv += ["--random-weights", "--network-size", "70x70", "--window", "2", "--overlap", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("dpt-ros: backend: ")]
    assert len(said) == 1, err
    assert said[0].startswith("dpt-ros: backend: torch (building the onnxruntime engine would")
    assert "(estimated)" in said[0] and "1 more window x" in said[0]
    assert not list((tmp_path / "cache").glob("**/key.json"))
    assert (tmp_path / "out" / "cameras.json").is_file()
