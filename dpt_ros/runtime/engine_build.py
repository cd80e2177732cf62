"""Engine builds in a child process: ``python -m dpt_ros.runtime.engine_build REQUEST``.

The engine cache (:mod:`dpt_ros.runtime.engine_cache`) never exports in the process that
serves frames. ``torch.export`` keeps tracing state in module globals, so an export in a
thread of that process collides with anything else torch does there at the same time
(a model load died in ``torch.fx`` with ``KeyError: 'custom'``), and its native threads
abort the interpreter when it exits under them ("terminate called without an active
exception"). A child process shares none of that state, can be stopped at once with
SIGTERM when the node stops, and cannot take the node down when an exporter crashes.

The parent (:func:`run_build`) starts the child with a JSON request, relays the child's
log records to its own logger, and turns a failure into the exception the child raised
(``ValueError`` or ``OSError``, with the child's message). The child exits by itself
when its parent is gone (the kernel signals it, see :func:`_exit_with_parent`), so a
killed node leaves no build running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dpt_ros.models.registry import get_spec
from dpt_ros.models.weights.checkpoint import load_model, random_weights_already_announced
from dpt_ros.runtime.export import (
    build_tensorrt_engine,
    example_cameras,
    export_onnx,
    export_window_onnx,
    external_data_path,
)
from dpt_ros.runtime.runtimes import EngineRuntime, TorchRuntime, load_backend
from dpt_ros.runtime.window_runtimes import (
    NO_REFERENCE,
    VGGT_WINDOW_OUTPUTS,
    load_window_backend,
)

_LOG = logging.getLogger("dpt_ros.runtime.engine_cache")

#: The child's last stderr line on failure: ``<prefix><ExceptionType>: <message>``.
_FAILURE_PREFIX = "ENGINE_BUILD_FAILED "
#: Exit status of a child whose build raised OSError (the cache cannot be written).
_EXIT_OSERROR = 3
#: prctl option: the signal this process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
#: How often the child checks that its parent is alive (seconds).
_PARENT_POLL_S = 0.5

#: Live build processes of this process (the parent side).
_CHILDREN: set[subprocess.Popen[str]] = set()
_CHILDREN_LOCK = threading.Lock()
#: Name prefix of the engine cache's background threads that load or build engines.
BUILD_THREAD_PREFIX = "dpt_engine_"
#: Set while :func:`stop_builds` runs: no new child starts.
_STOPPING = threading.Event()
#: Build processes ended because their :func:`run_build` was interrupted, since
#: :func:`stop_builds` last counted them.
_INTERRUPTED = 0
#: How long a stopped build process gets to end after SIGTERM before SIGKILL (seconds).
_STOP_TIMEOUT_S = 5.0
#: Written by the child beside the engine: PyTorch's and the engine's time a run
#: (:func:`time_runtimes`); the parent moves it into the engine's key file.
TIMING_FILE = "timing.json"
#: Timed runs of each runtime after the untimed first one.
TIMED_RUNS = 2
_ENGINE_FILE = {"onnxruntime": "model.onnx", "tensorrt": "model.engine"}


class BuildStopped(RuntimeError):
    """The build was stopped on purpose (:func:`stop_builds`): not a failure."""


def run_build(request: dict[str, Any]) -> None:
    """Runs one engine build in a child process and waits for it.

    Args:
        request: what to build (see :func:`_build`): ``folder``, ``model_type``,
            ``weights``, ``random_weights``, ``width``, ``height``, ``batch``,
            ``backend``, ``precision``, ``cache_dir``, and for the timing of both
            runtimes ``device`` and ``channels_last``; a window engine's ``window``
            (``views``, ``reference_view``, ``known_cameras``).

    Raises:
        ValueError: the export, its check or the TensorRT build failed.
        OSError: the child could not write the engine folder, or could not start.
        BuildStopped: :func:`stop_builds` ended it.
    """
    global _INTERRUPTED
    if _STOPPING.is_set():
        raise BuildStopped("engine builds are being stopped")
    command = [sys.executable, "-m", __name__, json.dumps(request), str(os.getpid())]
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        # Its own process group: a Ctrl-C in the terminal goes to the node, which
        # stops the build itself (and does not see the child's traceback).
        start_new_session=True,
    )
    with _CHILDREN_LOCK:
        _CHILDREN.add(child)
    failure = ""
    try:
        assert child.stderr is not None  # stderr=PIPE
        for line in child.stderr:
            failure = _relay(line.rstrip("\n")) or failure
        code = child.wait()
    except BaseException:
        # Interrupted (Ctrl-C or SIGTERM in the node's start-up): the child goes first,
        # so that nothing writes into the build folder the caller removes next.
        _end(child, _STOP_TIMEOUT_S)
        with _CHILDREN_LOCK:
            _INTERRUPTED += 1
        raise
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(child)
    if code == 0:
        return
    if code < 0 and _STOPPING.is_set():
        raise BuildStopped("engine build stopped")
    if not failure:
        failure = f"the engine build process ended with status {code} and no message"
    if code == _EXIT_OSERROR:
        raise OSError(failure)
    raise ValueError(failure)


def _relay(line: str) -> str | None:
    """Logs one stderr line of the child at its level; returns the failure message
    when the line reports the build's failure."""
    if line.startswith(_FAILURE_PREFIX):
        return line[len(_FAILURE_PREFIX) :]
    level, _, message = line.partition(" ")
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        _LOG.log(logging.getLevelName(level), "engine build: %s", message)
    elif line.strip():
        _LOG.debug("engine build: %s", line)
    return None


