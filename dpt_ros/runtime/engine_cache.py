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
import importlib.util
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
from dpt_ros.models.options import ENGINE_BACKENDS, PredictorOptions
from dpt_ros.models.registry import get_spec
from dpt_ros.models.weights.checkpoint import resolve_weights
from dpt_ros.models.weights.digest import sha256_file, weights_digest
from dpt_ros.models.weights.download import default_cache_dir
from dpt_ros.runtime.build_choice import BuildChoice, choose_build, estimate_build
from dpt_ros.runtime.engine_build import (
    BUILD_THREAD_PREFIX,
    TIMING_FILE,
    BuildStopped,
    run_build,
)
from dpt_ros.runtime.runtimes import (
    EngineRuntime,
    PathLike,
    TorchRuntime,
    import_tensorrt,
    load_backend,
    read_sidecar,
    sidecar_path,
)
from dpt_ros.runtime.window_runtimes import WindowShape, load_window_backend

_LOG = logging.getLogger(__name__)

#: Folder of the engine cache inside the cache directory.
ENGINES_SUBDIR = "engines"
#: Written last into an engine folder: its key. A folder without it is not an engine.
_KEY_FILE = "key.json"
_ENGINE_FILES = {"onnxruntime": "model.onnx", "tensorrt": "model.engine"}
#: The key file's record of the engine's other files (an ONNX graph's external data,
#: ``model.onnx.data``): {file name: SHA-256}. Written only where there are such files,
#: so the key files of single-file engines are as before.
_DATA_DIGESTS = "data_sha256"
#: Figures a build records in the key file beside the key: its wall time (seconds) and
#: milliseconds a run of PyTorch and of the engine on the engine's input shape. They
#: describe the engine; they are not part of its key.
MEASURED_FIELDS = ("build_s", "torch_ms", "onnxruntime_ms", "tensorrt_ms")


def engine_cache_dir(cache_dir: PathLike | None = None) -> Path:
    """Where engines are kept: ``<cache_dir>/engines``, by default under
    ``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``."""

    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / ENGINES_SUBDIR


