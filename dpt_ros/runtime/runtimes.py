"""The network runtimes: PyTorch itself, ONNX Runtime and TensorRT, behind one contract.

Every runtime fulfils :class:`Runtime`: it is called on the normalised float32
(B, 3, H, W) network input on the predictor's device and returns, on that device,
(B, H, W) depth or (B, num_classes, H, W) logits:

- :class:`TorchRuntime`: the torch model, optionally ``torch.compile``-d, under autocast
  at reduced precision (normalisation layers kept in float32);
- :class:`EngineRuntime` around :class:`OnnxRuntimeModel` or :class:`TensorRTModel`: a
  file from ``dpt-ros export`` (with its sidecar, ``<file>.json``), run on any batch size
  by splitting into the file's fixed batch and padding the last chunk;
- ``CachedEngineRuntime`` (:mod:`dpt_ros.runtime.engine_cache`): ``backend: auto`` or an
  engine backend without a file, one engine per input shape built once and cached.

:func:`dpt_ros.runtime.backend.create_runtime` picks one from
:class:`~dpt_ros.models.options.PredictorOptions`.

Exported files have ONE input shape, fixed at export: a different batch or network size
is an error naming both shapes (re-export with ``--network-size WxH --batch N``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from dpt_ros.models.options import COMPILE_MODES, ENGINE_BACKENDS

_LOG = logging.getLogger(__name__)

PathLike = str | os.PathLike


#: Version of the sidecar layout written by ``dpt-ros export``.
SIDECAR_VERSION = 1

#: Sidecar keys every backend relies on.
_REQUIRED_KEYS = (
    "model_type",
    "format",
    "input_name",
    "input_shape",
    "output_name",
    "output_shape",
)


def sidecar_path(path: PathLike) -> Path:
    """The sidecar of an exported file: ``model.onnx`` -> ``model.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: PathLike) -> dict[str, Any]:
    """The sidecar of the exported file ``path`` as a dict.

    Raises:
        ValueError: the sidecar is missing, is not JSON, or lacks a required key.
    """
    side = sidecar_path(path)
    if not side.is_file():
        raise ValueError(
            f"{side} not found: {Path(path).name} needs the sidecar that "
            "'dpt-ros export' writes beside it (re-export the model)"
        )
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{side} is not a readable JSON sidecar ({exc})") from None
    missing = [k for k in _REQUIRED_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(
            f"{side} lacks {', '.join(missing)}; re-export the model with 'dpt-ros export'"
        )
    return meta


def _shape_text(shape: Sequence[Any]) -> str:
    return "x".join(str(d) for d in shape)


def _existing_file(path: PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (create it with 'dpt-ros export')")
    return path


def _check_model_type(meta: dict[str, Any], model_type: str | None, path: Path) -> None:
    if model_type is not None and meta["model_type"] != model_type:
        raise ValueError(
            f"{path.name} was exported from {meta['model_type']}, but the "
            f"configured model type is {model_type}; export {model_type} "
            "or configure the matching model type"
        )


def check_input_shape(x: torch.Tensor, fixed_shape: Sequence[int], path: PathLike) -> None:
    """Raises ValueError unless ``x`` has the exported file's fixed input shape.

    Args:
        x: the network input, (B, 3, H, W).
        fixed_shape: (B, 3, H, W) the file was exported for.
        path: the exported file (named in the message).
    """
    got = tuple(int(d) for d in x.shape)
    want = tuple(int(d) for d in fixed_shape)
    if got == want:
        return
    hint = ""
    if len(got) == 4:
        hint = f" (for this input: --network-size {got[3]}x{got[2]} --batch {got[0]})"
    raise ValueError(
        f"{Path(path).name} takes a fixed input of {_shape_text(want)} (B x 3 x H x W), got "
        f"{_shape_text(got)}; re-export with dpt-ros export --network-size/--batch{hint}, "
        "or configure the network size and batch the file was exported for"
    )


def _check_fixed(shape: Sequence[Any], what: str, path: Path) -> tuple[int, ...]:
    dims = tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        raise ValueError(
            f"{path.name} has a dynamic {what} shape {list(dims)}; only the "
            "fixed-shape files of 'dpt-ros export' are supported"
        )
    return tuple(int(d) for d in dims)


class OnnxRuntimeModel:
    """An exported ONNX model run by ONNX Runtime, called like the torch model.

    Uses ONNX Runtime's CUDA provider when ``device`` is CUDA and the installed
    onnxruntime has it (the ``onnxruntime-gpu`` package), else its CPU provider (the
    tensors then go through host memory). Inputs and outputs are bound to torch memory
    (IO binding): no numpy copies.

    Args:
        path: the ``.onnx`` file; its sidecar ``<path>.json`` must be beside it.
        device: the predictor's device; outputs are returned there.
        model_type: when given, the file must have been exported from this model type.

    Raises:
        FileNotFoundError: no such file.
        ValueError: onnxruntime is not installed, the sidecar is missing or describes
            another model type, or the file's input is not the fixed shape the sidecar
            gives.
    """

    def __init__(
        self, path: PathLike, device: str | torch.device = "cpu", *, model_type: str | None = None
    ) -> None:
        self.path = _existing_file(path, "ONNX model")
        self.metadata = read_sidecar(self.path)
        _check_model_type(self.metadata, model_type, self.path)
        self.model_type: str = self.metadata["model_type"]
        self.device = torch.device(device)
        ort = _import_onnxruntime()
        providers: list = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(
                    0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0})
                )
            else:
                _LOG.warning(
                    "onnxruntime %s has no CUDA provider; running %s on the CPU "
                    "(install onnxruntime-gpu to run it on %s)",
                    ort.__version__,
                    self.path.name,
                    self.device,
                )
        options = ort.SessionOptions()
        # Idle worker threads sleep instead of spinning: in the node, torch's own threads
        # resize images between runs, and spinning ONNX Runtime threads would take their
        # cores (measured: the model 15 % slower inside the pipeline than alone).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(self.path), sess_options=options, providers=providers
        )
        on_cuda = self._session.get_providers()[0] == "CUDAExecutionProvider"
        # ONNX Runtime falls back to the CPU (with a warning) when CUDA cannot start.
        self._run_device = self.device if on_cuda else torch.device("cpu")
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"{self.path.name} has {len(inputs)} inputs and {len(outputs)} "
                "outputs; a DPT export has one of each"
            )
        for arg in (inputs[0], outputs[0]):
            if arg.type != "tensor(float)":
                raise ValueError(
                    f"{self.path.name}: {arg.name} is {arg.type}, expected tensor(float) (float32)"
                )
        self._input_name, self._output_name = inputs[0].name, outputs[0].name
        self.input_shape = _check_fixed(inputs[0].shape, "input", self.path)
        self.output_shape = _check_fixed(outputs[0].shape, "output", self.path)
        if list(self.input_shape) != list(self.metadata["input_shape"]):
            raise ValueError(
                f"{self.path.name} takes {_shape_text(self.input_shape)} but "
                f"its sidecar says {_shape_text(self.metadata['input_shape'])}; "
                "the sidecar belongs to another export (re-export the model)"
            )

    @property
    def providers(self) -> tuple[str, ...]:
        """ONNX Runtime's execution providers of this session, in priority order."""
        return tuple(self._session.get_providers())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised float32 input -> the torch model's output, on ``device``.

        Raises:
            ValueError: ``x`` is not the exported fixed shape.
        """
        check_input_shape(x, self.input_shape, self.path)
        run_device = self._run_device
        x = x.to(run_device, torch.float32).contiguous()
        out = torch.empty(self.output_shape, dtype=torch.float32, device=run_device)
        kind, index = run_device.type, run_device.index or 0
        if kind == "cuda":
            # ONNX Runtime reads x on its own CUDA stream: x must be complete first.
            torch.cuda.current_stream(run_device).synchronize()
        binding = self._session.io_binding()
        binding.bind_input(
            self._input_name, kind, index, np.float32, self.input_shape, x.data_ptr()
        )
        binding.bind_output(
            self._output_name, kind, index, np.float32, self.output_shape, out.data_ptr()
        )
        self._session.run_with_iobinding(binding)
        if kind == "cuda":
            binding.synchronize_outputs()
        return out.to(self.device)


class TensorRTModel:
    """A TensorRT engine built by ``dpt-ros export --format tensorrt``, called like the
    torch model.

    The engine runs on the current torch CUDA stream of ``device`` and reads and writes
    torch tensors in place (``execute_async_v3`` with tensor addresses), so it orders
    with the surrounding torch work without synchronising. Engines are specific to the
    GPU model and TensorRT version that built them.

    Args:
        path: the ``.engine`` file; its sidecar ``<path>.json`` must be beside it.
        device: a CUDA device.
        model_type: when given, the engine must have been built from this model type.

    Raises:
        FileNotFoundError: no such file.
        ValueError: ``device`` is not CUDA, tensorrt is not installed, the sidecar is
            missing or describes another model type, or the engine cannot be loaded.
    """

    def __init__(
        self, path: PathLike, device: str | torch.device = "cuda", *, model_type: str | None = None
    ) -> None:
        self.path = _existing_file(path, "TensorRT engine")
        self.metadata = read_sidecar(self.path)
        _check_model_type(self.metadata, model_type, self.path)
        self.model_type: str = self.metadata["model_type"]
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(
                f"TensorRT engines run on CUDA devices only, device is "
                f"{self.device}; use the onnxruntime or torch backend there"
            )
        trt = import_tensorrt()
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                built = self.metadata.get("tensorrt", "an unknown version")
                raise ValueError(
                    f"TensorRT {trt.__version__} cannot load {self.path.name} (built with "
                    f"TensorRT {built} on {self.metadata.get('gpu', 'an unknown GPU')}); "
                    "engines only run with the TensorRT version and GPU model that built "
                    "them: rebuild it on this machine with dpt-ros export --format tensorrt"
                )
            self._context = self._engine.create_execution_context()
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"{self.path.name} has {len(inputs)} inputs and {len(outputs)} "
                "outputs; a DPT engine has one of each"
            )
        self._input_name, self._output_name = inputs[0], outputs[0]
        self.input_shape = _check_fixed(engine.get_tensor_shape(inputs[0]), "input", self.path)
        self.output_shape = _check_fixed(engine.get_tensor_shape(outputs[0]), "output", self.path)
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
        try:
            self._input_dtype = dtypes[engine.get_tensor_dtype(inputs[0])]
            self._output_dtype = dtypes[engine.get_tensor_dtype(outputs[0])]
        except KeyError:
            raise ValueError(
                f"{self.path.name}: input/output types other than float32 and "
                "float16 are not supported"
            ) from None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised float32 input -> the torch model's output (float32), on
        ``device``.

        Raises:
            ValueError: ``x`` is not the engine's fixed shape.
            RuntimeError: TensorRT failed to enqueue the inference.
        """
        check_input_shape(x, self.input_shape, self.path)
        x = x.to(self.device, self._input_dtype).contiguous()
        out = torch.empty(self.output_shape, dtype=self._output_dtype, device=self.device)
        with torch.cuda.device(self.device):
            stream = torch.cuda.current_stream(self.device)
            self._context.set_tensor_address(self._input_name, x.data_ptr())
            self._context.set_tensor_address(self._output_name, out.data_ptr())
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(
                    f"TensorRT failed to run {self.path.name} (see its messages above)"
                )
        # x and out belong to this stream, so the caching allocator cannot hand their
        # memory to other work before the engine is done with them.
        return out.float()


