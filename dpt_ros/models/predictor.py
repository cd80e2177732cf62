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

from .checkpoint import PathLike, load_model
from .registry import ModelSpec, get_spec
from .transforms import network_input_size, preprocess, resize_output

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


class Predictor:
    """Runs one DPT model type on RGB images.

    Args:
        model_type: registry name, e.g. ``dpt_hybrid`` or ``dpt_hybrid_ade20k``.
        weights: weights file; None uses the cache / official download.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``fp16``, ``bf16`` or ``auto``. Reduced precision runs the
            model under autocast; pre- and post-processing stay float32.
        random_weights: explicitly use random weights (benchmarks, demos).
        network_size: (width, height) to resize around instead of the model's own
            (multiples of 32); None = the model's.
        keep_aspect_ratio: resize both axes by the same scale (the original's behaviour).
        cache_dir: checkpoint cache directory override.
        progress: show a download progress bar.
    """

    def __init__(self, model_type: str, weights: Optional[PathLike] = None,
                 device: str = "auto", precision: str = "fp32", *,
                 random_weights: bool = False,
                 network_size: Optional[Tuple[int, int]] = None,
                 keep_aspect_ratio: bool = True, cache_dir: Optional[PathLike] = None,
                 progress: bool = True) -> None:
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
        self.model = load_model(model_type, weights, random_weights=random_weights,
                                cache_dir=cache_dir, progress=progress).to(self.device)

    @property
    def is_depth(self) -> bool:
        return self.spec.is_depth

    def input_size(self, image_hw: Sequence[int]) -> Tuple[int, int]:
        """Network input (h, w) for an image of (H, W)."""
        return network_input_size(image_hw, self.net_hw, self.keep_aspect_ratio)

    def _autocast(self):
        if self.dtype == torch.float32:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.dtype)

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
        size = self.input_size(images.shape[1:3])
        x = preprocess(images, size, self.spec.mean, self.spec.std)
        with self._autocast():
            out = self.model(x)
        target = tuple(output_hw) if output_hw is not None else tuple(images.shape[1:3])
        out = resize_output(out, target)
        if self.is_depth:
            return out
        return (out.argmax(dim=1) + 1).to(torch.uint8)

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
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return self.forward_tensor(tensor, output_hw).cpu().numpy()

    def predict(self, image: np.ndarray,
                output_hw: Optional[Sequence[int]] = None) -> np.ndarray:
        """Runs one (H, W, 3) uint8 RGB image; returns (h, w) float32 depth or uint8 labels."""
        _check_rgb(image, batched=False)
        return self.predict_batch(image[None], output_hw)[0]


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