def _importable(name: str) -> bool:
    """Whether ``name`` is installed, without importing it: onnx and onnxscript take
    1.5 s of CPU to import (7 s of a loaded 2-core machine's node start), and only a
    build, in its own process, needs them."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


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

    ``auto`` is, in order: ``torch`` for a family without engines
    (:attr:`~dpt_ros.models.family.ModelFamily.engines`); ``tensorrt`` where ``tensorrt`` imports and the device is
    CUDA (fp16 or fp32); ``onnxruntime`` at fp32 where it imports with a provider for
    the device (its engines are float32: a reduced precision stays on PyTorch's
    autocast); else ``torch``. A ``compile`` mode asks for PyTorch: ``auto`` is then
    ``torch``. Other values are returned as they are.
    """
    if options.backend != "auto":
        return options.backend
    if options.compile != "none" or not get_spec(options.model_type).family.engines:
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
        window: a window engine's fixed window (:class:`WindowShape`'s fields: N views,
            reference-view strategy, known cameras), as (name, value) pairs; empty for
            a single-image engine (whose key and folder are then as before windows).
    """

    model_type: str
    weights: str
    input_shape: tuple[int, ...]
    precision: str
    backend: str
    backend_version: str
    gpu: str
    exporter: str
    window: tuple[tuple[str, Any], ...] = ()

    def folder_name(self) -> str:
        """``<model>_<W>x<H>_b<B>_<backend>_<precision>_<digest>``, a window engine's
        ``<model>_<W>x<H>_n<N>_...``."""
        text = json.dumps(self.as_json(), sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        h, w = self.input_shape[-2:]
        count = f"n{self.input_shape[1]}" if self.window else f"b{self.input_shape[0]}"
        return f"{self.model_type}_{w}x{h}_{count}_{self.backend}_{self.precision}_{digest}"

    def as_json(self) -> dict[str, Any]:
        """The key as key.json records it (``window`` only for window engines)."""
        fields = {**dataclasses.asdict(self), "input_shape": list(self.input_shape)}
        fields.pop("window")
        if self.window:
            fields["window"] = dict(self.window)
        return fields


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
    window: WindowShape | None = None,
) -> EngineKey:
    """The key of the ``backend`` engine for ``options`` and ``input_shape``
    ((B, 3, H, W)), or of the window engine for ``window`` (whose input shape it
    takes); resolves (and may download) the weights file to hash it."""
    if window is not None:
        input_shape = window.input_shape

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
        window=tuple(window.key_fields().items()) if window is not None else (),
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
    start, and an altered one gives other outputs without a word. The same holds for
    the files its graph reads beside it (an ONNX export's external data,
    ``model.onnx.data``: the weights of a model past protobuf's 2 GB): each must be
    there with the SHA-256 the build recorded, and the folder may hold no file that
    the build did not record (a file the graph might read unchecked).
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
    data_recorded = stored.pop(_DATA_DIGESTS, {})
    for name in MEASURED_FIELDS:
        stored.pop(name, None)
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
    problem = _data_files_problem(folder, root, engine, data_recorded)
    if problem:
        return None, problem
    if key.backend == "onnxruntime":
        problem = _sidecar_problem(engine, root, key)
        if problem:
            return None, problem
    return engine, None


def _data_files(folder: Path, engine_name: str) -> list[Path]:
    """The files of an engine folder besides the engine, its sidecar and the key file:
    what the engine's graph reads beside it (an ONNX export's external data)."""
    own = {_KEY_FILE, engine_name, sidecar_path(Path(engine_name)).name}
    return sorted(p for p in folder.iterdir() if p.name not in own)


def _data_files_problem(folder: Path, root: Path, engine: Path, recorded: Any) -> str | None:
    """Why the engine's data files (:func:`_data_files`) differ from those its build
    recorded (``{name: SHA-256}``), or None: one missing, not a regular file of the
    cache, altered (SHA-256 differs), or a file the build did not record."""
    if not isinstance(recorded, dict):
        return f"its key file's {_DATA_DIGESTS} is not a record of files"
    try:
        present = {p.name for p in _data_files(folder, engine.name)}
    except OSError as exc:
        return f"its folder cannot be listed ({exc.strerror or exc})"
    unrecorded = sorted(present - set(recorded))
    if unrecorded:
        return (
            f"it holds {', '.join(unrecorded)}, which its build did not record (a file its "
            "graph could read unchecked)"
        )
    for name, digest in sorted(recorded.items()):
        path = folder / str(name)
        if Path(str(name)).name != name:
            return f"its key file records a data file outside its folder ({name!r})"
        problem = _not_a_cache_file(path, root)
        if problem:
            return problem
        try:
            actual = sha256_file(path)
        except OSError as exc:
            return f"its {name} cannot be read ({exc.strerror or exc})"
        if actual != digest:
            return f"its {name} is not the one built (truncated or altered: SHA-256 differs)"
    return None


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
    if key.window:
        window = meta.get("window")
        wanted = dict(key.window)
        if not isinstance(window, dict) or (
            window.get("views"),
            bool(window.get("known_cameras")),
        ) != (wanted["views"], wanted["known_cameras"]):
            return f"its sidecar {sidecar.name} describes another window"
    return None


def build_engine(
    root: Path,
    key: EngineKey,
    options: PredictorOptions,
    *,
    cache_dir: PathLike | None = None,
    device: torch.device | str = "cpu",
) -> Path:
    """Exports (and for TensorRT builds) the engine of ``key`` into the cache ``root``.

    Everything is written into a temporary folder beside the engine's, which is renamed
    into place when complete (an engine another process finished first is kept). The
    ONNX export is checked against PyTorch on a random input where onnxruntime is
    installed (``dpt-ros export --check``). PyTorch and the engine are then timed on
    ``device`` at the engine's input shape, and the key file records the figures
    (:data:`MEASURED_FIELDS`) for ``backend: auto`` to choose the faster one, and the
    build's wall time for estimates of later builds (:mod:`dpt_ros.runtime.build_choice`).

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
        b, h, w = key.input_shape[0], key.input_shape[-2], key.input_shape[-1]
        steps = 2 if key.backend == "tensorrt" else 1
        count = f"{key.input_shape[1]} views" if key.window else f"batch {b}"
        _LOG.info("%s: step 1/%d: exporting ONNX for %dx%d, %s", final.name, steps, w, h, count)
        request: dict[str, Any] = {
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
            "device": str(device),
            "channels_last": options.channels_last,
        }
        if key.window:
            request["window"] = dict(key.window)
        # In a child process (engine_build explains why), one at a time: an export
        # holds a second copy of the model and uses every core.
        start = time.perf_counter()
        with _EXPORT_LOCK:
            run_build(request)
        timing = _read_timing(tmp)  # (removed from the folder: not an engine's file)
        engine_name = _ENGINE_FILES[key.backend]
        data = {p.name: sha256_file(p) for p in _data_files(tmp, engine_name)}
        record = {
            **key.as_json(),
            "engine_sha256": sha256_file(tmp / engine_name),
            **({_DATA_DIGESTS: data} if data else {}),
            "build_s": round(time.perf_counter() - start, 1),
            **timing,
        }
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


