"""Window engines in the engine cache: their keys (N, strategy, known cameras), and what
``backend: auto`` runs for a window from the figures its build recorded."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from dpt_ros.models.options import PredictorOptions
from dpt_ros.runtime import engine_cache
from dpt_ros.runtime.engine_cache import CachedEngineRuntime, EngineKey, engine_key
from dpt_ros.runtime.runtimes import TorchRuntime
from dpt_ros.runtime.window_runtimes import NO_REFERENCE, window_shape

SMALL = "depth_anything_3_small"


def _key(**fields) -> EngineKey:
    base = {
        "model_type": SMALL,
        "weights": "random",
        "input_shape": (1, 3, 56, 70),
        "precision": "fp32",
        "backend": "onnxruntime",
        "backend_version": "1.0",
        "gpu": "",
        "exporter": "torch 2, dpt_ros 0",
    }
    return EngineKey(**{**base, **fields})


def _window_key(views: int, reference: str = "saddle_balanced", known: bool = False):
    shape = window_shape(views, (56, 70), reference, known)
    return _key(input_shape=shape.input_shape, window=tuple(shape.key_fields().items()))


def test_window_keys_differ_by_views_strategy_and_cameras():
    two, three, four = (_window_key(n) for n in (2, 3, 4))
    names = {k.folder_name() for k in (two, three, four)}
    assert len(names) == 3
    assert two.folder_name().startswith(f"{SMALL}_70x56_n2_onnxruntime_fp32_")
    assert three.as_json()["window"]["views"] == 3
    assert three.as_json()["input_shape"] == [1, 3, 3, 56, 70]
    assert _window_key(3, "first").folder_name() != three.folder_name()
    assert _window_key(3, known=True).folder_name() != three.folder_name()
    # where the strategy changes nothing, windows share one engine
    assert _window_key(2, "first") == two
    assert _window_key(3, "first", known=True) == _window_key(3, "middle", known=True)
    assert two.as_json()["window"]["reference_view"] == NO_REFERENCE


def test_single_image_keys_are_those_of_before_windows():
    """No ``window`` field, and the folder's digest of the key as it was: engines
    already in users' caches are found again."""
    key = _key(input_shape=(1, 3, 56, 70))
    assert "window" not in key.as_json()
    old = {f.name: getattr(key, f.name) for f in dataclasses.fields(key) if f.name != "window"}
    digest = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert key.folder_name() == f"{SMALL}_70x56_b1_onnxruntime_fp32_{digest}"


@pytest.fixture
def runtime_for(tmp_path, monkeypatch):
    """A CachedEngineRuntime over a stand-in torch model, whose cache holds a window
    engine with the given figures (PyTorch ms, engine ms); loading the engine gives a
    marker object."""
    monkeypatch.setattr(engine_cache, "_backend_version", lambda backend: "1.0")
    loaded = object()
    monkeypatch.setattr(engine_cache, "load_window_backend", lambda *args: loaded)
    shape = window_shape(3, (56, 70), "saddle_balanced", False)

    def make(backend: str, torch_ms: float, engine_ms: float):
        options = PredictorOptions(
            SMALL, random_weights=True, backend=backend, engine_build="never", device="cpu"
        )
        torch_runtime = TorchRuntime(torch.nn.Linear(2, 2), channels_last=False)
        runtime = CachedEngineRuntime(
            "onnxruntime", options, torch_runtime, torch.float32, cache_dir=tmp_path
        )
        key = engine_key(
            options, "onnxruntime", (), torch.device("cpu"), torch.float32, window=shape
        )
        folder = runtime.root / key.folder_name()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.onnx").write_bytes(b"graph")
        sidecar = {
            "model_type": SMALL,
            "format": "onnx",
            "input_name": "input",
            "input_shape": list(shape.input_shape),
            "output_name": "depth",
            "output_shape": [1, 3, 56, 70],
            "window": {"views": 3, "reference_view": "saddle_balanced", "known_cameras": False},
        }
        (folder / "model.onnx.json").write_text(json.dumps(sidecar))
        record = {
            **key.as_json(),
            "engine_sha256": hashlib.sha256(b"graph").hexdigest(),
            "torch_ms": torch_ms,
            "onnxruntime_ms": engine_ms,
        }
        (folder / "key.json").write_text(json.dumps(record))
        return runtime, shape, loaded, folder

    return make


