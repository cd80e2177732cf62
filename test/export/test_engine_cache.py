"""The engine cache behind ``backend: auto``: keys, atomic builds, reuse, fallback.

Real exports (ONNX Runtime on the CPU) of dpt_hybrid with its seeded random weights at
64x64, into one cache folder per module; the fidelity of the auto backend against the
goldens is in test_models.py. The TensorRT path runs where a GPU is (test_cuda.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import pytest
import torch
from helpers import scaled

from dpt_ros.models import Predictor
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.weights.digest import weights_digest
from dpt_ros.runtime.engine_cache import (
    EngineKey,
    build_engine,
    cached_engine,
    engine_cache_dir,
    engine_key,
    resolve_backend,
)

CPU = torch.device("cpu")
SHAPE = (1, 3, 64, 64)


def _options(**changes) -> PredictorOptions:
    fields = {"model_type": "dpt_hybrid", "random_weights": True, "device": "cpu"}
    return PredictorOptions(**{**fields, **changes})


def _predictor(cache_dir, **changes) -> Predictor:
    """The engine path asked for by name (``auto`` keeps PyTorch where a build measured
    it faster: test_auto_reads_the_figures_its_build_recorded), built at the warm-up."""
    defaults = {"network_size": (64, 64), "precision": "fp32", "backend": "onnxruntime"}
    options = _options(**{**defaults, "engine_build": "eager", **changes})
    return Predictor(options, cache_dir=cache_dir, progress=False)


def _set_figures(folder, torch_ms: float, engine_ms: float) -> None:
    """Rewrites the figures a build recorded in its key file."""
    import json

    record = json.loads((folder / "key.json").read_text())
    record.update(torch_ms=torch_ms, onnxruntime_ms=engine_ms)
    (folder / "key.json").write_text(json.dumps(record))


@pytest.fixture(scope="module")
def cache_dir(module_tmp):
    return module_tmp("dpt_cache")


@pytest.fixture(scope="module")
def first_start(cache_dir):
    """A predictor whose warm-up built the 64x64 engine: (predictor, its output on a
    seeded frame, PyTorch's output on the same frame)."""
    predictor = _predictor(cache_dir)
    assert predictor.engine_cached is None  # nothing built before the warm-up
    predictor.warm_up((64, 64))
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    reference = _predictor(cache_dir, backend="torch").predict(frame)
    return predictor, predictor.predict(frame), reference, frame


def test_auto_resolves_to_onnxruntime_on_this_cpu():
    assert resolve_backend(_options(), CPU, torch.float32) == "onnxruntime"
    # Engines are float32: reduced precision stays on PyTorch's autocast.
    assert resolve_backend(_options(), CPU, torch.bfloat16) == "torch"
    # torch.compile asks for PyTorch.
    assert resolve_backend(_options(compile="default"), CPU, torch.float32) == "torch"
    assert resolve_backend(_options(backend="torch"), CPU, torch.float32) == "torch"


def test_auto_is_the_default():
    assert PredictorOptions("dpt_hybrid").backend == "auto"
    # Frames never wait for a build: PyTorch serves until the engine takes over.
    assert PredictorOptions("dpt_hybrid").engine_build == "lazy"


def test_option_problems_are_named():
    problems = _options(engine="x.onnx", engine_build="sometimes").problems()
    assert any("needs backend onnxruntime or tensorrt, not auto" in p for p in problems)
    assert any("unknown engine_build 'sometimes'" in p for p in problems)


def test_first_start_builds_and_matches_torch(first_start):
    predictor, got, reference, _ = first_start
    assert predictor.backend == "onnxruntime"
    assert predictor.engine_cached is False
    assert np.abs(got - reference).max() <= 1e-4 * np.abs(reference).max()


def test_a_build_records_its_figures_beside_its_key(first_start, cache_dir):
    """The build times PyTorch and the engine on the engine's shape and records them
    with its own wall time; they are not part of the key (the engine is still found)."""
    import json

    (folder,) = [p for p in engine_cache_dir(cache_dir).iterdir() if "_b1_" in p.name]
    record = json.loads((folder / "key.json").read_text())
    assert record["build_s"] > 0 and record["torch_ms"] > 0 and record["onnxruntime_ms"] > 0
    assert not (folder / "timing.json").exists()
    key = engine_key(_options(), "onnxruntime", SHAPE, CPU, torch.float32, cache_dir=cache_dir)
    assert cached_engine(engine_cache_dir(cache_dir), key) == folder / "model.onnx"


def test_auto_reads_the_figures_its_build_recorded(first_start, cache_dir):
    """On this CPU onnxruntime and PyTorch are within a few per cent of each other:
    auto runs what the build measured faster, and a backend asked for by name runs."""
    (folder,) = [p for p in engine_cache_dir(cache_dir).iterdir() if "_b1_" in p.name]
    _set_figures(folder, torch_ms=10.0, engine_ms=12.5)
    auto = _predictor(cache_dir, backend="auto", engine_build="never")
    auto.warm_up((64, 64))
    assert auto.backend == "torch" and not auto.runtime.has_engine(SHAPE)
    assert auto.backend_status == "torch (faster than the onnxruntime engine: 10.0 vs 12.5 ms)"
    named = _predictor(cache_dir, engine_build="never")
    named.warm_up((64, 64))
    assert named.backend == "onnxruntime" and named.engine_cached is True
    _set_figures(folder, torch_ms=12.5, engine_ms=10.0)
    auto = _predictor(cache_dir, backend="auto", engine_build="never")
    auto.warm_up((64, 64))
    assert auto.backend == "onnxruntime" and auto.backend_status == "onnxruntime (cached engine)"


def test_second_start_reuses_the_cached_engine(first_start, cache_dir):
    _, first, _, frame = first_start
    (folder,) = [p for p in engine_cache_dir(cache_dir).iterdir() if p.is_dir()]
    built = (folder / "model.onnx").stat().st_mtime_ns
    again = _predictor(cache_dir)
    again.warm_up((64, 64))
    assert again.backend == "onnxruntime" and again.engine_cached is True
    assert (folder / "model.onnx").stat().st_mtime_ns == built
    np.testing.assert_array_equal(again.predict(frame), first)
    # Nothing half-written is left beside the engine.
    assert [p.name for p in engine_cache_dir(cache_dir).iterdir()] == [folder.name]


def test_never_uses_only_cached_engines(first_start, cache_dir):
    never = _predictor(cache_dir, engine_build="never", network_size=(96, 64))
    never.warm_up((64, 96))
    assert never.engine_cached is None  # no engine for 96x64, and none built
    assert not any("96x64" in p.name for p in engine_cache_dir(cache_dir).iterdir())
    assert never.predict(np.zeros((64, 96, 3), np.uint8)).shape == (64, 96)
    never.runtime.prepare(SHAPE)  # the cached 64x64 engine is used
    assert never.engine_cached is True and never.backend == "onnxruntime"


def test_lazy_builds_in_the_background_while_torch_runs(first_start, cache_dir):
    predictor, _, _, _ = first_start
    lazy = _predictor(cache_dir, engine_build="lazy")
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    lazy.warm_up((64, 64), batch=2)  # starts the batch-2 build, does not wait
    assert lazy.backend == "torch"
    assert lazy.backend_status == "torch (onnxruntime engine building)"
    torch_out = lazy.infer(frames).inverse_depth  # PyTorch serves until the engine is ready
    lazy.runtime.wait()
    assert lazy.backend == "onnxruntime" and lazy.engine_cached is False
    assert lazy.backend_status == "onnxruntime (engine built this start, switched from torch)"
    np.testing.assert_allclose(lazy.infer(frames).inverse_depth, torch_out, rtol=0, atol=1e-4)
    assert any("_64x64_b2_" in p.name for p in engine_cache_dir(cache_dir).iterdir())


def test_two_builds_at_once_both_succeed(tmp_path):
    """Two engines built at the same time in one process (depth and segmentation, or
    two camera sizes): torch.export keeps tracing state in globals, so concurrent
    exports failed ("ProxyTorchDispatchMode slot already occupied", KeyError 'custom')
    and the node fell back to PyTorch; they now take turns."""
    import threading
    from pathlib import Path

    keys = [_key(), _key((1, 3, 96, 64))]
    results: dict[int, object] = {}

    def build(i: int) -> None:
        try:
            results[i] = build_engine(tmp_path, keys[i], _options())
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results[i] = exc

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(isinstance(r, Path) for r in results.values()) and len(results) == 2, results
    assert all(cached_engine(tmp_path, k) is not None for k in keys)


def test_key_changes_with_everything_an_engine_depends_on(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"first")
    options = _options(random_weights=False, weights=str(weights))
    base = engine_key(options, "onnxruntime", SHAPE, CPU, torch.float32, cache_dir=tmp_path)
    assert base.weights == weights_digest(weights, tmp_path)
    assert base.backend_version and "torch" in base.exporter and base.gpu == ""
    others = [
        dataclasses.replace(base, model_type="dpt_large"),
        dataclasses.replace(base, input_shape=(2, 3, 64, 64)),
        dataclasses.replace(base, input_shape=(1, 3, 64, 96)),
        dataclasses.replace(base, precision="fp16"),
        dataclasses.replace(base, backend_version="0.0"),
        dataclasses.replace(base, gpu="another GPU"),
        dataclasses.replace(base, exporter="torch 0"),
    ]
    names = {k.folder_name() for k in [base, *others]}
    assert len(names) == len(others) + 1
    # Changed weights (new content, size and time): a new key.
    weights.write_bytes(b"second file")
    os.utime(weights, ns=(1, 1))
    changed = engine_key(options, "onnxruntime", SHAPE, CPU, torch.float32, cache_dir=tmp_path)
    assert changed.weights != base.weights and changed.folder_name() != base.folder_name()


def test_weights_hash_is_remembered_by_size_and_time(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"abc")
    first = weights_digest(weights, tmp_path)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    stat = weights.stat()
    # Same size and time, other bytes: the remembered hash (no re-read at each start).
    weights.write_bytes(b"xyz")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights_digest(weights, tmp_path) == first
    os.utime(weights, ns=(1, 2))
    assert weights_digest(weights, tmp_path) != first


def _key(shape=SHAPE) -> EngineKey:
    return engine_key(_options(), "onnxruntime", shape, CPU, torch.float32)


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    # A build that fails once its folder exists (here the exporter refuses the size:
    # 48 is not a multiple of 32) leaves no engine and no temporary folder.
    key = dataclasses.replace(_key(), input_shape=(1, 3, 48, 48))
    with pytest.raises(ValueError, match="multiples of 32"):
        build_engine(tmp_path, key, _options())
    assert list(tmp_path.iterdir()) == []
    assert cached_engine(tmp_path, key) is None


def test_a_folder_without_its_key_is_not_an_engine(tmp_path):
    key = _key()
    folder = tmp_path / key.folder_name()
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"half written")
    assert cached_engine(tmp_path, key) is None
    (folder / "key.json").write_text('{"other": "key"}')
    assert cached_engine(tmp_path, key) is None


