"""Inference on images: the original DPT pipeline behind one call.

``Predictor`` owns a model on a device at a precision. Images go in as RGB uint8
arrays; depth comes out as float32 (relative inverse depth or metres, as the model
type says) and segmentation as uint8 ADE20K ids (1..150, 0 = unlabelled).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from dpt_ros.models.weights.checkpoint import PathLike, load_model
from dpt_ros.models.registry import ModelSpec, get_spec
from dpt_ros.models.transforms import network_input_size, preprocess, resize_output

_LOG = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: malformed name, or CUDA asked for but not available.
    """
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available "
                             "(use 'cpu' or 'auto')")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist; this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda, cuda:N")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``fp32``, ``fp16``, ``bf16`` or ``auto`` (fp16 on CUDA, fp32 on the CPU)."""
    name = (precision or "auto").strip().lower()
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}; valid: auto, "
                         f"{', '.join(PRECISIONS)}") from None


#: ``compile`` values: ``none`` or a ``torch.compile`` mode (``reduce-overhead`` adds
#: CUDA graphs on the GPU).
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")

#: ``backend`` values: PyTorch, or an exported engine (``dpt-ros export``).
BACKENDS = ("torch", "onnxruntime", "tensorrt")


class Predictor:
    """Runs one DPT model type on RGB images.

    Args:
        model_type: registry name, e.g. ``dpt_hybrid`` or ``dpt_hybrid_ade20k``.
        weights: weights file; None uses the cache / official download.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``fp16``, ``bf16`` or ``auto``. Reduced precision runs the
            model under autocast (normalisation layers and softmax stay float32 there);
            pre- and post-processing stay float32.
        random_weights: explicitly use random weights (benchmarks, demos).
        network_size: (width, height) to resize around instead of the model's own
            (multiples of 32); None = the model's.
        keep_aspect_ratio: resize both axes by the same scale (the original's behaviour).
        cache_dir: checkpoint cache directory override.
        progress: show a download progress bar.
        compile: ``none`` or a ``torch.compile`` mode of :data:`COMPILE_MODES`. Shapes
            are static: each new input size compiles once (see :meth:`warm_up`).
        channels_last: keep activations NHWC for the convolutions (faster with oneDNN
            and cuDNN; the results agree to float32 rounding).
        backend: ``torch``, or ``onnxruntime`` / ``tensorrt`` to run an exported
            fixed-shape engine given as ``engine``: images are then resized to the
            engine's input size (export it with the camera's aspect ratio), batches of
            another size are split and padded, and the precision is the engine's own.
        engine: the exported ``.onnx`` / ``.engine`` file for those backends.
    """

    def __init__(self, model_type: str, weights: Optional[PathLike] = None,
                 device: str = "auto", precision: str = "fp32", *,
                 random_weights: bool = False,
                 network_size: Optional[Tuple[int, int]] = None,
                 keep_aspect_ratio: bool = True, cache_dir: Optional[PathLike] = None,
                 progress: bool = True, compile: str = "none", channels_last: bool = True,
                 backend: str = "torch", engine: Optional[PathLike] = None) -> None:
        self.spec: ModelSpec = get_spec(model_type)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        if network_size is not None:
            w, h = (int(v) for v in network_size)
            if w <= 0 or h <= 0 or w % 32 or h % 32:
                raise ValueError(f"network size must be positive multiples of 32, got {w}x{h}")
            self.net_hw = (h, w)
        else:
            self.net_hw = (self.spec.net_height, self.spec.net_width)
        self.keep_aspect_ratio = keep_aspect_ratio
        if compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {compile!r}; valid: "
                             f"{', '.join(COMPILE_MODES)}")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        if backend != "torch" and not engine:
            raise ValueError(f"backend {backend!r} needs an engine file (dpt-ros export)")
        if backend != "torch" and compile != "none":
            raise ValueError(f"compile={compile!r} applies to the torch backend only")
        self.compile = compile
        self.backend = backend
        self.channels_last = channels_last and backend == "torch"
        self.model: Optional[torch.nn.Module] = None
        if backend == "torch":
            self.model = load_model(model_type, weights, random_weights=random_weights,
                                    cache_dir=cache_dir, progress=progress).to(self.device)
            if self.channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
            if self.dtype != torch.float32:
                keep_norms_float32(self.model)
            self._network = (self.model if compile == "none" else
                             torch.compile(self.model, mode=compile, dynamic=False))
        else:
            from dpt_ros.models.runtimes import load_backend
            self._network = load_backend(backend, engine, model_type, self.device)
            # An exported engine has one fixed input: every image is resized to it.
            self.engine_batch = int(self._network.input_shape[0])
            self.net_hw = tuple(int(v) for v in self._network.input_shape[2:])
            self.keep_aspect_ratio = False
        # Normalisation constants live on the device: no host-to-device copy per frame.
        self._mean = torch.tensor(self.spec.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(self.spec.std, dtype=torch.float32, device=self.device)

    @property
    def is_depth(self) -> bool:
        return self.spec.is_depth

    def input_size(self, image_hw: Sequence[int]) -> Tuple[int, int]:
        """Network input (h, w) for an image of (H, W)."""
        return network_input_size(image_hw, self.net_hw, self.keep_aspect_ratio)

    def _autocast(self):
        if self.dtype == torch.float32 or self.backend != "torch":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.inference_mode()
    def network(self, x: torch.Tensor) -> torch.Tensor:
        """The network alone on a normalised (B, 3, h, w) float32 batch on the device:
        (B, h, w) depth or (B, C, h, w) logits, in the compute precision."""
        # NCHW input whatever the model's layout: the first convolution then matches
        # the reference to float32 rounding on the CPU (an NHWC input there changes
        # oneDNN's summation order, which a random hybrid stem amplifies 20x).
        x = x.contiguous()
        if self.backend != "torch":
            return self._run_engine(x)
        with self._autocast():
            return self._network(x)

    def _run_engine(self, x: torch.Tensor) -> torch.Tensor:
        """An exported engine on any batch size: chunks of its fixed batch, the last one
        padded with zeros and the padding dropped from the output."""
        n, outs = self.engine_batch, []
        for start in range(0, x.shape[0], n):
            chunk = x[start:start + n]
            if chunk.shape[0] < n:
                pad = chunk.new_zeros((n - chunk.shape[0],) + tuple(chunk.shape[1:]))
                outs.append(self._network(torch.cat((chunk, pad)))[:chunk.shape[0]])
            else:
                outs.append(self._network(chunk))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 on the device -> the normalised network input."""
        return preprocess(images, self.input_size(images.shape[1:3]), self._mean, self._std)

    @torch.inference_mode()
    def forward_tensor(self, images: torch.Tensor,
                       output_hw: Optional[Sequence[int]] = None) -> torch.Tensor:
        """The pipeline on a uint8 batch already in torch.

        Args:
            images: (B, H, W, 3) uint8 RGB, on any device (moved to the model's).
            output_hw: size of the result; None = the images' (H, W).

        Returns:
            Depth models: (B, h, w) float32 (relative inverse depth, or metres for
            metric models). Segmentation models: (B, h, w) uint8 ids 1..num_classes.
            Both on the model's device.
        """
        images = images.to(self.device, non_blocking=True)
        out = self.network(self.preprocess(images))
        return self.postprocess(out, output_hw if output_hw is not None else images.shape[1:3])

    def postprocess(self, out: torch.Tensor, output_hw: Sequence[int]) -> torch.Tensor:
        """Network output -> (B, h, w) float32 depth or uint8 ids at ``output_hw``."""
        out = resize_output(out, tuple(output_hw))
        if self.is_depth:
            return out
        return (out.argmax(dim=1) + 1).to(torch.uint8)

    def warm_up(self, image_hw: Optional[Sequence[int]] = None, batch: int = 1) -> float:
        """Runs the pipeline once on a black frame so the first real frame is not slow
        (CUDA context, cuDNN algorithm choice, ``torch.compile`` for this shape).

        Args:
            image_hw: camera image (H, W) to warm up for; None = the network size.
            batch: frames per forward pass.

        Returns:
            Seconds the warm-up took.
        """
        import time

        hw = tuple(image_hw) if image_hw else self.net_hw
        t0 = time.perf_counter()
        frames = torch.zeros((batch, int(hw[0]), int(hw[1]), 3), dtype=torch.uint8)
        for _ in range(2 if self.compile != "none" else 1):  # CUDA graphs record on run 2
            self.forward_tensor(frames)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def predict_batch(self, images: Union[np.ndarray, Sequence[np.ndarray]],
                      output_hw: Optional[Sequence[int]] = None) -> np.ndarray:
        """Runs a batch of same-size images.

        Args:
            images: (B, H, W, 3) uint8 RGB array, or a sequence of (H, W, 3) arrays.
            output_hw: size of the result; None = the images' (H, W).

        Returns:
            (B, h, w) float32 depth or uint8 labels, see ``forward_tensor``.
        """
        batch = np.stack(images) if not isinstance(images, np.ndarray) else images
        _check_rgb(batch, batched=True)
        return self.forward_tensor(self.upload(batch), output_hw).cpu().numpy()

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 array -> tensor on the device (pinned, asynchronous on CUDA)."""
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def predict(self, image: np.ndarray,
                output_hw: Optional[Sequence[int]] = None) -> np.ndarray:
        """Runs one (H, W, 3) uint8 RGB image; returns (h, w) float32 depth or uint8 labels."""
        _check_rgb(image, batched=False)
        return self.predict_batch(image[None], output_hw)[0]


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


def _check_rgb(array: np.ndarray, batched: bool) -> None:
    ndim = 4 if batched else 3
    shape = "(B, H, W, 3)" if batched else "(H, W, 3)"
    if not isinstance(array, np.ndarray) or array.ndim != ndim or array.shape[-1] != 3:
        got = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"expected a {shape} uint8 RGB array, got {got}")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB values 0..255, got dtype {array.dtype}")
    if min(array.shape[-3:-1]) <= 0:
        raise ValueError(f"image is empty: shape {array.shape}")