def test_auto_runs_a_window_on_its_engine_measured_faster(runtime_for):
    runtime, shape, loaded, _ = runtime_for("auto", torch_ms=200.0, engine_ms=150.0)
    runtime.prepare(shape)
    assert runtime.window_engine(shape) is loaded
    assert runtime.name == "onnxruntime" and runtime.engine_cached is True
    # another N has no engine (engine_build: never): PyTorch runs it
    assert runtime.window_engine(window_shape(4, (56, 70), "saddle_balanced", False)) is None
    runtime.wait(30)


def test_auto_keeps_torch_for_a_window_measured_slower_on_its_engine(runtime_for):
    runtime, shape, _, _ = runtime_for("auto", torch_ms=100.0, engine_ms=150.0)
    runtime.prepare(shape)
    assert runtime.window_engine(shape) is None
    assert runtime.name == "torch" and "faster than the onnxruntime engine" in runtime.status


def test_onnxruntime_by_name_runs_the_window_engine_even_if_slower(runtime_for):
    runtime, shape, loaded, _ = runtime_for("onnxruntime", torch_ms=100.0, engine_ms=150.0)
    runtime.prepare(shape)
    assert runtime.window_engine(shape) is loaded


def test_a_tampered_window_engine_is_not_run(runtime_for):
    runtime, shape, _, folder = runtime_for("auto", torch_ms=200.0, engine_ms=150.0)
    (folder / "model.onnx").write_bytes(b"other")
    runtime.prepare(shape)  # engine_build: never, so nothing is built either
    assert runtime.window_engine(shape) is None and runtime.name == "torch"


def test_a_one_shot_command_builds_a_window_engine_only_when_it_pays_off(runtime_for, monkeypatch):
    """No record of a window build: the estimate (8 windows of PyTorch's time plus the
    model's size) against 10 % of PyTorch's time over the windows left."""
    runtime, _, _, _ = runtime_for("auto", torch_ms=200.0, engine_ms=150.0)
    built = []
    monkeypatch.setattr(runtime, "build_now", built.append)
    other = window_shape(4, (56, 70), "first", False)
    choice = runtime.window_build_choice(other, windows_left=10, torch_s=1.0)
    assert choice is not None and not choice.build and not choice.measured and built == []
    choice = runtime.window_build_choice(other, windows_left=100, torch_s=1.0)
    assert choice is not None and choice.build and built == [other]


@pytest.mark.parametrize(("backend", "waits"), [("auto", False), ("onnxruntime", True)])
def test_auto_never_builds_a_vggt_window_engine(tmp_path, monkeypatch, backend, waits):
    """vggt_1b's export takes minutes and many GB: under ``auto`` an ``eager`` runtime only
    loads a cached engine (PyTorch serves otherwise), on first use too, and a one-shot
    command is not offered a build; asked for by name it is eager. Depth Anything 3
    under ``auto`` stays eager."""
    monkeypatch.setattr(engine_cache, "_backend_version", lambda backend: "1.0")
    torch_runtime = TorchRuntime(torch.nn.Linear(2, 2), channels_last=False)
    shape = window_shape(3, (56, 70), NO_REFERENCE, False)
    calls: list = []
    for model_type, held in (("vggt_1b", waits), (SMALL, True)):
        options = PredictorOptions(
            model_type, random_weights=True, backend=backend, engine_build="eager", device="cpu"
        )
        runtime = CachedEngineRuntime(
            "onnxruntime", options, torch_runtime, torch.float32, cache_dir=tmp_path
        )
        calls.clear()
        monkeypatch.setattr(runtime, "_get_engine", lambda s, build, **kw: calls.append(build))
        monkeypatch.setattr(
            runtime, "_in_background", lambda s, build: calls.append(("background", build))
        )
        runtime.prepare(shape)
        assert calls == ([True] if held else [False]), model_type
        if not held:
            calls.clear()
            runtime._started.clear()
            assert runtime.window_engine(shape) is None
            assert calls == [("background", False)]  # loads a cached one only
            assert runtime.window_build_choice(shape, windows_left=10**6, torch_s=60.0) is None