def test_unusable_cache_falls_back_to_torch_with_one_warning(tmp_path, caplog):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    predictor = _predictor(blocked)
    with caplog.at_level(logging.WARNING, logger="dpt_ros"):
        predictor.warm_up((64, 64))
        out = predictor.predict(np.zeros((64, 64, 3), np.uint8))
        predictor.predict(np.zeros((64, 64, 3), np.uint8))
    assert predictor.backend == "torch" and predictor.engine_cached is None
    assert out.shape == (64, 64)
    warnings = [r for r in caplog.records if "running PyTorch instead" in r.getMessage()]
    assert len(warnings) == 1
    assert "onnxruntime engine for dpt_hybrid 1x3x64x64" in warnings[0].getMessage()


def test_bench_reports_the_resolved_backend_and_the_cached_engine(
    first_start, cache_dir, monkeypatch, capsys
):
    """A start after the one that built the engine: ``bench --json`` says which backend
    ran and that its engine came from the cache; ``--backend torch`` says torch."""
    import json

    from dpt_ros.cli.main import main

    monkeypatch.setenv("DPT_ROS_CACHE", str(cache_dir))
    (folder,) = [p for p in engine_cache_dir(cache_dir).iterdir() if "_b1_" in p.name]
    _set_figures(folder, torch_ms=12.5, engine_ms=10.0)  # the engine measured faster
    common = ["bench", "--device", "cpu", "--camera-size", "64x64", "--network-size", "64x64"]
    common += ["--iters", "1", "--warmup", "0", "--no-transformers", "--json"]
    figures = {}
    for backend in ("auto", "torch"):
        assert main([*common, "--backend", backend]) == 0
        figures[backend] = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["auto"]["backend"] == "onnxruntime"
    assert figures["auto"]["engine_cached"] is True
    assert figures["torch"]["backend"] == "torch" and figures["torch"]["engine_cached"] is None
    # The overhead comes from each frame's own stage timings: a share, with its spread.
    for f in figures.values():
        low, mid, high = (f[f"pipeline_overhead_fraction{s}"] for s in ("_p10", "", "_p90"))
        assert 0.0 <= low <= mid <= high < 1.0