def _import_onnxruntime():
    try:
        # optional dependency: onnxruntime
        import onnxruntime
    except ImportError:
        raise ValueError(
            "onnxruntime is not installed: pip install onnxruntime (CPU) or "
            "onnxruntime-gpu (CUDA), or pip install 'dpt_ros[export]'"
        ) from None
    return onnxruntime


def import_tensorrt():
    """The ``tensorrt`` module.

    Raises:
        ValueError: TensorRT is not installed (the message says how to get it).
    """
    try:
        # optional dependency: tensorrt
        import tensorrt
    except ImportError:
        raise ValueError(
            "TensorRT is not installed: on a Jetson it comes with JetPack "
            "(python3-libnvinfer); on x86 with an NVIDIA GPU: pip install "
            "tensorrt"
        ) from None
    return tensorrt


def load_backend(backend: str, path: PathLike, model_type: str, device: str | torch.device):
    """The callable that runs an exported file in place of ``Predictor.model``.

    Args:
        backend: ``onnxruntime`` or ``tensorrt``.
        path: the ``.onnx`` file (onnxruntime) or ``.engine`` file (tensorrt), with its
            sidecar beside it.
        model_type: the configured model type; the file must have been exported from it.
        device: the predictor's device.

    Returns:
        ``OnnxRuntimeModel`` or ``TensorRTModel``: ``model(x)`` maps the (B, 3, H, W)
        normalised float32 input to the torch model's output, on ``device``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown backend, runtime package not installed, or a file that does
            not fit (see the classes).
    """
    if backend == "onnxruntime":
        return OnnxRuntimeModel(path, device, model_type=model_type)
    if backend == "tensorrt":
        return TensorRTModel(path, device, model_type=model_type)
    raise ValueError(
        f"unknown backend {backend!r}; valid engine backends: {', '.join(ENGINE_BACKENDS)}"
    )


