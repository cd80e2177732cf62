"""Window engines: a window forward of fixed N exported by
:func:`~dpt_ros.runtime.export.export_window_onnx`, run by ONNX Runtime or TensorRT.

A window engine stands in for the torch network in
:meth:`~dpt_ros.models.family.ModelFamily.forward_window`. A Depth Anything 3 engine has
the network's ``forward_window(x, camera_from_world, intrinsics, reference_view)`` and
returns the same :class:`~dpt_ros.models.network.depth_anything3.WindowOutput`; a VGGT
engine has the network's ``window(images)`` and returns the same
:class:`~dpt_ros.models.network.vggt.VggtOutput` (the family decodes the cameras from
its pose encoding as it does PyTorch's). Which one a file is, its sidecar's window
outputs say. Its graph holds
everything the torch forward does, the reference-view choice and the restored view
order included, for one number of views, one network size, one reference-view
strategy, with or without known cameras (the sidecar's ``window`` entry); any other
window is refused with a message naming both.

:class:`TensorRTWindowModel` runs an engine built by
:func:`~dpt_ros.runtime.export.build_tensorrt_engine` from that ONNX file; it needs
``tensorrt`` and a CUDA GPU, which the test machines of this change did not have.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpt_ros.runtime.runtimes import (
    PathLike,
    _check_model_type,
    _existing_file,
    _import_onnxruntime,
    _shape_text,
    import_tensorrt,
    read_sidecar,
)

#: The fewest views for which the reference-view strategy changes the forward (the
#: network's ``MIN_VIEWS_FOR_REFERENCE``; known cameras choose none).
MIN_VIEWS_FOR_REFERENCE = 3
#: The reference view of a window whose strategy does not matter.
NO_REFERENCE = "none"
#: A Depth Anything 3 window engine's outputs, in order (``DepthAnything3Window``).
DA3_WINDOW_OUTPUTS = ("depth", "confidence", "camera_from_world", "intrinsics", "reference_view")
#: A VGGT window engine's outputs, in order (``VggtWindow``: ``VggtOutput``'s fields).
VGGT_WINDOW_OUTPUTS = ("pose_enc", "depth", "depth_conf", "world_points", "world_points_conf")


@dataclasses.dataclass(frozen=True)
class WindowShape:
    """What a window engine is fixed to: N views of (H, W) network input, how it picks
    its reference view, and whether it takes known cameras.

    Build one with :func:`window_shape`, which names the strategy ``none`` where it
    cannot change the output (fewer than 3 views, or known cameras): those windows
    share one engine whatever strategy is asked for.
    """

    views: int
    height: int
    width: int
    reference_view: str
    known_cameras: bool

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(1, N, 3, H, W) of the views' input."""
        return (1, self.views, 3, self.height, self.width)

    def key_fields(self) -> dict[str, Any]:
        """What an engine key records of the window (see ``EngineKey.window``)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        cameras = ", known cameras" if self.known_cameras else ""
        reference = "" if self.reference_view == NO_REFERENCE else f", {self.reference_view}"
        return f"{self.views} views of {self.width}x{self.height}{reference}{cameras}"


def window_shape(
    views: int, net_hw: tuple[int, int], reference_view: str, known_cameras: bool
) -> WindowShape:
    """The :class:`WindowShape` of a window of ``views`` at ``net_hw`` (h, w)."""
    matters = views >= MIN_VIEWS_FOR_REFERENCE and not known_cameras
    return WindowShape(
        views=int(views),
        height=int(net_hw[0]),
        width=int(net_hw[1]),
        reference_view=reference_view if matters else NO_REFERENCE,
        known_cameras=bool(known_cameras),
    )


def _window_of(meta: dict[str, Any], path: Path) -> WindowShape:
    """The window a sidecar describes; ValueError when it describes none."""
    window = meta.get("window")
    shape = meta.get("input_shape")
    if not isinstance(window, dict) or not isinstance(shape, list) or len(shape) != 5:
        raise ValueError(
            f"{path.name} is not a window export (its sidecar has no window entry or a "
            f"single-image input {shape}); export it with export_window_onnx"
        )
    return window_shape(
        int(window["views"]),
        (int(shape[3]), int(shape[4])),
        str(window.get("reference_view", NO_REFERENCE)),
        bool(window.get("known_cameras", False)),
    )


class _WindowEngine:
    """What both window runtimes share: the sidecar's window and the checks of a call."""

    def __init__(self, path: PathLike, what: str, model_type: str | None) -> None:
        self.path = _existing_file(path, what)
        self.metadata = read_sidecar(self.path)
        _check_model_type(self.metadata, model_type, self.path)
        self.model_type: str = self.metadata["model_type"]
        #: The one window the engine runs (``window`` is VGGT's method).
        self.shape = _window_of(self.metadata, self.path)
        outputs = self.metadata["window"].get("outputs")
        #: The graph's outputs, in order: :data:`DA3_WINDOW_OUTPUTS` or
        #: :data:`VGGT_WINDOW_OUTPUTS`.
        self.output_names: tuple[str, ...] = (
            tuple(outputs) if isinstance(outputs, dict) and outputs else DA3_WINDOW_OUTPUTS
        )
        if self.output_names not in (DA3_WINDOW_OUTPUTS, VGGT_WINDOW_OUTPUTS):
            raise ValueError(
                f"{self.path.name} gives {self.output_names}: not a window engine of Depth "
                "Anything 3 or VGGT (export it again)"
            )

    @property
    def input_names(self) -> tuple[str, ...]:
        if self.shape.known_cameras:
            return ("input", "known_camera_from_world", "known_intrinsics")
        return ("input",)

    def _inputs(
        self,
        x: torch.Tensor,
        camera_from_world: torch.Tensor | None,
        intrinsics: torch.Tensor | None,
        reference_view: str,
    ) -> tuple[torch.Tensor, ...]:
        """The engine's inputs, float32 and contiguous; ValueError for another window."""
        views = int(x.shape[1]) if x.ndim == 5 else 0
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        asked = window_shape(views, hw, reference_view, camera_from_world is not None)
        if x.ndim != 5 or x.shape[0] != 1 or asked != self.shape:
            raise ValueError(
                f"{self.path.name} runs windows of {self.shape}, not "
                f"{_shape_text(tuple(x.shape))} ({asked})"
            )
        inputs = [x]
        if camera_from_world is not None and intrinsics is not None:
            inputs += [camera_from_world, intrinsics]
        return tuple(v.float().contiguous() for v in inputs)

    def _run(self, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """The engine's outputs for ``inputs``, in :attr:`output_names` order."""
        raise NotImplementedError

    def _require(self, outputs: tuple[str, ...], method: str) -> None:
        if self.output_names != outputs:
            family = "VGGT" if outputs == VGGT_WINDOW_OUTPUTS else "Depth Anything 3"
            raise ValueError(
                f"{self.path.name} is not a {family} window engine ({method} needs "
                f"outputs {outputs}, it gives {self.output_names})"
            )

    def forward_window(
        self,
        x: torch.Tensor,
        camera_from_world: torch.Tensor | None = None,
        intrinsics: torch.Tensor | None = None,
        reference_view: str = "saddle_balanced",
    ) -> Any:
        """As :meth:`DepthAnything3.forward_window` for the engine's one window.

        Raises:
            ValueError: another number of views, size, strategy or camera mode, or not
                a Depth Anything 3 engine.
        """
        self._require(DA3_WINDOW_OUTPUTS, "forward_window")
        # the network module (and timm) on first use, as the predictor loads it
        from dpt_ros.models.network.depth_anything3 import WindowOutput

        inputs = self._inputs(x, camera_from_world, intrinsics, reference_view)
        depth, confidence, extrinsics, ks, reference = self._run(inputs)
        return WindowOutput(depth, confidence, extrinsics, ks, reference.long())

    def window(self, images: torch.Tensor) -> Any:
        """As :meth:`Vggt.window` for the engine's one window: (1, N, 3, H, W) RGB in
        [0, 1] -> :class:`~dpt_ros.models.network.vggt.VggtOutput`.

        Raises:
            ValueError: another number of views or size, or not a VGGT engine.
        """
        self._require(VGGT_WINDOW_OUTPUTS, "window")
        # the network module on first use, as the predictor loads it
        from dpt_ros.models.network.vggt import VggtOutput

        return VggtOutput(*self._run(self._inputs(images, None, None, NO_REFERENCE)))


class OnnxWindowModel(_WindowEngine):
    """A window export run by ONNX Runtime (its CUDA provider where ``device`` is CUDA
    and onnxruntime-gpu is installed, else the CPU; outputs come back on ``device``).

    Args:
        path: the ``.onnx`` file of :func:`~dpt_ros.runtime.export.export_window_onnx`,
            with its sidecar beside it.
        device: the predictor's device.
        model_type: when given, the file must have been exported from this type.

    Raises:
        FileNotFoundError: no such file.
        ValueError: onnxruntime missing, no sidecar, another model type, or not a window
            export.
    """

    def __init__(
        self, path: PathLike, device: str | torch.device = "cpu", *, model_type: str | None = None
    ) -> None:
        super().__init__(path, "ONNX model", model_type)
        self.device = torch.device(device)
        ort = _import_onnxruntime()
        providers: list[Any] = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index or 0}))
        options = ort.SessionOptions()
        # as OnnxRuntimeModel: idle threads sleep, leaving the cores to torch's work
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(self.path), sess_options=options, providers=providers
        )
        names = tuple(i.name for i in self._session.get_inputs())
        if names != self.input_names:
            raise ValueError(
                f"{self.path.name} takes {names}, its sidecar's window {self.input_names}: "
                "the sidecar belongs to another export (export it again)"
            )
        outputs = tuple(o.name for o in self._session.get_outputs())
        if set(outputs) != set(self.output_names):
            raise ValueError(
                f"{self.path.name} gives {outputs}, its sidecar's window {self.output_names}: "
                "the sidecar belongs to another export (export it again)"
            )

    def _run(self, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        feeds = {n: v.detach().cpu().numpy() for n, v in zip(self.input_names, inputs)}
        found = self._session.run(list(self.output_names), feeds)
        return [torch.from_numpy(np.asarray(v)).to(self.device) for v in found]


class TensorRTWindowModel(_WindowEngine):
    """A TensorRT engine built from a window export, on a CUDA device: the inputs and
    outputs are bound to torch tensors by name and the engine runs on the current
    stream (as :class:`~dpt_ros.runtime.runtimes.TensorRTModel`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not CUDA, tensorrt missing, the engine does not load or is not a
            window engine.
    """

    def __init__(
        self, path: PathLike, device: str | torch.device = "cuda", *, model_type: str | None = None
    ) -> None:
        super().__init__(path, "TensorRT engine", model_type)
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"TensorRT engines run on CUDA devices only, device is {self.device}")
        trt = import_tensorrt()
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
            if self._engine is None:
                raise ValueError(
                    f"TensorRT {trt.__version__} cannot load {self.path.name}: rebuild it "
                    "on this machine"
                )
            self._context = self._engine.create_execution_context()
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = {n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        if inputs != set(self.input_names):
            raise ValueError(f"{self.path.name} takes {sorted(inputs)}, not {self.input_names}")
        dtypes = {
            trt.DataType.FLOAT: torch.float32,
            trt.DataType.HALF: torch.float16,
            trt.DataType.INT64: torch.int64,
            trt.DataType.INT32: torch.int32,
        }
        self._outputs = [
            (n, tuple(engine.get_tensor_shape(n)), dtypes[engine.get_tensor_dtype(n)])
            for n in names
            if n not in inputs
        ]
        self._input_dtypes = {n: dtypes[engine.get_tensor_dtype(n)] for n in inputs}

    def _run(self, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """The engine on the GPU: inputs and outputs bound by name."""
        bound = [
            v.to(self.device, self._input_dtypes[n]).contiguous()
            for n, v in zip(self.input_names, inputs)
        ]
        outputs = {
            n: torch.empty(shape, dtype=dtype, device=self.device)
            for n, shape, dtype in self._outputs
        }
        with torch.cuda.device(self.device):
            stream = torch.cuda.current_stream(self.device)
            for name, value in zip(self.input_names, bound):
                self._context.set_tensor_address(name, value.data_ptr())
            for name, value in outputs.items():
                self._context.set_tensor_address(name, value.data_ptr())
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError(f"TensorRT failed to run {self.path.name}")
        return [
            outputs[n] if n == "reference_view" else outputs[n].float() for n in self.output_names
        ]


def load_window_backend(
    backend: str, path: PathLike, model_type: str, device: str | torch.device
) -> OnnxWindowModel | TensorRTWindowModel:
    """The window engine of ``backend`` (``onnxruntime`` or ``tensorrt``) in ``path``."""
    if backend == "onnxruntime":
        return OnnxWindowModel(path, device, model_type=model_type)
    if backend == "tensorrt":
        return TensorRTWindowModel(path, device, model_type=model_type)
    raise ValueError(f"unknown window engine backend {backend!r}; valid: onnxruntime, tensorrt")
