"""Inference on images: every family's original pipeline behind one call.

``Predictor`` owns a model on a device at a precision. Images go in as RGB uint8
arrays (with each image's camera matrix, for the types that need it); a
:class:`~dpt_ros.models.family.Prediction` comes out: float32 depth (relative inverse
depth or metres, as the model type says) and the family's maps, or uint8 ADE20K ids
(1..150, 0 = unlabelled).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from dpt_ros.models.family import ModelSpec, Prediction, ViewCache
from dpt_ros.models.options import PRECISIONS, PredictorOptions, device_problem
from dpt_ros.models.predictor_compat import DeprecatedPredictorMembers
from dpt_ros.models.registry import get_spec, window_model_names
from dpt_ros.models.transforms import check_rgb, labels_from_logits, network_input_problem
from dpt_ros.models.transforms import label_confidence as label_confidence  # its former home
from dpt_ros.models.weights.checkpoint import PathLike
from dpt_ros.models.windows import cameras_on_output, stack_views
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


class Predictor(DeprecatedPredictorMembers):
    """Runs one model type, of any family, on RGB images.

    One entry point on the host, :meth:`infer` (numpy in and out), and one on the
    device, :meth:`infer_on_device` (tensors, no wait); both take the images and, for
    the types whose metres need them, each image's camera matrix, and return a
    :class:`~dpt_ros.models.family.Prediction`. :meth:`predict` is the short form for
    one image's depth or labels. The model type's family sizes, preprocesses and
    decodes (:class:`~dpt_ros.models.family.ModelFamily`).

    Args:
        options: a :class:`PredictorOptions`, or a model type name (e.g. ``dpt_hybrid``)
            with any of its fields as keywords: ``weights``, ``device``, ``precision``
            (here ``fp32`` unless given), ``random_weights``, ``network_size``
            ((width, height), multiples of the model's ``size_multiple``: 32 for DPT,
            14 for the DINOv2 families), ``keep_aspect_ratio``, ``compile``,
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
        #: What windows keep of their views for the next windows (:meth:`infer_window`).
        self.view_cache = ViewCache()
        #: The window shape (an engine cache key) of the last window that could have run
        #: on an engine (:meth:`build_window_engine_if_it_pays`); None before one.
        self._last_window: Any = None
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
    def needs_intrinsics(self) -> bool:
        """Metres need each image's camera matrix (``intrinsics`` of :meth:`infer`)."""
        return self.spec.needs_intrinsics

    @property
    def depth_ceiling(self) -> float:
        """Metres beyond which a metric model cannot tell depth (``inf`` if none): see
        :attr:`ModelSpec.depth_ceiling`."""
        return self.spec.depth_ceiling

    def input_size(self, image_hw: Sequence[int]) -> tuple[int, int]:
        """Network input (h, w) for an image of (H, W).

        Raises:
            ValueError: the input would be too elongated or too large for the network
                size (:func:`~dpt_ros.models.transforms.network_input_problem`), with
                the reason.
        """
        spec = self.spec
        size = spec.family.input_size(spec, image_hw, self.net_hw, self.keep_aspect_ratio)
        problem = network_input_problem(image_hw, size, self.net_hw)
        if problem:
            raise ValueError(f"{spec.name}: {problem}")
        return size

    @torch.inference_mode()
    def network(self, x: torch.Tensor) -> torch.Tensor:
        """The network alone on a normalised (B, 3, h, w) float32 batch on the device:
        its raw output in the compute precision ((B, h, w) depth, (B, C, h, w) logits,
        or the family's maps)."""
        return self.runtime(x)

    def preprocess(
        self, images: torch.Tensor, input_hw: Sequence[int] | None = None
    ) -> torch.Tensor:
        """(B, H, W, 3) uint8 on the device -> the normalised network input, on the
        device, as the model type's family prepares it. ``input_hw``: the network input
        (h, w) where the caller has it (:meth:`input_size` of (H, W)); None = sized here."""
        spec = self.spec
        hw = self.input_size(images.shape[1:3]) if input_hw is None else tuple(input_hw)
        x = spec.family.preprocess(spec, images, hw, self.net_hw, self._mean, self._std)
        return x.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def infer_on_device(
        self,
        images: torch.Tensor,
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        output_hw: Sequence[int] | None = None,
        mark: Callable[[str], None] | None = None,
        fill_sky: bool = False,
        input_hw: Sequence[int] | None = None,
    ) -> Prediction:
        """The model on a uint8 batch, left on the device (no wait).

        Args:
            images: (B, H, W, 3) uint8 RGB, on any device (moved to the model's).
            intrinsics: each image's (3, 3) camera matrix (pixels), or one for all;
                needed for metres where :attr:`needs_intrinsics` (without them the
                prediction has no ``depth``), ignored by the other types.
            output_hw: (h, w) to resize every output to, as the model type's family
                resizes them; None = the network's grid (:meth:`input_size`).
            mark: called with ``preprocess`` and ``model`` as each stage is queued
                (timings).
            fill_sky: types with a sky map: sky pixels get the far scene's depth (the
                99th percentile of the others, as the reference's output); else they
                are infinitely far (+Inf metres, 0 inverse depth).
            input_hw: the network input (h, w) of the images, where the caller has
                computed it (:meth:`input_size`); None = sized here.

        Returns:
            The :class:`~dpt_ros.models.family.Prediction` of the batch, float32 maps
            (labels uint8) on the device.
        """
        mark = mark or _no_mark
        spec = self.spec
        x = self.preprocess(images.to(self.device, non_blocking=True), input_hw)
        mark("preprocess")
        out = self.network(x)
        mark("model")
        found = spec.family.decode(
            spec, out, tuple(images.shape[1:3]), self.net_hw, intrinsics, fill_sky
        )
        if output_hw is not None:
            found = spec.family.resize(spec, found, output_hw)
        if found.logits is not None:
            found.labels = labels_from_logits(found.logits)
        return found

    def infer(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        output_hw: Sequence[int] | None = None,
        fill_sky: bool = False,
    ) -> Prediction:
        """The model on a batch of same-size images, on the host.

        Args:
            images: (B, H, W, 3) uint8 RGB array, or a sequence of (H, W, 3) arrays.
            intrinsics: see :meth:`infer_on_device`.
            output_hw: size of the results; None = the images' (H, W).
            fill_sky: see :meth:`infer_on_device`.

        Returns:
            The :class:`~dpt_ros.models.family.Prediction` as numpy arrays at
            ``output_hw``: float32 depth (``inverse_depth`` or ``depth`` in metres, as
            the type says) and its maps, or uint8 ``labels``.

        An engine built on first use is got ready (:meth:`prepare`) before the batch
        runs: with ``engine_build: eager`` the first call of a new size waits for it.
        """
        batch = np.stack(images) if not isinstance(images, np.ndarray) else images
        check_rgb(batch, batched=True)
        self.prepare(batch.shape[1:3], batch.shape[0])
        hw = tuple(batch.shape[1:3] if output_hw is None else output_hw)
        found = self.infer_on_device(self.upload(batch), intrinsics, hw, fill_sky=fill_sky)
        found.logits = None  # (B, C, H, W): the labels are what the host needs
        arrays = found.arrays()
        return found.with_arrays(dict(zip(arrays, download_to_host(list(arrays.values())))))

    def infer_window(
        self,
        images: Sequence[np.ndarray],
        reference_view: str = "saddle_balanced",
        extrinsics: np.ndarray | None = None,
        intrinsics: np.ndarray | None = None,
        output_hw: tuple[int, int] | None = None,
        view_keys: Sequence[Hashable] | None = None,
        align_to_input: bool = False,
        mode: str | None = None,
    ) -> Prediction:
        """One window of N views in one forward, on the host: each view's depth and
        camera, consistent across the window (types with windows:
        :func:`~dpt_ros.models.registry.window_model_names`).

        The views are sized as single images are (``network_size``: Depth Anything 3's
        ``process_res``, the longer side). An engine backend (``onnxruntime``,
        ``tensorrt``, or ``auto`` where it picks one) runs each window shape (N, network
        size, reference-view strategy, known cameras or not) on a window engine built
        and cached as single images' engines are (``engine_build``), PyTorch until it is
        ready; an engine file (``engine``) runs single images only.

        Args:
            images: N (H, W, 3) uint8 RGB arrays of one size.
            reference_view: Depth Anything 3: how a window of 3 views or more picks the
                view its global attention is anchored on: ``saddle_balanced`` (the
                reference's default), ``first``, ``middle`` or ``saddle_sim_range``.
            extrinsics: known cameras, (N, 3, 4) or (N, 4, 4) camera-from-world, OpenCV
                axes (with ``intrinsics``): they condition the forward; None: the model
                estimates them alone.
            intrinsics: (N, 3, 3) pixels of the images, with ``extrinsics``.
            output_hw: (h, w) to resize the maps to (the intrinsics follow); None = the
                network grid (:meth:`input_size`). The resized grid still covers
                ``cameras.network_box`` of each image.
            view_keys: N identities of the views (e.g. each frame's stamp; one key, one
                image): a view whose key came in one of the last windows reuses the
                work that depends on it alone (Depth Anything 3: the blocks before the
                first global one), so a keyframe costs less the second time. The result
                is the same. None: nothing is kept.
            align_to_input: with ``extrinsics`` and ``intrinsics``: bring the result into
                the given cameras' world and unit, as Depth Anything 3's API does
                (``align_to_input_ext_scale``): the depth divided by the Umeyama scale of
                the given camera centres onto the predicted ones (kept in
                ``cameras.scale``), the cameras the given ones (3 x 4) and the
                intrinsics the given ones on the maps' grid
                (:mod:`dpt_ros.models.camera_alignment`; from 10 views the fit is the
                reference's RANSAC). The given cameras must move (2 views or more, not
                all at one centre). False: the window's own world
                and unit, ``cameras.scale`` None.
            mode: VGGT's preprocessing: ``crop`` (None: the reference's default; the
                height of a tall view centre-cropped) or ``pad`` (the longer side to the
                network size, padded with white to a square); other families refuse
                any mode.

        Returns:
            A :class:`~dpt_ros.models.family.Prediction` of numpy arrays whose batch axis
            is the N views: ``depth`` (N, h, w) float32 in the window's own unit (not
            metres; with ``align_to_input`` in the given cameras' unit), larger =
            farther; ``confidence`` (N, h, w) float32; ``cameras`` a
            :class:`~dpt_ros.models.family.WindowCameras` (camera-from-world in the
            window's world and unit, or the given ones with ``align_to_input``;
            intrinsics on the maps' grid, and the region of each image the grid covers
            where it is not the whole image: ``network_box``).

        Raises:
            ValueError: a type without windows (the message names those with them), no
                views, views of different sizes, an unknown ``reference_view`` or
                ``mode``, cameras of the wrong shape or given to VGGT (which takes
                none), or ``align_to_input`` without both
                cameras or with cameras that give no scale.
        """
        spec = self.spec
        batch = self._window_views(images, extrinsics, intrinsics, align_to_input)
        image_hw = batch.shape[1:3]
        input_hw = self.input_size(image_hw)
        x, boxes = spec.family.window_input(
            spec, torch.from_numpy(batch), input_hw, self.net_hw, self._mean, self._std, mode
        )
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        network = self._window_network(len(batch), hw, reference_view, extrinsics is not None)
        x = x.to(self.device, non_blocking=True).contiguous()
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32),
        ):
            found = self._forward_window(
                network,
                x,
                image_hw,
                reference_view,
                extrinsics,
                intrinsics,
                view_keys,
                align_to_input,
            )
            cameras = replace(found.cameras, network_box=boxes)
            if output_hw is not None and tuple(output_hw) != tuple(hw):
                found = spec.family.resize(spec, found, output_hw)
                given = intrinsics if align_to_input else None
                cameras = cameras_on_output(cameras, hw, image_hw, output_hw, given)
        arrays = found.arrays()
        host = dict(zip(arrays, download_to_host(list(arrays.values()))))
        return replace(found.with_arrays(host), cameras=cameras)

    def _window_views(
        self,
        images: Sequence[np.ndarray],
        extrinsics: np.ndarray | None,
        intrinsics: np.ndarray | None,
        align_to_input: bool,
    ) -> np.ndarray:
        """The (N, H, W, 3) batch of a window's views, once the call is known to be one
        this predictor can run (see :meth:`infer_window`'s ``Raises``)."""
        spec = self.spec
        if align_to_input and (extrinsics is None or intrinsics is None):
            raise ValueError(
                "align_to_input needs the known cameras: pass both extrinsics and intrinsics"
            )
        if not spec.windows:
            raise ValueError(
                f"{spec.name} sees one image at a time; windows of views need one of: "
                f"{', '.join(window_model_names())}"
            )
        if not spec.family.takes_known_cameras and (
            extrinsics is not None or intrinsics is not None
        ):
            # before an engine is asked for: its build would fail and turn window engines off
            raise ValueError(
                f"{spec.family.title} estimates the cameras itself: it takes no known cameras"
            )
        batch = stack_views(images)
        # (an engine runtime's torch copy is not loaded again just to ask)
        if not hasattr(self.runtime, "window_engine") and self.runtime.model is None:
            raise ValueError(
                f"windows run on PyTorch or on engines built on first use; this predictor "
                f"runs {self.backend} from an engine file of single images: use backend "
                "torch, or an engine backend without an engine file"
            )
        return batch

    def _forward_window(
        self,
        network: Any,
        x: torch.Tensor,
        image_hw: Sequence[int],
        reference_view: str,
        extrinsics: np.ndarray | None,
        intrinsics: np.ndarray | None,
        view_keys: Sequence[Hashable] | None,
        align_to_input: bool,
    ) -> Prediction:
        """The family's window forward of the (N, 3, h, w) network input ``x`` on
        ``network`` (:meth:`_window_network`), the views kept in :attr:`view_cache`;
        brought into the given cameras' world and unit with ``align_to_input``."""
        spec = self.spec
        found = spec.family.forward_window(
            spec,
            network,
            x,
            image_hw,
            self.net_hw,
            extrinsics,
            intrinsics,
            reference_view,
            view_keys=view_keys,
            cache=self.view_cache,
        )
        if align_to_input and extrinsics is not None and intrinsics is not None:
            found = spec.family.align_window_to_input(
                spec, found, image_hw, self.net_hw, extrinsics, intrinsics
            )
        return found

    def _window_network(
        self, views: int, hw: Sequence[int], reference_view: str, known_cameras: bool
    ) -> Any:
        """What runs a window of ``views`` at the network size ``hw``: its window engine
        where the runtime builds engines on first use and one is ready (see
        :meth:`~dpt_ros.runtime.engine_cache.CachedEngineRuntime.window_engine`), else
        the torch network."""
        window_engine = getattr(self.runtime, "window_engine", None)
        if window_engine is not None:
            # the runtime package on first use, as loading the model imports it
            from dpt_ros.runtime.window_runtimes import NO_REFERENCE, window_shape

            strategies = self.spec.family.reference_views
            if not strategies:
                reference_view = NO_REFERENCE  # VGGT: view 0 is the world, one engine
            elif reference_view not in strategies:
                raise ValueError(
                    f"unknown reference view strategy {reference_view!r}; valid: "
                    f"{', '.join(sorted(strategies))}"
                )
            shape = window_shape(views, (int(hw[0]), int(hw[1])), reference_view, known_cameras)
            self._last_window = shape
            self.runtime.prepare(shape)  # type: ignore[arg-type]
            engine = window_engine(shape)
            if engine is not None:
                return engine
        return self.runtime.model

    def build_window_engine_if_it_pays(self, windows_left: int, torch_s: float) -> Any:
        """For a one-shot command (``dpt-ros reconstruct`` with ``--engine-build auto``),
        after its first window ran on PyTorch in ``torch_s`` seconds: builds the engine
        of that window's shape now when the build pays off over the ``windows_left``
        windows still to run (see
        :meth:`~dpt_ros.runtime.engine_cache.CachedEngineRuntime.window_build_choice`).

        Returns:
            The :class:`~dpt_ros.runtime.build_choice.BuildChoice` made, or None when
            there was nothing to decide: no runtime that builds engines, no window run
            yet, an engine runs the window already, builds failed or are refused under
            ``auto`` (VGGT), or a record measured PyTorch faster.
        """
        choose = getattr(self.runtime, "window_build_choice", None)
        if choose is None or self._last_window is None:
            return None
        return choose(self._last_window, windows_left, torch_s)

    def predict(
        self,
        image: np.ndarray,
        output_hw: Sequence[int] | None = None,
        intrinsics: np.ndarray | None = None,
    ) -> np.ndarray:
        """Runs one (H, W, 3) uint8 RGB image; returns (h, w) float32 depth (relative
        inverse depth, or metres) or uint8 labels. ``intrinsics``: its camera matrix,
        for the types that need it (:attr:`needs_intrinsics`)."""
        check_rgb(image, batched=False)
        if self.needs_intrinsics and intrinsics is None:
            raise ValueError(
                f"{self.spec.name} needs the camera's intrinsics for metres: pass them "
                "(predict(image, intrinsics=K) or infer(images, K))"
            )
        return self._main(self.infer(image[None], intrinsics, output_hw))[0]

    def _main(self, found: Prediction) -> Any:
        """The prediction's depth (metres or relative inverse depth) or labels."""
        if not self.is_depth:
            return found.labels
        return found.depth if self.is_metric else found.inverse_depth

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
            self.infer_on_device(frames, output_hw=hw)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 array -> tensor on the device (pinned, asynchronous on CUDA)."""
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)


def _no_mark(stage: str) -> None:
    pass


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