# --------------------------------------------------------------------------- the contract


@runtime_checkable
class Runtime(Protocol):
    """What the predictor asks of a runtime: every runtime implements all of it.

    Attributes:
        fixed_input_shape: (B, 3, H, W) of an exported file, or None for any shape.
        compiled: ``torch.compile``-d (its CUDA graphs record on the second run).
    """

    fixed_input_shape: tuple[int, ...] | None
    compiled: bool

    @property
    def name(self) -> str:
        """The backend that runs now: ``torch``, ``onnxruntime`` or ``tensorrt``."""
        ...

    @property
    def status(self) -> str:
        """What runs and why, in a few words (logs, /diagnostics): ``torch``,
        ``onnxruntime (cached engine)``, ``torch (onnxruntime engine building)`` ..."""
        ...

    @property
    def model(self) -> torch.nn.Module | None:
        """The torch network, where one runs or engines are built from it."""
        ...

    @property
    def engine_cached(self) -> bool | None:
        """Engines built on first use: True when all in use came from the cache, False
        when this process built one, None when no such engine runs."""
        ...

    def prepare(self, input_shape: tuple[int, ...]) -> None:
        """Gets what runs ``input_shape`` ((B, 3, H, W)) ready (an engine built on first
        use); nothing to do for the others."""
        ...

    def wait(self, timeout: float | None = None) -> None:
        """Waits for engines being built in the background (none for the others)."""
        ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised float32 on the device -> (B, H, W) depth or
        (B, C, H, W) logits, on the device."""
        ...


_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)


def _float32_input(module: torch.nn.Module, args: tuple):
    x = args[0]
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float32:
        return (x.float(),) + tuple(args[1:])
    return None


def keep_norms_float32(model: torch.nn.Module) -> int:
    """Normalisation layers compute in float32 under fp16/bf16 autocast.

    CUDA autocast already runs layer and group norm in float32, but CPU autocast passes
    GroupNorm (the hybrid's ResNet) and BatchNorm a reduced-precision input and computes
    them in it. A forward pre-hook casts their input to float32 (their weights are
    float32); the next convolution or linear layer casts back down under autocast.

    Returns:
        How many layers were hooked.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _NORMS):
            module.register_forward_pre_hook(_float32_input)
            count += 1
    return count


