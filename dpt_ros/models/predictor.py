"""Inference on images: the original pipelines (DPT, Depth Anything V2, Depth Anything 3)
behind one call.

``Predictor`` owns a model on a device at a precision. Images go in as RGB uint8
arrays; depth comes out as float32 (relative inverse depth or metres, as the model
type says) and segmentation as uint8 ADE20K ids (1..150, 0 = unlabelled).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from dpt_ros.models import da3_transforms
from dpt_ros.models.geometry import upsample_depth
from dpt_ros.models.options import PRECISIONS, PredictorOptions, device_problem
from dpt_ros.models.registry import DEPTH_ANYTHING_3, ModelSpec, get_spec
from dpt_ros.models.transforms import (
    network_input_problem,
    network_input_size,
    preprocess,
    resize_output,
)
from dpt_ros.models.weights.checkpoint import PathLike
from dpt_ros.runtime.backend import create_runtime
from dpt_ros.runtime.runtimes import Runtime

_LOG = logging.getLogger(__name__)

#: Torch dtype of each precision name of :data:`~dpt_ros.models.options.PRECISIONS`.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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
            raise ValueError(
                f"device {device!r} requested but CUDA is not available (use 'cpu' or 'auto')"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    raise ValueError(device_problem(device))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``fp32``, ``fp16``, ``bf16`` or ``auto`` (fp16 on CUDA, fp32 on the CPU)."""
    name = (precision or "auto").strip().lower()
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}"
        ) from None