def _read_timing(folder: Path) -> dict[str, float]:
    """The figures the build process timed (:func:`~dpt_ros.runtime.engine_build.time_runtimes`),
    removed from ``folder``; empty when it could not time them."""
    path = folder / TIMING_FILE
    try:
        timing = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in timing.items() if k in MEASURED_FIELDS}


def engine_records(root: Path) -> list[dict[str, Any]]:
    """The key files of the engines in the cache ``root`` (what each was built for and
    the figures measured when it was built); unreadable ones are skipped."""
    records = []
    for path in root.glob(f"*/{_KEY_FILE}"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _measured(root: Path, key: EngineKey) -> tuple[float, float] | None:
    """(PyTorch ms, engine ms) a run recorded when the engine of ``key`` was built, or
    None when it records none."""
    try:
        stored = json.loads((root / key.folder_name() / _KEY_FILE).read_text(encoding="utf-8"))
        return float(stored["torch_ms"]), float(stored[f"{key.backend}_ms"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
        #: Window engines (:meth:`window_engine`), one per :class:`WindowShape`.
        self._window_engines: dict[WindowShape, Any] = {}
        #: Input shape -> whether its engine came from the cache (False: built here).
        self.from_cache: dict[Shape, bool] = {}
        self._started: set[Shape] = set()
        self._lock = threading.Lock()
        #: Why engines are off (PyTorch runs everything), or None.
        self.failure: str | None = None
        #: Why window engines are off (PyTorch runs every window), or None: a window
        #: export that fails leaves the single-image engines running.
        self.window_failure: str | None = None
        #: Input shapes being built in the background (PyTorch runs them meanwhile).
        self.building: set[Shape] = set()
        #: Input shape -> (PyTorch ms, engine ms) measured when its engine was built,
        #: for the shapes ``backend: auto`` runs on PyTorch because it was faster.
        self.torch_faster: dict[Shape, tuple[float, float]] = {}
        self._said_no_auto_build = False
        #: Input shapes whose engine took over from PyTorch while frames were served.
        self.switched: set[Shape] = set()

    @property
    def name(self) -> str:
        """The backend that runs now: the engine backend once an engine runs a shape,
        ``torch`` before (an engine building), after a failure, or where PyTorch was
        measured faster (``backend: auto``)."""
        running = self._engines or self._window_engines
        return self.backend if running and not self.failure else "torch"

    @property
    def status(self) -> str:
        """What runs and why, for logs and /diagnostics: ``onnxruntime (cached
        engine)``, ``onnxruntime (engine built this start, switched from torch)``,
        ``torch (onnxruntime engine building)``, ``torch (faster than the onnxruntime
        engine: 95.0 vs 101.0 ms)``, ``torch``."""
        with self._lock:
            engines = bool(self._engines or self._window_engines)
            building = bool(self.building)
            switched, faster = bool(self.switched), dict(self.torch_faster)
        if self.failure:
            return "torch"
        if engines:
            cached = self.engine_cached
            text = "cached engine" if cached else "engine built this start"
            if switched:
                text += ", switched from torch"
            if building:
                text += f", another {self.backend} engine building"
            return f"{self.backend} ({text})"
        if building:
            return f"torch ({self.backend} engine building)"
        if faster:
            torch_ms, engine_ms = next(iter(faster.values()))
            return (
                f"torch (faster than the {self.backend} engine: {torch_ms:.1f} vs "
                f"{engine_ms:.1f} ms)"
            )
        return "torch"

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

    def prepare(self, input_shape: tuple[int, ...] | WindowShape) -> None:
        """Gets the engine of ``input_shape`` (or of a window) ready before frames arrive
        (warm-up): loads it from the cache, or builds it: now with ``engine_build:
        eager``, in the background with ``lazy`` (PyTorch runs the shape until it is
        ready); ``never`` only loads. With ``backend: auto`` a family that ``auto``
        does not build for (:attr:`~dpt_ros.models.family.ModelFamily.auto_builds`
        False: VGGT) only loads, as ``never``."""
        shape = _as_shape(input_shape)
        if self._engine_for(shape) is not None or self._failed(shape):
            return
        with self._lock:
            if shape in self._started:  # done, failed or building in the background
                return
            self._started.add(shape)
        mode = "never" if self._auto_skips_builds() else self.options.engine_build
        if mode == "lazy":
            # A cached engine loads in seconds: at once. A build goes to the background.
            if not self._get_engine(shape, build=False, quiet=True):
                self._in_background(shape, build=True)
            return
        self._get_engine(shape, build=mode == "eager")

    @property
    def auto_build_refusal(self) -> str:
        """Why ``backend: auto`` builds no engine for this model ('' where it may):
        a family it does not build for (:attr:`~dpt_ros.models.family.ModelFamily.
        auto_builds`); a cached engine (built with ``backend: onnxruntime`` or ``dpt-ros
        export``) still loads."""
        family = get_spec(self.options.model_type).family
        if self.options.backend != "auto" or family.auto_builds:
            return ""
        return (
            f"backend auto builds no {self.options.model_type} engine "
            f"({family.auto_build_reason}); build one with backend onnxruntime or "
            "dpt-ros export"
        )

    def _auto_skips_builds(self) -> bool:
        """Whether :attr:`auto_build_refusal` holds; said once in the log."""
        refusal = self.auto_build_refusal
        if refusal and not self._said_no_auto_build:
            self._said_no_auto_build = True
            _LOG.info("%s: PyTorch runs until an engine is in the cache", refusal)
        return bool(refusal)

    def has_engine(self, input_shape: tuple[int, ...] | WindowShape) -> bool:
        """Whether an engine runs ``input_shape`` (or the window) now."""
        return self._engine_for(_as_shape(input_shape)) is not None

    def build_now(self, input_shape: tuple[int, ...] | WindowShape) -> None:
        """Builds (or loads) the engine of ``input_shape`` (or of the window) now,
        whatever ``engine_build`` says: a command that decided the build pays off."""
        shape = _as_shape(input_shape)
        with self._lock:
            self._started.add(shape)
        if self._engine_for(shape) is None and not self._failed(shape):
            self._get_engine(shape, build=True)

    def window_engine(self, window: WindowShape) -> Any | None:
        """The window engine of ``window`` when one runs it, else None (PyTorch runs
        the window): the first call of a window starts loading or building its engine
        in the background as a new input shape does (``engine_build``), so a later
        window of the same shape runs on it; with ``backend: auto`` a window whose
        build measured PyTorch faster stays on PyTorch."""
        engine = self._window_engines.get(window)
        if engine is None and not self._failed(window):
            self._start(window)
        return engine

    def window_build_choice(
        self, window: WindowShape, windows_left: int, torch_s: float
    ) -> BuildChoice | None:
        """For a one-shot command with ``engine_build: auto`` semantics, after its first
        window ran on PyTorch in ``torch_s`` seconds: builds the window's engine now when
        the build pays off over the ``windows_left`` windows still to run
        (:mod:`dpt_ros.runtime.build_choice`, from the window engines' records in the
        cache), as ``dpt-ros predict`` does for an image shape.

        Returns:
            The decision and its figures, or None when there was nothing to decide (an
            engine runs the window already, engines failed, or a record measured
            PyTorch faster).
        """
        if self._failed(window) or self.has_engine(window) or window in self.torch_faster:
            return None
        if self._auto_skips_builds():
            return None
        params_m = sum(p.numel() for p in self.model.parameters()) / 1e6
        build_s, share, measured = estimate_build(
            self.options.model_type,
            self.backend,
            params_m,
            torch_s,
            window.views * window.height * window.width,
            engine_records(self.root),
            window=True,
        )
        choice = choose_build(windows_left, torch_s, build_s, share, measured)
        if choice.build:
            self.build_now(window)
        return choice

    def _failed(self, shape: Shape) -> bool:
        return bool(self.failure or (isinstance(shape, WindowShape) and self.window_failure))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(int(d) for d in x.shape)
        engine = self._engine_for(shape)
        if engine is not None:
            return engine(x)
        if not self.failure:
            self._start(shape)
        return self.torch_runtime(x)

    def _engine_for(self, shape: Shape) -> Any | None:
        """The engine of ``shape``, or one of the same image size with a larger batch
        (a short last batch is padded), or None; the window engine of a window."""
        if isinstance(shape, WindowShape):
            return self._window_engines.get(shape)
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

    def _start(self, shape: Shape) -> None:
        """Loads or builds the engine of ``shape`` on a background thread, once."""
        with self._lock:
            if shape in self._started:
                return
            self._started.add(shape)
        build = self.options.engine_build != "never" and not self._auto_skips_builds()
        self._in_background(shape, build=build)

    def _in_background(self, shape: Shape, build: bool) -> None:
        if build:
            with self._lock:
                self.building.add(shape)
        threading.Thread(
            target=self._get_engine,
            args=(shape, build),
            kwargs={"switch": True},
            name=f"{BUILD_THREAD_PREFIX}{id(self)}_{_shape_text(shape)}",
            daemon=True,
        ).start()

    def _get_engine(
        self, shape: Shape, build: bool, *, quiet: bool = False, switch: bool = False
    ) -> bool:
        """Loads the cached engine of ``shape``, building it first if allowed; on any
        failure, logs one warning and turns engines off.

        Args:
            quiet: say nothing when there is no cached engine (a build follows).
            switch: PyTorch serves the shape meanwhile: say when the engine takes over.

        Returns:
            False when there is no cached engine and none was built; True otherwise
            (an engine runs the shape, PyTorch was measured faster, or engines failed).
        """
        what = f"{self.backend} engine for {self.options.model_type} {_shape_text(shape)}"
        window = shape if isinstance(shape, WindowShape) else None
        try:
            key = engine_key(
                self.options,
                self.backend,
                window.input_shape if window else shape,  # type: ignore[arg-type]
                self.device,
                self.dtype,
                cache_dir=self.cache_dir,
                window=window,
            )
            path, damaged = _cached_engine_state(self.root, key)
            cached = path is not None
            if damaged:
                then = "it is built again" if build else "PyTorch runs it (engine_build: never)"
                _LOG.warning("the cached %s is unusable: %s; %s", what, damaged, then)
            if path is None:
                if not build:
                    if not quiet:
                        _LOG.info("no cached %s and engine_build is never: PyTorch runs it", what)
                    return False
                _LOG.warning(
                    "building the %s in %s (once; later starts reuse it)%s ...",
                    what,
                    self.root,
                    "; PyTorch serves meanwhile" if switch else "",
                )
                start = time.perf_counter()
                path = build_engine(
                    self.root, key, self.options, cache_dir=self.cache_dir, device=self.device
                )
                _LOG.warning("built the %s in %.0f s", what, time.perf_counter() - start)
            if self._prefer_torch(shape, key, what):
                return True
            if window is not None:
                engine: Any = load_window_backend(
                    self.backend, path, self.options.model_type, self.device
                )
            else:
                engine = load_backend(self.backend, path, self.options.model_type, self.device)
        except BuildStopped:
            _LOG.info("the %s was not built: the process is stopping", what)
            return True
        except Exception as exc:  # any failure of an exporter or builder: PyTorch runs
            reason = f"cannot build or load the {what}: {type(exc).__name__}: {exc}"
            if window is not None:
                self._fail_windows(reason)
            else:
                self._fail(reason)
            return True
        finally:
            with self._lock:
                self.building.discard(shape)
        with self._lock:
            if window is not None:
                self._window_engines[window] = engine
            else:
                self._engines[shape] = EngineRuntime(engine, self.backend)  # type: ignore[index]
            self.from_cache[shape] = cached
            if switch:
                self.switched.add(shape)
        if switch:
            _LOG.warning("switched %s from PyTorch to its %s", what.split(" for ")[1], what)
        self._free_torch_if_unused()
        return True

    def _prefer_torch(self, shape: Shape, key: EngineKey, what: str) -> bool:
        """Whether ``backend: auto`` runs ``shape`` on PyTorch: its build measured
        PyTorch faster than the engine on this shape (an engine backend asked for by
        name always runs its engine)."""
        measured = _measured(self.root, key)
        if self.options.backend != "auto" or measured is None or measured[0] >= measured[1]:
            return False
        with self._lock:
            self.torch_faster[shape] = measured
        _LOG.warning(
            "PyTorch ran %s faster than its %s when it was built (%.1f vs %.1f ms a run): "
            "backend auto keeps PyTorch",
            _shape_text(shape),
            what.split(" for ")[0],
            measured[0],
            measured[1],
        )
        return True

    def _fail(self, reason: str) -> None:
        with self._lock:
            first = self.failure is None
            self.failure = reason
            self._engines.clear()
            self._window_engines.clear()
            self.from_cache.clear()
        if first:
            _LOG.warning("%s; running PyTorch instead", reason)

    def _fail_windows(self, reason: str) -> None:
        """A window engine failed: every window runs on PyTorch from now on, the
        single-image engines keep running."""
        with self._lock:
            first = self.window_failure is None
            self.window_failure = reason
            for window in self._window_engines:
                self.from_cache.pop(window, None)
            self._window_engines.clear()
        if first:
            _LOG.warning("%s; windows run on PyTorch instead", reason)


#: What an engine of the cache runs: a (B, 3, H, W) input shape, or a window.
Shape = tuple[int, ...] | WindowShape


def _as_shape(shape: tuple[int, ...] | WindowShape) -> Shape:
    return shape if isinstance(shape, WindowShape) else tuple(int(d) for d in shape)


def _shape_text(shape: Shape) -> str:
    return str(shape) if isinstance(shape, WindowShape) else "x".join(map(str, shape))