class TorchRuntime:
    """The torch model as a runtime.

    Args:
        model: the network, in eval mode, on ``device``.
        dtype: compute precision; below float32 the model runs under autocast with its
            normalisation layers in float32.
        compile: ``none`` or a ``torch.compile`` mode (static shapes: each new input
            size compiles once).
        channels_last: keep activations NHWC for the convolutions (faster with oneDNN
            and cuDNN; the results agree to float32 rounding).
    """

    name = "torch"
    status = "torch"
    #: Any input shape (multiples of 32).
    fixed_input_shape: tuple[int, ...] | None = None
    #: No engines here.
    engine_cached: bool | None = None

    def __init__(
        self,
        model: torch.nn.Module,
        dtype: torch.dtype = torch.float32,
        compile: str = "none",
        channels_last: bool = True,
    ) -> None:
        if compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {compile!r}; valid: {', '.join(COMPILE_MODES)}")
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.device = next(model.parameters()).device
        self.dtype = dtype
        self.compiled = compile != "none"
        if dtype != torch.float32:
            keep_norms_float32(self.model)
        self._forward = (
            self.model
            if compile == "none"
            else torch.compile(self.model, mode=compile, dynamic=False)
        )

    def prepare(self, input_shape: tuple[int, ...]) -> None:
        """Nothing to get ready: any shape runs (``torch.compile`` compiles on first run)."""

    def wait(self, timeout: float | None = None) -> None:
        """Nothing is built in the background."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # NCHW input whatever the model's layout: the first convolution then matches
        # the reference to float32 rounding on the CPU (an NHWC input there changes
        # oneDNN's summation order, which a random hybrid stem amplifies 20x).
        x = x.contiguous()
        if self.dtype == torch.float32:
            return self._forward(x)
        with torch.autocast(self.device.type, dtype=self.dtype):
            return self._forward(x)


class EngineRuntime:
    """An exported fixed-shape engine as a runtime, on any batch size: chunks of its
    fixed batch, the last one padded with zeros and the padding dropped from the output.

    Args:
        engine: an :class:`OnnxRuntimeModel` or :class:`TensorRTModel`.
        name: its backend name.
    """

    model = None
    #: An engine file given, not one built on first use.
    engine_cached: bool | None = None

    def __init__(self, engine: OnnxRuntimeModel | TensorRTModel, name: str) -> None:
        self.engine = engine
        self.name = name
        self.status = name
        self.fixed_input_shape: tuple[int, ...] | None = tuple(engine.input_shape)
        self.compiled = False

    @property
    def batch(self) -> int:
        return int(self.engine.input_shape[0])

    def prepare(self, input_shape: tuple[int, ...]) -> None:
        """Nothing to get ready: the file is loaded (its shape is checked per call)."""

    def wait(self, timeout: float | None = None) -> None:
        """Nothing is built in the background."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, outs = self.batch, []
        for start in range(0, x.shape[0], n):
            chunk = x[start : start + n].contiguous()
            if chunk.shape[0] < n:
                pad = chunk.new_zeros((n - chunk.shape[0],) + tuple(chunk.shape[1:]))
                outs.append(self.engine(torch.cat((chunk, pad)))[: chunk.shape[0]])
            else:
                outs.append(self.engine(chunk))
        return outs[0] if len(outs) == 1 else torch.cat(outs)
