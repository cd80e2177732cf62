"""VGGT's window engines (fixed N), proven on a reduced configuration of its network
(the same blocks, heads and camera decoding at width 64 and 4 block pairs,
deterministic weights: ``vggt_cases.reduced_vggt``): built and cached on first use,
their weights in ``model.onnx.data`` beside the graph, ONNX Runtime against PyTorch
through ``Predictor.infer_window`` and on the raw outputs.

The engine cache builds in this process here (``vggt_cases.reduced_vggt_1b``): its
child process would build ``vggt_1b`` at full size. The child itself is
``test_da3_window_engine.py``'s part; what differs for VGGT is the graph and its data
file, both tested below.
"""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch
from vggt_cases import MODEL_TYPE, reduced_vggt_1b

from dpt_ros.models import Predictor

#: Each output against PyTorch's, relative to its largest magnitude (the issue's bound).
RTOL = 1e-4
#: Network size: 160x120 views are cropped to 70x56 (the width at 70, 4 patch rows).
NETWORK = (70, 70)


def _views(scene_rgb: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` views of the scene: 160x120 crops moving to the right and down."""
    rgb = cv2.resize(scene_rgb, (240, 180), interpolation=cv2.INTER_AREA)
    return [rgb[6 * i : 6 * i + 120, 20 * i : 20 * i + 160].copy() for i in range(count)]


def _error(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    return float(np.abs(got - want).max() / np.abs(want).max())


def _assert_close(got, want) -> None:
    pairs = {
        "depth": (got.depth, want.depth),
        "depth_conf": (got.confidence, want.confidence),
        "world_points": (got.cameras.world_points, want.cameras.world_points),
        "camera_from_world": (got.cameras.camera_from_world, want.cameras.camera_from_world),
        "intrinsics": (got.cameras.intrinsics, want.cameras.intrinsics),
    }
    for name, (g, w) in pairs.items():
        assert _error(g, w) <= RTOL, name
    assert got.cameras.reference_view == want.cameras.reference_view == 0


@pytest.fixture(scope="module")
def reduced():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    with reduced_vggt_1b():
        yield


def _predictor(cache, backend: str, build: str = "eager") -> Predictor:
    kwargs = {"random_weights": True, "network_size": NETWORK, "device": "cpu"}
    if backend == "torch":
        return Predictor(MODEL_TYPE, backend="torch", **kwargs)
    return Predictor(MODEL_TYPE, backend=backend, engine_build=build, cache_dir=cache, **kwargs)


@pytest.fixture(scope="module")
def predictors(reduced, tmp_path_factory):
    """The reduced VGGT on PyTorch, and on onnxruntime window engines built at first
    use (``eager``: the first window of a shape waits for its engine)."""
    cache = tmp_path_factory.mktemp("engines")
    torch_predictor = _predictor(cache, "torch")
    assert sum(p.numel() for p in torch_predictor.model.parameters()) < 5e6  # reduced
    return torch_predictor, _predictor(cache, "onnxruntime"), cache


def _window_folders(cache, views: int) -> list:
    return sorted((cache / "engines").glob(f"{MODEL_TYPE}_*_n{views}_onnxruntime_*"))


@pytest.mark.parametrize("count", [2, 3])
def test_windows_run_on_engines_within_1e4_of_torch(predictors, scene_a_rgb, count):
    torch_predictor, engine, cache = predictors
    views = _views(scene_a_rgb, count)
    want = torch_predictor.infer_window(views)
    got = engine.infer_window(views)
    assert engine.backend == "onnxruntime" and engine.runtime.name == "onnxruntime"
    assert got.depth.shape == (count, 56, 70)
    _assert_close(got, want)
    # a strategy changes nothing for VGGT (view 0 is the world): the same one engine
    _assert_close(engine.infer_window(views, reference_view="middle"), want)
    (folder,) = _window_folders(cache, count)
    record = json.loads((folder / "key.json").read_text())
    assert record["window"]["reference_view"] == "none"
    # the weights beside the graph, digested with it
    assert set(record["data_sha256"]) == {"model.onnx.data"}
    assert (folder / "model.onnx.data").stat().st_size > (folder / "model.onnx").stat().st_size
    # on the output grid too: maps resized, intrinsics following, as PyTorch's
    _assert_close(
        engine.infer_window(views, output_hw=(120, 160)),
        torch_predictor.infer_window(views, output_hw=(120, 160)),
    )


def test_every_raw_output_is_within_1e4_of_torch(predictors, scene_a_rgb):
    """The graph's five outputs, the pose encoding and the point map's confidence
    included (the predictor keeps neither), against the network's ``window``."""
    from dpt_ros.runtime.window_runtimes import window_shape

    torch_predictor, engine, _ = predictors
    spec = torch_predictor.spec
    batch = torch.from_numpy(np.stack(_views(scene_a_rgb, 3)))
    hw = torch_predictor.input_size(batch.shape[1:3])
    x, _ = spec.family.window_input(
        spec, batch, hw, torch_predictor.net_hw, torch_predictor._mean, torch_predictor._std
    )
    engine.infer_window(_views(scene_a_rgb, 3))  # the engine of the shape is there
    runner = engine.runtime.window_engine(window_shape(3, hw, "none", False))
    assert runner is not None
    with torch.inference_mode():
        want = torch_predictor.model.window(x[None])
        got = runner.window(x[None])
    for name, g, w in zip(want._fields, got, want):
        assert _error(g, w) <= RTOL, name
    with pytest.raises(ValueError, match="not a Depth Anything 3 window engine"):
        runner.forward_window(x[None])
    with pytest.raises(ValueError, match="runs windows of 3 views"):
        runner.window(x[None, :2])


def test_known_cameras_are_refused_before_an_engine_is_asked_for(predictors, scene_a_rgb):
    _, engine, _ = predictors
    views = _views(scene_a_rgb, 2)
    k = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]], np.float32)
    with pytest.raises(ValueError, match="takes no known cameras"):
        engine.infer_window(views, extrinsics=np.eye(4)[None].repeat(2, 0), intrinsics=[k, k])
    assert engine.runtime.window_failure is None


def _tamper(folder, how: str) -> None:
    data = folder / "model.onnx.data"
    if how == "altered":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0x40
        data.write_bytes(bytes(raw))
    elif how == "missing":
        data.unlink()
    else:
        (folder / "other.data").write_bytes(b"weights the graph might read")


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("missing", "its model.onnx.data is missing or unreadable"),
        ("extra", "it holds other.data, which its build did not record"),
        ("altered", "its model.onnx.data is not the one built (truncated or altered"),
    ],
)
def test_a_tampered_data_file_is_refused_and_rebuilt(predictors, scene_a_rgb, caplog, how, said):
    """Refused with ``engine_build: never`` (PyTorch runs the window); the altered one
    is then built again with ``eager`` (one rebuild: the others are put back)."""
    torch_predictor, engine, cache = predictors
    views = _views(scene_a_rgb, 2)
    want = torch_predictor.infer_window(views)
    engine.infer_window(views)  # the engine is built (once a module)
    (folder,) = _window_folders(cache, 2)
    data = (folder / "model.onnx.data").read_bytes()
    _tamper(folder, how)
    never = _predictor(cache, "onnxruntime", "never")
    with caplog.at_level(logging.WARNING, logger="dpt_ros.runtime.engine_cache"):
        _assert_close(never.infer_window(views), want)
    assert f"unusable: {said}" in caplog.text and "PyTorch runs it" in caplog.text
    assert never.runtime.name == "torch"
    if how != "altered":
        (folder / "model.onnx.data").write_bytes(data)
        (folder / "other.data").unlink(missing_ok=True)
        return
    caplog.clear()
    eager = _predictor(cache, "onnxruntime")
    with caplog.at_level(logging.WARNING, logger="dpt_ros.runtime.engine_cache"):
        _assert_close(eager.infer_window(views), want)
    assert f"unusable: {said}" in caplog.text and "it is built again" in caplog.text
    assert eager.runtime.name == "onnxruntime" and eager.runtime.engine_cached is False
    assert (folder / "model.onnx.data").read_bytes() == data  # deterministic weights
    record = json.loads((folder / "key.json").read_text())
    assert set(record["data_sha256"]) == {"model.onnx.data"}


def test_single_images_run_on_an_engine_within_1e4_of_torch(predictors, scene_a_rgb):
    """``engines`` holds for single images too: a view alone through VggtSingleView."""
    torch_predictor, engine, _ = predictors
    image = _views(scene_a_rgb, 1)[0]
    want = torch_predictor.infer(image[None])
    got = engine.infer(image[None])
    assert engine.runtime.engine_shapes  # an engine ran it
    for name in ("inverse_depth", "confidence"):
        assert _error(getattr(got, name), getattr(want, name)) <= RTOL, name