class Predictor:
    """Runs one model type on RGB images.

    Args:
        options: a :class:`PredictorOptions`, or a model type name (e.g. ``dpt_hybrid``)
            with any of its fields as keywords: ``weights``, ``device``, ``precision``
            (here ``fp32`` unless given), ``random_weights``, ``network_size``
            ((width, height), multiples of the model's ``size_multiple``: 32 for DPT,
            14 for Depth Anything V2 and 3), ``keep_aspect_ratio``, ``compile``,
            ``channels_last``, ``backend`` (default ``auto``: the fastest this machine
            has), ``engine``, ``engine_build``. Reduced precision runs the torch model
            under autocast (normalisation layers float32); pre- and post-processing
            stay float32. Without an engine file, an engine backend builds one engine
            per network input shape, once, in the cache (``<cache_dir>/engines``): in
            the background from :meth:`warm_up` (``engine_build: lazy``, the default) or
            within it (``eager``); PyTorch runs a shape until its engine is ready, and
            everything if none can be built. An engine file
            resizes every image to the file's fixed input (export it with the camera's
            aspect ratio), splits and pads batches, and computes at the engine's own
            precision.
        cache_dir: checkpoint cache directory override.
        progress: show a download progress bar.

    Raises:
        ValueError: invalid options (every problem named).
        CheckpointError: the weights cannot be had or do not fit the model type.
    """

    def __init__(
        self,
        options: PredictorOptions | str,
        *,
        cache_dir: PathLike | None = None,
        progress: bool = True,
        **option_fields: Any,
    ) -> None:
        if isinstance(options, str):
            option_fields.setdefault("precision", "fp32")
            options = PredictorOptions(model_type=options, **option_fields)
        elif option_fields:
            options = options.with_(**option_fields)
        self.options = options.validated()
        self.spec: ModelSpec = get_spec(options.model_type)
        self.device = resolve_device(options.device)
        self.dtype = resolve_precision(options.precision, self.device)
        self.runtime: Runtime = create_runtime(
            options, self.device, self.dtype, cache_dir=cache_dir, progress=progress
        )
        if self.runtime.fixed_input_shape is not None:
            # An exported engine has one fixed input: every image is resized to it.
            self.net_hw = tuple(int(v) for v in self.runtime.fixed_input_shape[2:])
            self.keep_aspect_ratio = False
        else:
            w, h = options.network_size or (self.spec.net_width, self.spec.net_height)
            self.net_hw = (int(h), int(w))
            self.keep_aspect_ratio = options.keep_aspect_ratio
        # Normalisation constants live on the device, in float64 as the originals compute
        # them (float32 would be one step off on ImageNet values): no copy per frame.
        self._mean = torch.tensor(self.spec.mean, dtype=torch.float64, device=self.device)
        self._std = torch.tensor(self.spec.std, dtype=torch.float64, device=self.device)

    @property
    def model(self) -> torch.nn.Module | None:
        """The torch network (torch backend), else None."""
        return self.runtime.model

    @property
    def backend(self) -> str:
        """The backend that runs the network: ``torch``, ``onnxruntime`` or ``tensorrt``
        (``auto`` resolved; ``torch`` after an engine could not be built)."""
        return self.runtime.name

    @property
    def eager_on_cpu(self) -> bool:
        """The network runs now in eager PyTorch on the CPU: nothing in it is compiled,
        recorded or built per input shape beyond the CPU convolution kernels, which
        every network of this process with the same layer shapes shares."""
        return self.device.type == "cpu" and self.backend == "torch" and not self.runtime.compiled

    @property
    def backend_status(self) -> str:
        """What runs the network and why, e.g. ``onnxruntime (cached engine)``, ``torch
        (onnxruntime engine building)`` (see :attr:`Runtime.status`)."""
        return self.runtime.status

    @property
    def engine_cached(self) -> bool | None:
        """Engines built on first use: True when every engine in use came from the
        cache, False when one was built by this process, None when none runs (the
        torch backend, an engine file, or no engine ready yet)."""
        return self.runtime.engine_cached

    @property
    def is_depth(self) -> bool:
        return self.spec.is_depth

    @property
    def is_metric(self) -> bool:
        """Depth in metres (metric depth models)."""
        return self.spec.is_metric

    @property
    def is_da3(self) -> bool:
        """A Depth Anything 3 type: two outputs (:attr:`second_output`), preprocessing
        by OpenCV on the CPU as the reference's, depth turned into the published kind
        by :meth:`da3_on_device`."""
        return self.spec.family == DEPTH_ANYTHING_3

    @property
    def needs_intrinsics(self) -> bool:
        """Metres need each image's camera matrix (Depth Anything 3's metric type: its
        output times the focal length, see :meth:`da3_on_device`)."""
        return self.is_da3 and self.is_metric

    @property
    def second_output(self) -> str:
        """``confidence`` or ``sky`` (Depth Anything 3), else ''."""
        return self.spec.second_output

    @property
    def process_res(self) -> int:
        """Depth Anything 3: the longest side's target (the reference's ``process_res``):
        the larger side of the network size (504 by default)."""
        return max(self.net_hw)

    def input_size(self, image_hw: Sequence[int]) -> tuple[int, int]:
        """Network input (h, w) for an image of (H, W).

        Raises:
            ValueError: the input would be too elongated or too large for the network
                size (:func:`~dpt_ros.models.transforms.network_input_problem`), with
                the reason.
        """
        spec = self.spec
        if self.is_da3 and self.keep_aspect_ratio:
            size = da3_transforms.network_input_size(image_hw, self.process_res)
        elif self.is_da3:  # an engine file's fixed input
            size = (int(self.net_hw[0]), int(self.net_hw[1]))
        else:
            size = network_input_size(
                image_hw,
                self.net_hw,
                self.keep_aspect_ratio,
                spec.size_multiple,
                spec.resize_method,
            )
        problem = network_input_problem(image_hw, size, self.net_hw)
        if problem:
            raise ValueError(f"{spec.name}: {problem}")
        return size

    @torch.inference_mode()
    def network(self, x: torch.Tensor) -> torch.Tensor:
        """The network alone on a normalised (B, 3, h, w) float32 batch on the device:
        (B, h, w) depth or (B, C, h, w) logits, in the compute precision."""
        return self.runtime(x)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 on the device -> the normalised network input.

        Depth Anything 3: resized on the CPU by OpenCV, as the reference does it (uint8
        ``INTER_AREA`` / ``INTER_CUBIC``, see :mod:`dpt_ros.models.da3_transforms`)."""
        hw = self.input_size(images.shape[1:3])
        if self.is_da3:
            host = images.cpu().numpy()
            x = np.stack([da3_transforms.preprocess_to(rgb, hw, self.process_res) for rgb in host])
            return torch.from_numpy(x).to(self.device, non_blocking=True)
        return preprocess(images, hw, self._mean, self._std)

    def network_intrinsics(self, k: np.ndarray, image_hw: Sequence[int]) -> np.ndarray:
        """(3, 3) camera matrix of the network input of an (H, W) image whose camera
        matrix is ``k`` (pixels): rescaled as the image is, per resize, as the
        reference's ``InputProcessor`` does it (Depth Anything 3)."""
        return da3_transforms.network_intrinsics_to(
            k, image_hw, self.input_size(image_hw), self.process_res
        )

    @torch.inference_mode()
    def da3_on_device(
        self,
        images: torch.Tensor,
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        mark: Callable[[str], None] | None = None,
        fill_sky: bool = False,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Depth Anything 3 on a uint8 batch, at the network's resolution, on the device.

        Args:
            images: (B, H, W, 3) uint8 RGB, on any device.
            intrinsics: the metric type's camera matrices of the images ((3, 3), or one
                per image), pixels; None: no metres (the depth returned is None).
            mark: called with ``preprocess`` and ``model`` as each stage is queued.
            fill_sky: mono and metric types: sky pixels (sky map >= 0.3) get the 99th
                percentile of the other pixels' depth, as the reference's output
                (the exact quantile); else they are infinitely far: +Inf metres, 0
                inverse depth.

        Returns:
            (depth, second), each (B, h, w) float32 at :meth:`input_size`: depth is
            relative inverse depth for the relative types (the inverse of the
            network's depth, which grows with distance) or metres for the metric type
            (network output x ((fx + fy) / 2) / 300, fx and fy of the network input);
            second is the confidence (any-view types; 1 + exp, >= 1, larger = more
            confident) or the sky map (mono and metric; sky where >= 0.3).
        """
        if not self.is_da3:
            raise ValueError(f"{self.spec.name} is not a Depth Anything 3 model")
        out = self._network_output(images, mark).float()
        depth, second = out[:, 0], out[:, 1]
        if self.second_output == "sky":
            sky = second >= da3_transforms.SKY_THRESHOLD
            if fill_sky:
                depth = da3_transforms.fill_sky(depth, second)
            else:
                depth = depth.masked_fill(sky, float("inf"))
        if not self.is_metric:
            return 1.0 / depth, second
        if intrinsics is None:
            return None, second
        image_hw = tuple(images.shape[1:3])
        ks = [intrinsics] * len(out) if np.ndim(intrinsics) == 2 else list(intrinsics)
        if len(ks) != len(out):
            raise ValueError(f"{len(ks)} camera matrices for {len(out)} images")
        net_k = np.stack([self.network_intrinsics(np.asarray(k), image_hw) for k in ks])
        return da3_transforms.metric_depth(depth, torch.from_numpy(net_k).to(depth.device)), second

    @torch.inference_mode()
    def run_on_device(
        self,
        images: torch.Tensor,
        output_hw: Sequence[int] | None = None,
        mark: Callable[[str], None] | None = None,
    ) -> torch.Tensor:
        """The whole model on a uint8 batch, left on the device (no wait).

        Args:
            images: (B, H, W, 3) uint8 RGB, on any device (moved to the model's).
            output_hw: (h, w) of the result; None = the images' (H, W).
            mark: called with ``preprocess``, ``model`` and ``postprocess`` as each
                stage is queued (timings).

        Returns:
            Depth models: (B, h, w) float32 (relative inverse depth, or metres for
            metric models). Segmentation models: (B, h, w) uint8 ids 1..num_classes.
        """
        hw = tuple(images.shape[1:3] if output_hw is None else output_hw)
        if self.is_da3:  # relative inverse depth (the metric type needs intrinsics)
            result = resize_output(self.depth_on_device(images, mark), hw, "inverse_depth")
        else:
            result = self.postprocess(self._network_output(images, mark), hw)
        (mark or _no_mark)("postprocess")
        return result

    @torch.inference_mode()
    def depth_on_device(
        self, images: torch.Tensor, mark: Callable[[str], None] | None = None
    ) -> torch.Tensor:
        """The depth network on a uint8 batch, at the network's resolution (no resize),
        left on the device: for callers that resize depth their own way.

        Args:
            images: (B, H, W, 3) uint8 RGB, on any device.
            mark: called with ``preprocess`` and ``model`` as each stage is queued.

        Returns:
            (B, h, w) float32 at :meth:`input_size`: relative inverse depth, or metres
            for metric models.
        """
        if not self.is_depth:
            raise ValueError(f"{self.spec.name} is a segmentation model; it has no depth")
        if self.is_da3:
            if self.needs_intrinsics:
                raise ValueError(
                    f"{self.spec.name} needs the camera's intrinsics for metres: use "
                    "da3_on_device with them"
                )
            return self.da3_on_device(images, mark=mark)[0]  # type: ignore[return-value]
        out = self._network_output(images, mark).float()
        return out.squeeze(1) if out.ndim == 4 else out

    @property
    def depth_ceiling(self) -> float:
        """Metres beyond which a metric model cannot tell depth: ``1 / shift`` for DPT's
        inverted outputs (7.26 m for NYU, 172.7 m for KITTI), the maximum depth of
        Depth Anything V2's metric models (sigmoid times 20 m or 80 m), else ``inf``
        (Depth Anything 3's metric type has no ceiling)."""
        spec = self.spec
        if spec.is_metric and spec.max_depth > 0:
            return spec.max_depth
        if spec.is_metric and spec.invert and spec.shift > 0:
            return 1.0 / spec.shift
        return float("inf")

    @torch.inference_mode()
    def segment_on_device(
        self,
        images: torch.Tensor,
        output_hw: Sequence[int],
        mark: Callable[[str], None] | None = None,
        confidence: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`run_on_device` for segmentation models, with the confidence of each label.

        Returns:
            (labels, confidence): (B, h, w) uint8 ids 1..num_classes, and with
            ``confidence`` (B, h, w) uint8 ``round(255 * p)``, where p is the softmax
            probability of the chosen class, from the same logits resized to
            ``output_hw`` (else None).
        """
        if self.is_depth:
            raise ValueError(f"{self.spec.name} is a depth model; it has no labels")
        logits = resize_output(
            self._network_output(images, mark), tuple(output_hw), self.spec.output_interpolation
        )
        labels = labels_from_logits(logits)
        probability = label_confidence(logits) if confidence else None
        (mark or _no_mark)("postprocess")
        return labels, probability

    def _network_output(
        self, images: torch.Tensor, mark: Callable[[str], None] | None
    ) -> torch.Tensor:
        mark = mark or _no_mark
        x = self.preprocess(images.to(self.device, non_blocking=True))
        mark("preprocess")
        out = self.network(x)
        mark("model")
        return out

    def postprocess(self, out: torch.Tensor, output_hw: Sequence[int]) -> torch.Tensor:
        """Network output -> (B, h, w) float32 depth or uint8 ids at ``output_hw``."""
        out = resize_output(out, tuple(output_hw), self.spec.output_interpolation)
        if self.is_depth:
            return out
        return labels_from_logits(out)

    def prepare(self, image_hw: Sequence[int], batch: int = 1) -> None:
        """Gets the engine for (H, W) images in batches of ``batch`` ready (engines
        built on first use; nothing to do otherwise): loads it from the cache, or builds
        it now with ``engine_build: eager`` (minutes on a Jetson, seconds to a minute on
        a CPU), starts building it in the background with ``lazy``. Call it before a new
        image size where waiting is fine (start, batch tools); frames of a size nobody
        prepared run on PyTorch while their engine is built in the background."""
        self.runtime.prepare((batch, 3, *self.input_size(image_hw)))

    def warm_up(self, image_hw: Sequence[int] | None = None, batch: int = 1) -> float:
        """Runs the pipeline once on a black frame so the first real frame is not slow
        (CUDA context, cuDNN algorithm choice, ``torch.compile`` for this shape, the
        cached engine for this shape: loaded, or built with ``engine_build: eager``).

        Args:
            image_hw: camera image (H, W) to warm up for; None = the network size.
            batch: frames per forward pass.

        Returns:
            Seconds the warm-up took.
        """
        hw = tuple(image_hw) if image_hw else self.net_hw
        t0 = time.perf_counter()
        self.prepare(hw, batch)
        frames = torch.zeros((batch, int(hw[0]), int(hw[1]), 3), dtype=torch.uint8)
        for _ in range(2 if self.runtime.compiled else 1):  # CUDA graphs record on run 2
            if self.is_da3:
                self.da3_on_device(frames)
            else:
                self.run_on_device(frames)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def predict_batch(
        self, images: np.ndarray | Sequence[np.ndarray], output_hw: Sequence[int] | None = None
    ) -> np.ndarray:
        """Runs a batch of same-size images.

        Args:
            images: (B, H, W, 3) uint8 RGB array, or a sequence of (H, W, 3) arrays.
            output_hw: size of the result; None = the images' (H, W).

        Returns:
            (B, h, w) float32 depth or uint8 labels, see :meth:`run_on_device`.

        An engine built on first use is got ready (:meth:`prepare`) before the batch
        runs: with ``engine_build: eager`` the first call of a new size waits for it.
        """
        batch = np.stack(images) if not isinstance(images, np.ndarray) else images
        _check_rgb(batch, batched=True)
        self.prepare(batch.shape[1:3], batch.shape[0])
        return self.run_on_device(self.upload(batch), output_hw).cpu().numpy()

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 array -> tensor on the device (pinned, asynchronous on CUDA)."""
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def predict_da3(
        self,
        image: np.ndarray,
        intrinsics: np.ndarray | None = None,
        output_hw: Sequence[int] | None = None,
        fill_sky: bool = True,
    ) -> dict[str, np.ndarray]:
        """Depth Anything 3 on one (H, W, 3) uint8 RGB image, as the reference gives it.

        Args:
            image: the image.
            intrinsics: (3, 3) camera matrix of the image (pixels); needed for metres
                (the metric type), ignored by the others.
            output_hw: size of the results; None = the image's. Not resized at
                :meth:`input_size` (the network grid); else depth as the geometry
                resizes it (bilinear in inverse depth) and the second output bilinearly,
                both with ``align_corners=False``.
            fill_sky: see :meth:`da3_on_device` (here the reference's filling).

        Returns:
            ``depth`` (relative inverse depth, or metres; absent for the metric type
            without ``intrinsics``) and ``confidence`` or ``sky``, (h, w) float32.

        Raises:
            ValueError: not a Depth Anything 3 model, or not an RGB image.
        """
        _check_rgb(image, batched=False)
        self.prepare(image.shape[:2])
        depth, second = self.da3_on_device(self.upload(image[None]), intrinsics, None, fill_sky)
        hw = tuple(image.shape[:2] if output_hw is None else output_hw)
        found = {self.second_output: da3_transforms.resize_maps(second, hw)}
        if depth is not None and self.is_metric:
            found["depth"] = upsample_depth(depth, hw)
        elif depth is not None:
            found["depth"] = resize_output(depth, hw, self.spec.output_interpolation)
        return {name: value[0].cpu().numpy() for name, value in found.items()}

    def predict(self, image: np.ndarray, output_hw: Sequence[int] | None = None) -> np.ndarray:
        """Runs one (H, W, 3) uint8 RGB image; returns (h, w) float32 depth or uint8 labels."""
        _check_rgb(image, batched=False)
        return self.predict_batch(image[None], output_hw)[0]


def _no_mark(stage: str) -> None:
    pass


def labels_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) class scores -> (B, H, W) uint8 label ids 1..C (0 stays
    "unlabelled", the ADE20K convention)."""
    return (logits.argmax(dim=1) + 1).to(torch.uint8)


def label_confidence(logits: torch.Tensor) -> torch.Tensor:
    """The softmax probability of the arg-max class, as mono8.

    Args:
        logits: (B, C, H, W) float class scores.

    Returns:
        (B, H, W) uint8 ``round(255 * max_c softmax(logits)_c)``; 255 = certain,
        ``round(255 / C)`` = uniform.
    """
    logits = logits.float()
    # max_c softmax = 1 / sum_c exp(l_c - max l): no (B, C, H, W) probability tensor kept.
    top = logits.amax(dim=1, keepdim=True)
    probability = 1.0 / torch.exp(logits - top).sum(dim=1)
    return torch.round(probability * 255.0).to(torch.uint8)


def download_to_host(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Device tensors -> numpy, in order, with one asynchronous copy each and a single
    wait.

    On CUDA the copies go to pinned host memory and one event per device marks them
    all done; on the CPU this is a plain conversion.
    """
    host = [v.to("cpu", non_blocking=True) for v in tensors]
    for device in {v.device for v in tensors}:
        if device.type == "cuda":
            done = torch.cuda.Event()
            done.record(torch.cuda.current_stream(device))
            done.synchronize()  # the one wait: every copy above has landed
    return [v.numpy() for v in host]


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