@pytest.mark.parametrize(
    ("change", "loads"),
    [("none", True), ("altered", False), ("missing", False), ("extra", False), ("outside", False)],
)
def test_an_engine_runs_only_with_the_data_files_its_build_recorded(
    runtime_for, caplog, change, loads
):
    """An ONNX graph with external data (``model.onnx.data``: VGGT's weights) reads that
    file when loaded: the key file records its SHA-256, and an altered or missing one,
    a file the build did not record, or a record naming a path outside the folder is
    refused like an altered graph."""
    runtime, shape, loaded, folder = runtime_for("onnxruntime", torch_ms=200.0, engine_ms=150.0)
    data = folder / "model.onnx.data"
    data.write_bytes(b"weights")
    record = json.loads((folder / "key.json").read_text())
    record["data_sha256"] = {"model.onnx.data": hashlib.sha256(b"weights").hexdigest()}
    if change == "altered":
        data.write_bytes(b"weightz")
    elif change == "missing":
        data.unlink()
    elif change == "extra":
        (folder / "more.data").write_bytes(b"")
    elif change == "outside":
        record["data_sha256"]["../model.onnx.data"] = record["data_sha256"]["model.onnx.data"]
    (folder / "key.json").write_text(json.dumps(record))
    with caplog.at_level("WARNING", logger="dpt_ros.runtime.engine_cache"):
        runtime.prepare(shape)  # engine_build: never, so nothing is built either
    assert (runtime.window_engine(shape) is loaded) is loads
    said = {
        "none": None,
        "altered": "its model.onnx.data is not the one built",
        "missing": "its model.onnx.data is missing or unreadable",
        "extra": "it holds more.data, which its build did not record",
        "outside": "its key file records a data file outside its folder",
    }[change]
    if said is None:
        assert "unusable" not in caplog.text
    else:
        assert f"unusable: {said}" in caplog.text


def test_predict_under_auto_offers_no_vggt_build(tmp_path, monkeypatch, capsys):
    """``dpt-ros predict`` decides after its first image whether a build pays off over
    the images left: under ``auto`` VGGT is never built (its refusal is the one backend
    line); Depth Anything 3 in the same place is built when it pays off."""
    from types import SimpleNamespace

    from dpt_ros.cli import predict

    monkeypatch.setattr(engine_cache, "_backend_version", lambda backend: "1.0")
    torch_runtime = TorchRuntime(torch.nn.Linear(2, 2), channels_last=False)
    for model_type, builds in (("vggt_1b", False), (SMALL, True)):
        options = PredictorOptions(
            model_type, random_weights=True, backend="auto", engine_build="eager", device="cpu"
        )
        runtime = CachedEngineRuntime(
            "onnxruntime", options, torch_runtime, torch.float32, cache_dir=tmp_path
        )
        built: list = []
        monkeypatch.setattr(runtime, "build_now", built.append)
        fake = SimpleNamespace(runtime=runtime, options=options, input_size=lambda hw: (56, 70))
        predict._choose_backend(fake, (48, 64), frames_left=10**6, torch_s=60.0)
        line = capsys.readouterr().err.strip()
        assert bool(built) == builds, (model_type, line)
        if not builds:
            assert line.startswith("dpt-ros: backend: torch (backend auto builds no vggt_1b")
