"""Engines built once, kept in the cache directory and reused: the ``auto`` backend.

``backend: auto`` runs the fastest backend this machine has (:func:`resolve_backend`).
An engine backend without an engine file exports (ONNX Runtime) or builds (TensorRT)
one for each network input shape the camera needs and keeps it in
``$DPT_ROS_CACHE/engines`` (``~/.cache/dpt_ros/engines``), one folder per
:class:`EngineKey`: the weights' SHA-256 and the model type, the input shape (batch and
network size), the precision, the backend and its version, the GPU for TensorRT, and the
exporter's versions. A later start with the same key loads the engine without building;
any change of the key builds a new one. A build writes into a hidden temporary folder
that is renamed into place when complete, so a crash mid-build leaves no engine behind
that a later start would read.

:class:`CachedEngineRuntime` is the runtime: it holds the torch model (the source of
every engine, and the fallback), runs each input shape on its engine once there is one,
and on PyTorch until then. When an engine cannot be built (an unsupported operator, no
disk space, an unwritable cache) it logs one warning and runs PyTorch from then on.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dpt_ros import __version__
from dpt_ros.models.engine_build import BUILD_THREAD_PREFIX, BuildStopped, run_build
from dpt_ros.models.options import ENGINE_BACKENDS, PredictorOptions
from dpt_ros.models.registry import get_spec
from dpt_ros.models.runtimes import (
    EngineRuntime,
    PathLike,
    TorchRuntime,
    import_tensorrt,
    load_backend,
    read_sidecar,
    sidecar_path,
)
from dpt_ros.models.weights.checkpoint import resolve_weights
from dpt_ros.models.weights.digest import sha256_file, weights_digest
from dpt_ros.models.weights.download import default_cache_dir

_LOG = logging.getLogger(__name__)

#: Folder of the engine cache inside the cache directory.
ENGINES_SUBDIR = "engines"
#: Written last into an engine folder: its key. A folder without it is not an engine.
_KEY_FILE = "key.json"
_ENGINE_FILES = {"onnxruntime": "model.onnx", "tensorrt": "model.engine"}


def engine_cache_dir(cache_dir: PathLike | None = None) -> Path:
    """Where engines are kept: ``<cache_dir>/engines``, by default under
    ``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``."""

    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / ENGINES_SUBDIR


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _onnxruntime_runs_on(device: torch.device) -> bool:
    """onnxruntime and the ONNX exporter are installed, and onnxruntime has a provider
    for ``device`` (the CPU, or CUDA with onnxruntime-gpu)."""
    if not all(_importable(n) for n in ("onnxruntime", "onnx", "onnxscript")):
        return False
    if device.type != "cuda":
        return True
    # optional dependency: onnxruntime
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def resolve_backend(options: PredictorOptions, device: torch.device, dtype: torch.dtype) -> str:
    """The backend that ``options.backend`` means on ``device`` at ``dtype``.

    ``auto`` is, in order: ``tensorrt`` where ``tensorrt`` imports and the device is
    CUDA (fp16 or fp32); ``onnxruntime`` at fp32 where it imports with a provider for
    the device (its engines are float32: a reduced precision stays on PyTorch's
    autocast); else ``torch``. A ``compile`` mode asks for PyTorch: ``auto`` is then
    ``torch``. Other values are returned as they are.
    """
    if options.backend != "auto":
        return options.backend
    if options.compile != "none":
        return "torch"
    if device.type == "cuda" and dtype in (torch.float16, torch.float32):
        if _importable("tensorrt"):
            return "tensorrt"
    if dtype == torch.float32 and _onnxruntime_runs_on(device):
        return "onnxruntime"
    return "torch"


@dataclasses.dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; engines with different keys are different files.

    Attributes:
        model_type: registry name.
        weights: the weights file's SHA-256, or ``random`` (the seeded random weights).
        input_shape: (B, 3, H, W) the engine takes.
        precision: ``fp32`` or ``fp16`` (TensorRT).
        backend: ``onnxruntime`` or ``tensorrt``.
        backend_version: the version of that package.
        gpu: the GPU's name and compute capability (TensorRT), else empty.
        exporter: the torch and dpt_ros versions that made the graph.
    """

    model_type: str
    weights: str
    input_shape: tuple[int, ...]
    precision: str
    backend: str
    backend_version: str
    gpu: str
    exporter: str

    def folder_name(self) -> str:
        """``<model>_<W>x<H>_b<B>_<backend>_<precision>_<digest>``."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        b, _, h, w = self.input_shape
        return f"{self.model_type}_{w}x{h}_b{b}_{self.backend}_{self.precision}_{digest}"

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "input_shape": list(self.input_shape)}


def _backend_version(backend: str) -> str:
    if backend == "tensorrt":
        return str(import_tensorrt().__version__)
    # optional dependency: onnxruntime
    import onnxruntime

    return str(onnxruntime.__version__)


def _gpu(backend: str, device: torch.device) -> str:
    if backend != "tensorrt":
        return ""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor})"


def engine_key(
    options: PredictorOptions,
    backend: str,
    input_shape: tuple[int, ...],
    device: torch.device,
    dtype: torch.dtype,
    *,
    cache_dir: PathLike | None = None,
    progress: bool = True,
) -> EngineKey:
    """The key of the ``backend`` engine for ``options`` and ``input_shape``
    ((B, 3, H, W)); resolves (and may download) the weights file to hash it."""

    if options.random_weights:
        weights = "random"
    else:
        path = resolve_weights(get_spec(options.model_type), options.weights, cache_dir, progress)
        # The index the weights' verification fills: a start hashes the file once.
        weights = weights_digest(path, engine_cache_dir(cache_dir).parent)
    precision = "fp16" if backend == "tensorrt" and dtype == torch.float16 else "fp32"
    return EngineKey(
        model_type=options.model_type,
        weights=weights,
        input_shape=tuple(int(d) for d in input_shape),
        precision=precision,
        backend=backend,
        backend_version=_backend_version(backend),
        gpu=_gpu(backend, device),
        exporter=f"torch {torch.__version__}, dpt_ros {__version__}",
    )


def cached_engine(root: Path, key: EngineKey) -> Path | None:
    """The complete, intact engine of ``key`` in the cache ``root``, or None."""
    path, _ = _cached_engine_state(root, key)
    return path


def _cached_engine_state(root: Path, key: EngineKey) -> tuple[Path | None, str | None]:
    """(the engine of ``key``, None) when it is complete and intact; (None, why) when a
    folder for ``key`` is there but unusable; (None, None) when there is none.

    An engine is intact when its file's SHA-256 equals the one recorded when it was
    built: a truncated or altered engine would otherwise load (or fail to) at every
    start, and an altered one gives other outputs without a word.
    """
    folder = root / key.folder_name()
    if not folder.exists():
        return None, None
    key_file = folder / _KEY_FILE
    problem = _not_a_cache_file(key_file, root)
    if problem and os.path.lexists(key_file):
        return None, problem
    try:
        stored = json.loads(key_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "its key file is missing or unreadable (an interrupted build?)"
    if not isinstance(stored, dict) or "engine_sha256" not in stored:
        return None, "it records no digest of its engine file (made by an older dpt_ros)"
    recorded = stored.pop("engine_sha256")
    if stored != key.as_json():
        return None, "its key file is for another engine"
    engine = folder / _ENGINE_FILES[key.backend]
    problem = _not_a_cache_file(engine, root)
    if problem:
        return None, problem
    try:
        actual = sha256_file(engine)
    except OSError as exc:
        return None, f"its engine file cannot be read ({exc.strerror or exc})"
    if actual != recorded:
        return None, "its engine file is not the one built (truncated or altered: SHA-256 differs)"
    if key.backend == "onnxruntime":
        problem = _sidecar_problem(engine, root, key)
        if problem:
            return None, problem
    return engine, None


def _not_a_cache_file(path: Path, root: Path) -> str | None:
    """Why ``path`` is not a file of the engine cache ``root`` to read, or None.

    A device, pipe or folder in its place would be read forever or fail at every start
    (``model.onnx`` linked to ``/dev/zero`` hung the start while it was hashed), and a
    symbolic link out of the cache reads a file that no build of the cache wrote. Both are
    checked before anything is read.
    """
    try:
        real = path.resolve(strict=True)
        regular = stat.S_ISREG(real.stat().st_mode)
    except (OSError, RuntimeError):  # missing, a dangling or looping link
        return f"its {path.name} is missing or unreadable"
    if not regular:
        return f"its {path.name} is not a regular file (it leads to {real})"
    if not real.is_relative_to(root.resolve()):
        return f"its {path.name} links out of the engine cache (to {real})"
    return None


def _sidecar_problem(engine: Path, root: Path, key: EngineKey) -> str | None:
    """Why the sidecar of the ONNX engine (``model.onnx.json``: input and output names
    and shapes, which ONNX Runtime needs) is unusable, or None."""
    sidecar = sidecar_path(engine)
    problem = _not_a_cache_file(sidecar, root)
    if problem:
        return problem.replace("its ", "its sidecar ", 1)
    try:
        meta = read_sidecar(engine)
    except ValueError:
        return f"its sidecar {sidecar.name} is not readable JSON with the keys an engine needs"
    if meta["model_type"] != key.model_type or list(meta["input_shape"]) != list(key.input_shape):
        return f"its sidecar {sidecar.name} describes another model or input shape"
    return None


def build_engine(
    root: Path,
    key: EngineKey,
    options: PredictorOptions,
    *,
    cache_dir: PathLike | None = None,
) -> Path:
    """Exports (and for TensorRT builds) the engine of ``key`` into the cache ``root``.

    Everything is written into a temporary folder beside the engine's, which is renamed
    into place when complete (an engine another process finished first is kept). The
    ONNX export is checked against PyTorch on a random input where onnxruntime is
    installed (``dpt-ros export --check``).

    Returns:
        The engine file.

    Raises:
        OSError: the cache cannot be written (read-only, no space).
        ValueError: the export, its check or the TensorRT build failed.
    """
    final = root / key.folder_name()
    tmp = root / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir(parents=True)
    _remove_abandoned_builds(root)
    try:
        b, _, h, w = key.input_shape
        steps = 2 if key.backend == "tensorrt" else 1
        _LOG.info("%s: step 1/%d: exporting ONNX for %dx%d, batch %d", final.name, steps, w, h, b)
        request = {
            "folder": str(tmp),
            "model_type": options.model_type,
            "weights": None if options.weights is None else str(options.weights),
            "random_weights": options.random_weights,
            "width": w,
            "height": h,
            "batch": b,
            "backend": key.backend,
            "precision": key.precision,
            "cache_dir": None if cache_dir is None else str(cache_dir),
        }
        # In a child process (engine_build explains why), one at a time: an export
        # holds a second copy of the model and uses every core.
        with _EXPORT_LOCK:
            run_build(request)
        record = {**key.as_json(), "engine_sha256": sha256_file(tmp / _ENGINE_FILES[key.backend])}
        (tmp / _KEY_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        if final.exists() and cached_engine(root, key) is None:
            shutil.rmtree(final)  # an incomplete folder not written by a build of ours
        try:
            os.rename(tmp, final)
        except OSError:
            if cached_engine(root, key) is None:
                raise  # not a finished engine from another process: a real failure
            _LOG.info("%s: another process built it first; using that one", final.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / _ENGINE_FILES[key.backend]


#: Serialises the build processes started by this process (depth and segmentation
#: models, or two camera sizes, may ask for engines at the same time).
_EXPORT_LOCK = threading.Lock()


def _remove_abandoned_builds(root: Path) -> None:
    """Removes the temporary folders of builds whose process is gone (killed mid-build)."""
    for folder in root.glob(".*.tmp"):
        try:
            os.kill(int(folder.name.split(".")[-3]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


class CachedEngineRuntime:
    """An engine backend without an engine file: one cached engine per input shape,
    PyTorch for shapes without one.

    Args:
        backend: ``onnxruntime`` or ``tensorrt``.
        options: the predictor's options (model type, weights, ``engine_build``).
        torch_runtime: the torch model: what engines are built from, and the fallback.
        dtype: the predictor's compute precision (fp16 = a TensorRT fp16 engine).
        cache_dir: the cache directory (engines in ``<cache_dir>/engines``); None =
            ``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``.
    """

    compiled = False
    #: Any input shape (multiples of 32): each one gets its own engine.
    fixed_input_shape: tuple[int, ...] | None = None

    def __init__(
        self,
        backend: str,
        options: PredictorOptions,
        torch_runtime: TorchRuntime,
        dtype: torch.dtype,
        cache_dir: PathLike | None = None,
        torch_loader: Callable[[], TorchRuntime] | None = None,
    ) -> None:
        if backend not in ENGINE_BACKENDS:
            raise ValueError(f"unknown engine backend {backend!r}; valid: {ENGINE_BACKENDS}")
        self.backend = backend
        self.options = options
        self._torch: TorchRuntime | None = torch_runtime
        self._torch_loader = torch_loader
        self._torch_lock = threading.Lock()
        self.device = torch_runtime.device
        self.dtype = dtype
        self.cache_dir = cache_dir
        self.root = engine_cache_dir(cache_dir)
        self._engines: dict[tuple[int, ...], EngineRuntime] = {}
        #: Input shape -> whether its engine came from the cache (False: built here).
        self.from_cache: dict[tuple[int, ...], bool] = {}
        self._started: set[tuple[int, ...]] = set()
        self._lock = threading.Lock()
        #: Why engines are off (PyTorch runs everything), or None.
        self.failure: str | None = None

    @property
    def name(self) -> str:
        """The backend that runs: the engine backend, or ``torch`` after a failure."""
        return "torch" if self.failure else self.backend

    @property
    def torch_runtime(self) -> TorchRuntime:
        """The PyTorch runtime: the fallback, and what runs shapes without an engine.
        Freed once engines run every prepared shape (:meth:`_free_torch_if_unused`),
        and loaded again from the weights here when it is needed."""
        with self._torch_lock:
            if self._torch is None:
                assert self._torch_loader is not None  # freed only when it can be loaded
                _LOG.info("loading the PyTorch copy of %s again", self.options.model_type)
                self._torch = self._torch_loader()
            return self._torch

    @property
    def torch_loaded(self) -> bool:
        """Whether the PyTorch copy of the weights is in memory now."""
        return self._torch is not None

    @property
    def model(self) -> torch.nn.Module:
        """The torch network (loaded again if it was freed)."""
        return self.torch_runtime.model

    def _free_torch_if_unused(self) -> None:
        """Frees the PyTorch copy once an engine runs every shape prepared so far: on a
        Jetson, whose GPU shares the RAM, it would hold a second copy of the weights.
        Engines are built in a child process that loads its own; a new shape or an
        engine failure loads this one again from the weights."""
        with self._lock:
            unused = (
                self._torch_loader is not None
                and not self.failure
                and bool(self._started)
                and all(self._engine_for(s) is not None for s in self._started)
            )
        if not unused:
            return
        with self._torch_lock:
            if self._torch is None:
                return
            self._torch = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        _LOG.info(
            "freed the PyTorch copy of %s: its engine runs every prepared input shape",
            self.options.model_type,
        )

    @property
    def engine_cached(self) -> bool | None:
        """True when every engine in use came from the cache, False when one was built
        in this process, None when no engine runs yet."""
        return all(self.from_cache.values()) if self.from_cache else None

    @property
    def engine_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The (B, 3, H, W) input shapes that run on an engine now."""
        return tuple(self._engines)

    def prepare(self, input_shape: tuple[int, ...]) -> None:
        """Gets the engine of ``input_shape`` ready before frames arrive (warm-up):
        loads it from the cache or, with ``engine_build: eager``, builds it now;
        ``lazy`` starts the build in the background; ``never`` only loads."""
        shape = tuple(int(d) for d in input_shape)
        if self._engine_for(shape) is not None or self.failure:
            return
        if self.options.engine_build == "lazy":
            self._start(shape)
            return
        with self._lock:
            if shape in self._started:  # done, failed or building in the background
                return
            self._started.add(shape)
        self._get_engine(shape, build=self.options.engine_build == "eager")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(int(d) for d in x.shape)
        engine = self._engine_for(shape)
        if engine is not None:
            return engine(x)
        if not self.failure:
            self._start(shape)
        return self.torch_runtime(x)

    def _engine_for(self, shape: tuple[int, ...]) -> EngineRuntime | None:
        """The engine of ``shape``, or one of the same image size with a larger batch
        (a short last batch is padded), or None."""
        engine = self._engines.get(shape)
        if engine is None:
            for other, candidate in list(self._engines.items()):
                if other[1:] == shape[1:] and other[0] > shape[0]:
                    return candidate
        return engine

    def wait(self, timeout: float | None = None) -> None:
        """Waits for background builds (tests, tools)."""
        for thread in threading.enumerate():
            if thread.name.startswith(f"{BUILD_THREAD_PREFIX}{id(self)}"):
                thread.join(timeout)

    def _start(self, shape: tuple[int, ...]) -> None:
        """Loads or builds the engine of ``shape`` on a background thread, once."""
        with self._lock:
            if shape in self._started:
                return
            self._started.add(shape)
        build = self.options.engine_build != "never"
        threading.Thread(
            target=self._get_engine,
            args=(shape, build),
            name=f"{BUILD_THREAD_PREFIX}{id(self)}_{'x'.join(map(str, shape))}",
            daemon=True,
        ).start()

    def _get_engine(self, shape: tuple[int, ...], build: bool) -> None:
        """Loads the cached engine of ``shape``, building it first if allowed; on any
        failure, logs one warning and turns engines off."""
        what = f"{self.backend} engine for {self.options.model_type} {'x'.join(map(str, shape))}"
        try:
            key = engine_key(
                self.options, self.backend, shape, self.device, self.dtype, cache_dir=self.cache_dir
            )
            path, damaged = _cached_engine_state(self.root, key)
            cached = path is not None
            if damaged:
                then = "it is built again" if build else "PyTorch runs it (engine_build: never)"
                _LOG.warning("the cached %s is unusable: %s; %s", what, damaged, then)
            if path is None:
                if not build:
                    _LOG.info("no cached %s and engine_build is never: PyTorch runs it", what)
                    return
                _LOG.warning(
                    "building the %s in %s (once; later starts reuse it) ...", what, self.root
                )
                start = time.perf_counter()
                path = build_engine(self.root, key, self.options, cache_dir=self.cache_dir)
                _LOG.warning("built the %s in %.0f s", what, time.perf_counter() - start)
            engine = load_backend(self.backend, path, self.options.model_type, self.device)
        except BuildStopped:
            _LOG.info("the %s was not built: the process is stopping", what)
            return
        except Exception as exc:  # any failure of an exporter or builder: PyTorch runs
            self._fail(f"cannot build or load the {what}: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._engines[shape] = EngineRuntime(engine, self.backend)
            self.from_cache[shape] = cached
        self._free_torch_if_unused()

    def _fail(self, reason: str) -> None:
        with self._lock:
            first = self.failure is None
            self.failure = reason
            self._engines.clear()
            self.from_cache.clear()
        if first:
            _LOG.warning("%s; running PyTorch instead", reason)