def builds_running() -> int:
    """How many build processes this process has started and not yet seen end."""
    with _CHILDREN_LOCK:
        return sum(1 for c in _CHILDREN if c.poll() is None)


def stop_builds(timeout: float = _STOP_TIMEOUT_S) -> int:
    """Stops every running build process: SIGTERM, then SIGKILL after ``timeout``
    seconds. Builds asked for while it runs do not start. A stopped build leaves no
    engine behind (builds are atomic) and runs again at the next start.

    Returns:
        How many build processes were running, plus those ended since the last call
        because their :func:`run_build` was interrupted (KeyboardInterrupt).
    """
    global _INTERRUPTED
    _STOPPING.set()
    try:
        with _CHILDREN_LOCK:
            children = [c for c in _CHILDREN if c.poll() is None]
            interrupted, _INTERRUPTED = _INTERRUPTED, 0
        for child in children:
            child.terminate()
        for child in children:
            _end(child, timeout, terminated=True)
        _join_build_threads(timeout)
    finally:
        _STOPPING.clear()
    return len(children) + interrupted


def _end(child: subprocess.Popen[str], timeout: float, terminated: bool = False) -> None:
    """Ends ``child``: SIGTERM (unless ``terminated``), then SIGKILL after ``timeout`` s."""
    if not terminated:
        child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _join_build_threads(timeout: float) -> None:
    """Waits for the cache's background threads, which end once their child has. A thread
    that ``start()`` has registered but that does not run yet cannot be joined
    (RuntimeError): it is waited for until it runs, within ``timeout``."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith(BUILD_THREAD_PREFIX) and thread is not threading.current_thread():
            while True:
                try:
                    thread.join(max(0.0, deadline - time.monotonic()))
                    break
                except RuntimeError:  # started, not running yet
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)


# --------------------------------------------------------------------------- the child


def _build(request: dict[str, Any]) -> None:
    """Exports (and for TensorRT builds) the engine into ``request["folder"]``."""
    folder = Path(request["folder"])
    common = {
        "weights": request["weights"],
        "random_weights": request["random_weights"],
        "width": request["width"],
        "height": request["height"],
        "check": None,  # against PyTorch where onnxruntime is installed
        "cache_dir": request["cache_dir"],
        "progress": False,
    }
    window = request.get("window")
    # The parent announced the model's random weights when it loaded it.
    with random_weights_already_announced():
        if window:
            reference = window["reference_view"]
            export_window_onnx(
                request["model_type"],
                folder / "model.onnx",
                views=window["views"],
                # a strategy that changes nothing (under 3 views, known cameras)
                reference_view="first" if reference == NO_REFERENCE else reference,
                known_cameras=window["known_cameras"],
                **common,
            )
        else:
            export_onnx(
                request["model_type"], folder / "model.onnx", batch=request["batch"], **common
            )
    if request["backend"] == "tensorrt":
        _LOG.info("step 2/2: building the TensorRT %s engine", request["precision"])
        onnx = folder / "model.onnx"
        build_tensorrt_engine(onnx, folder / "model.engine", precision=request["precision"])
        for name in ("model.onnx", "model.onnx.json"):
            (folder / name).unlink()
        # the engine holds the weights: the ONNX file's external data goes too
        external_data_path(onnx).unlink(missing_ok=True)
    try:
        timing = (time_window_runtimes if window else time_runtimes)(request, folder)
    except Exception as exc:  # the engine is built: without figures auto assumes it is faster
        _LOG.warning("could not time PyTorch against the engine: %s: %s", type(exc).__name__, exc)
        return
    (folder / TIMING_FILE).write_text(json.dumps(timing), encoding="utf-8")


def time_runtimes(request: dict[str, Any], folder: Path) -> dict[str, float]:
    """Times PyTorch and the engine just built on the engine's input shape, as the
    predictor would run them (``backend: auto`` keeps the faster one).

    Each runs once untimed (first-run costs: oneDNN primitives, CUDA kernels, lazy
    allocations), then :data:`TIMED_RUNS` times, alternating with the other, so that a
    change of the machine's load hits both; the fastest run of each counts.

    Returns:
        ``{"torch_ms": ..., "<backend>_ms": ...}``: milliseconds per run of the whole
        (B, 3, H, W) input.
    """
    backend = request["backend"]
    device = torch.device(request.get("device", "cpu"))
    dtype = torch.float16 if request["precision"] == "fp16" else torch.float32
    name = _ENGINE_FILE[backend]
    engine = EngineRuntime(
        load_backend(backend, folder / name, request["model_type"], device), backend
    )
    with random_weights_already_announced():
        model = load_model(
            request["model_type"],
            request["weights"],
            random_weights=request["random_weights"],
            cache_dir=request["cache_dir"],
            progress=False,
        ).to(device)
    runtime = TorchRuntime(model, dtype, "none", request.get("channels_last", True))
    shape = (request["batch"], 3, request["height"], request["width"])
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)).to(device) * 2 - 1
    timing = _time_in_turns(
        [("torch", lambda: runtime(x)), (backend, lambda: engine(x))], backend, device
    )
    _LOG.info(
        "timed on %s: torch %.1f ms, %s %.1f ms a run",
        "x".join(map(str, shape)),
        timing["torch_ms"],
        backend,
        timing[f"{backend}_ms"],
    )
    return timing


def _time_in_turns(
    order: list[tuple[str, Callable[[], Any]]], backend: str, device: torch.device
) -> dict[str, float]:
    """Each run once untimed, then :data:`TIMED_RUNS` times in turns; the fastest of
    each, ``{"torch_ms": ..., "<backend>_ms": ...}``."""
    runs: dict[str, list[float]] = {"torch": [], backend: []}
    with torch.inference_mode():
        for step in range(1 + TIMED_RUNS):
            for label, run in order:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                run()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if step:
                    runs[label].append((time.perf_counter() - start) * 1e3)
    return {f"{label}_ms": round(min(values), 2) for label, values in runs.items()}


def time_window_runtimes(request: dict[str, Any], folder: Path) -> dict[str, float]:
    """As :func:`time_runtimes` for a window engine: PyTorch's window forward (at the
    predictor's precision) against the engine on the engine's window, in turns.

    Returns:
        ``{"torch_ms": ..., "<backend>_ms": ...}``: milliseconds per window.
    """
    backend = request["backend"]
    device = torch.device(request.get("device", "cpu"))
    dtype = torch.float16 if request["precision"] == "fp16" else torch.float32
    window = request["window"]
    model_type = request["model_type"]
    engine = load_window_backend(backend, folder / _ENGINE_FILE[backend], model_type, device)
    with random_weights_already_announced():
        network = load_model(
            model_type,
            request["weights"],
            random_weights=request["random_weights"],
            cache_dir=request["cache_dir"],
            progress=False,
        ).to(device)
    reference = window["reference_view"]
    reference = "first" if reference == NO_REFERENCE else reference
    spec = get_spec(model_type)
    torch_window = spec.family.window_module(
        spec, network, reference, window["known_cameras"]
    ).eval()
    views, h, w = window["views"], request["height"], request["width"]
    x = torch.rand((1, views, 3, h, w), generator=torch.Generator().manual_seed(1)) * 2 - 1
    args: tuple[torch.Tensor, ...] = (x.to(device),)
    if window["known_cameras"]:
        args += tuple(v.to(device) for v in example_cameras(views, h, w, seed=1))

    def run_torch() -> Any:
        on = dtype != torch.float32
        with torch.autocast(device.type, dtype=dtype, enabled=on):
            return torch_window(*args)

    def run_engine() -> Any:
        if engine.output_names == VGGT_WINDOW_OUTPUTS:  # the network's window()
            return engine.window(args[0])
        cameras, intrinsics = args[1:] if len(args) == 3 else (None, None)
        return engine.forward_window(args[0], cameras, intrinsics, reference_view=reference)

    timing = _time_in_turns([("torch", run_torch), (backend, run_engine)], backend, device)
    _LOG.info(
        "timed %d views of %dx%d: torch %.1f ms, %s %.1f ms a window",
        views,
        w,
        h,
        timing["torch_ms"],
        backend,
        timing[f"{backend}_ms"],
    )
    return timing


def _exit_with_parent(parent: int) -> None:
    """Ends this process when the parent is gone (killed with SIGKILL, crashed).

    On Linux the kernel does it (``PR_SET_PDEATHSIG``): a thread that polls cannot run
    while an exporter holds the GIL in native code. Elsewhere a thread polls.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        linux = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        linux = False
    if os.getppid() != parent:  # gone before the kernel was asked to watch it
        os._exit(1)
    if not linux:
        threading.Thread(target=_poll_parent, args=(parent,), daemon=True).start()


def _poll_parent(parent: int) -> None:
    while True:
        threading.Event().wait(_PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """The child: builds the engine the JSON request describes; exit status 0 when
    built, 3 on OSError, 1 on any other failure (the last stderr line says why)."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s", force=True
    )
    _exit_with_parent(int(args[1]) if len(args) > 1 else os.getppid())
    try:
        _build(json.loads(args[0]))
    except OSError as exc:
        print(f"{_FAILURE_PREFIX}{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return _EXIT_OSERROR
    except Exception as exc:  # every exporter failure is reported to the parent
        print(f"{_FAILURE_PREFIX}{exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