def test_bench_overhead_is_a_share_of_each_frame():
    """Two medians measured apart gave -1.9 % (-106 % under load)."""
    from dpt_ros.cli.bench import _overhead

    frames = [
        {"decode": 1.0, "depth_model": 90.0, "download": 9.0},
        {"decode": 2.0, "depth_model": 60.0, "download": 38.0},  # a frame under load
        {"decode": 1.0, "depth_model": 95.0, "download": 4.0},
    ]
    figures = _overhead(frames)
    assert figures["pipeline_overhead_fraction"] == pytest.approx(0.10)
    assert figures["pipeline_overhead_fraction_p10"] == pytest.approx(0.05)
    assert figures["pipeline_overhead_fraction_p90"] == pytest.approx(0.40)


def _wait_for(condition, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_build_runs_in_a_child_process_while_this_one_loads_models(tmp_path):
    """torch.export keeps tracing state in module globals: an export in a thread of
    this process made a model load beside it die (KeyError: 'custom' in torch.fx).
    The export now runs in a child process; a model loads and predicts meanwhile."""
    from dpt_ros.runtime.engine_build import builds_running

    lazy = _predictor(tmp_path, engine_build="lazy")
    lazy.warm_up((64, 64))
    assert _wait_for(lambda: builds_running() == 1, 30)
    meanwhile = _predictor(tmp_path, backend="torch", model_type="dpt_hybrid_nyu")
    assert meanwhile.predict(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64)
    lazy.runtime.wait()
    assert builds_running() == 0
    assert lazy.backend == "onnxruntime" and lazy.engine_cached is False


def test_stop_builds_ends_a_running_build_and_keeps_nothing(tmp_path, caplog):
    from dpt_ros.runtime.engine_build import builds_running, stop_builds

    lazy = _predictor(tmp_path, engine_build="lazy")
    lazy.warm_up((64, 64))
    assert _wait_for(lambda: builds_running() == 1, 30)
    with caplog.at_level(logging.WARNING, logger="dpt_ros"):
        assert stop_builds(timeout=5.0) == 1
    assert builds_running() == 0
    assert not [r for r in caplog.records if "running PyTorch instead" in r.getMessage()]
    root = engine_cache_dir(tmp_path)
    assert [p.name for p in root.iterdir()] == []  # no engine, no temporary folder
    assert lazy.predict(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64)  # PyTorch


_ORPHAN_SCRIPT = """
import sys, threading, time
from dpt_ros.runtime import engine_build
request = dict(folder=sys.argv[1], model_type="dpt_hybrid", weights=None, random_weights=True,
               width=64, height=64, batch=1, backend="onnxruntime", precision="fp32",
               cache_dir=sys.argv[1])
threading.Thread(target=engine_build.run_build, args=(request,), daemon=True).start()
while not engine_build._CHILDREN:
    time.sleep(0.05)
print(next(iter(engine_build._CHILDREN)).pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_a_build_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """A node killed with SIGKILL mid-build leaves no export running behind it."""
    import signal
    import subprocess
    import sys

    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert _wait_for(lambda: not _alive(child), 10), "the build outlived its parent"


def test_a_transformers_folder_is_keyed_by_its_files(tmp_path):
    """A transformers folder as weights made the cache fail (IsADirectoryError) and
    PyTorch ran every frame; its key now comes from the digests of its files."""
    folder = tmp_path / "Depth-Anything-V2-Small-hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "depth_anything"}')
    (folder / "model.safetensors").write_bytes(b"first weights")
    options = _options(random_weights=False, weights=str(folder))
    first = engine_key(options, "onnxruntime", SHAPE, CPU, torch.float32, cache_dir=tmp_path)
    assert first.weights.startswith("folder:")
    (folder / "README.md").write_text("not read by the load: not in the key")
    same = engine_key(options, "onnxruntime", SHAPE, CPU, torch.float32, cache_dir=tmp_path)
    assert same == first
    (folder / "model.safetensors").write_bytes(b"other weights")
    changed = engine_key(options, "onnxruntime", SHAPE, CPU, torch.float32, cache_dir=tmp_path)
    assert changed.folder_name() != first.folder_name()


def test_a_damaged_engine_is_never_loaded_and_is_built_again(tmp_path, caplog):
    """An altered engine loaded silently (outputs 8.7 % off) and a truncated one was
    never rebuilt; engines are now checked against the SHA-256 recorded at build time."""
    built = _predictor(tmp_path)
    built.warm_up((64, 64))
    (folder,) = engine_cache_dir(tmp_path).iterdir()
    engine = folder / "model.onnx"
    data = bytearray(engine.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(b ^ 0x55 for b in data[middle : middle + 4096])
    engine.write_bytes(bytes(data))  # same size, other weights inside
    never = _predictor(tmp_path, engine_build="never")
    with caplog.at_level(logging.WARNING, logger="dpt_ros"):
        never.warm_up((64, 64))
    assert never.engine_cached is None  # PyTorch runs it
    assert any("SHA-256 differs" in r.getMessage() for r in caplog.records)
    engine.write_bytes(bytes(data[:middle]))  # truncated
    again = _predictor(tmp_path)
    again.warm_up((64, 64))
    assert again.engine_cached is False and again.backend == "onnxruntime"  # built anew
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    torch_out = _predictor(tmp_path, backend="torch").predict(frame)
    np.testing.assert_allclose(again.predict(frame), torch_out, rtol=0, atol=1e-4)


def test_the_torch_copy_is_freed_once_engines_run_and_reloaded_when_needed(first_start, cache_dir):
    """On a Jetson the GPU shares the RAM: the PyTorch model beside a verified engine is
    a second copy of the weights. It is freed, and loaded again for a shape that has no
    engine yet (or a failing engine)."""
    started = _predictor(cache_dir, engine_build="never")
    assert started.runtime.torch_loaded  # loaded: no engine runs yet
    started.warm_up((64, 64))  # the cached engine of first_start
    assert started.engine_cached is True and not started.runtime.torch_loaded
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(started.predict(frame), first_start[1], rtol=0, atol=1e-5)
    assert not started.runtime.torch_loaded  # the engine ran it
    other = started.predict(np.zeros((64, 96, 3), np.uint8))  # no engine for 64x96
    assert other.shape == (64, 96) and started.runtime.torch_loaded


def test_choosing_the_backend_does_not_import_the_exporter():
    """resolve_backend imported onnx and onnxscript to see whether they are installed:
    1.5 s of CPU (7 s of a loaded machine's node start) that only a build, in its own
    process, needs."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from dpt_ros.runtime.engine_cache import resolve_backend\n"
        "from dpt_ros.models.options import PredictorOptions\n"
        "b = resolve_backend(PredictorOptions('dpt_hybrid'), torch.device('cpu'), torch.float32)\n"
        "print(b, sorted(m for m in ('onnx', 'onnxscript') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split() == ["onnxruntime", "[]"]
