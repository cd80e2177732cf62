"""What a model family is: the data of one model type (:class:`ModelSpec`), the
decisions its family makes (:class:`ModelFamily`) and what a model gives
(:class:`Prediction`).

Each family is one module of :mod:`dpt_ros.models.families` (its config table, network
builder, weight-key conversion, input sizing, preprocessing and decoding); the registry
lists the families. No torch import here (command lines parse fast): the families
import torch where they run it.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: this module loads without torch
    import torch
    from torch import nn

    from dpt_ros.models.weights.key_rules import FolderModel, Rule

#: What a model's output means.
RELATIVE_INVERSE_DEPTH = "relative_inverse_depth"
METRIC_DEPTH = "metric_depth"
LABELS = "labels"
#: ImageNet's statistics of RGB in [0, 1], the usual input normalisation.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RELEASE_URL = "https://github.com/intel-isl/DPT/releases/download/1_0/"
_HUB_URL = "https://huggingface.co/{repo}/resolve/main/{file}"


@dataclass(frozen=True)
class WindowCameras:
    """The cameras a model estimates for a window of N views (one forward), on the host.

    Attributes:
        camera_from_world: (N, 3, 4) float32 [R | t], OpenCV axes (x right, y down, z
            forward): x_camera = R x_world + t, as the model gives it; the world is the
            model's own (Depth Anything 3 and VGGT: near the first or reference view's
            camera), its unit the window's (that of the prediction's depth).
        intrinsics: (N, 3, 3) float32 pixels, on the grid of the prediction's maps.
        reference_view: the view the backbone chose as reference (Depth Anything 3's
            windows of 3 views or more), 0 where not applicable.
        world_points: (N, h, w, 3) float32 each pixel's point in the world (VGGT only;
            None for Depth Anything 3).
        scale: windows aligned to given cameras (``infer_window(...,
            align_to_input=True)``): the network's units per unit of the given cameras,
            which the depth was divided by (the cameras are then the given ones, in
            their world and unit); None when not aligned.
        network_box: (N, 4) float64 ``x0, y0, x1, y1``: the region of each view's image
            (pixel edges, in input pixels) that the network grid covers: smaller than
            the image after VGGT's ``crop`` of a tall view, larger after its ``pad``
            (where the grid's border beyond the image holds the model's outputs on the
            white padding, not image). None: the whole image (a plain resize).
    """

    camera_from_world: np.ndarray
    intrinsics: np.ndarray
    reference_view: int
    world_points: np.ndarray | None = None
    scale: float | None = None
    network_box: np.ndarray | None = None


class ViewCache:
    """What a family keeps of single views between windows (least recently used first
    out): a keyframe that comes back in the next window reuses the part of the forward
    that depends on it alone (:meth:`ModelFamily.forward_window`'s ``view_keys``).

    Keys are the caller's view identities (e.g. a keyframe's stamp) with what else the
    kept value depends on (the network input size); a key names one image, so a
    caller gives a new key to a new image.

    Args:
        capacity: views kept at most (a window holds at most 8, and two windows
            overlap).

    Attributes:
        hits: views taken from the cache so far.
        misses: views computed and put in so far.
    """

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"a view cache holds at least 1 view, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        """The value kept for ``key`` (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keeps ``value`` for ``key``, dropping the least recently used beyond
        :attr:`capacity`."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forgets every view (e.g. when the window restarts)."""
        self._items.clear()


@dataclass
class Prediction:
    """What a model gives for a batch of B images: the fields its type has, None for the
    others. Torch tensors on the model's device, or numpy arrays on the host
    (:meth:`dpt_ros.models.Predictor.infer`); at the network's grid (h, w) or resized to
    an output size. For a window of views (:meth:`dpt_ros.models.Predictor.infer_window`)
    B is the N views, and ``cameras`` is set.

    Attributes:
        inverse_depth: (B, h, w) float32 relative inverse depth: affine-invariant,
            unitless, larger = nearer; 0 where the model sees sky.
        depth: (B, h, w) float32 metres; ``+Inf`` where the model sees sky. For a
            window: depth in the window's own unit (that of its cameras'
            translations, not metres), larger = farther.
        confidence: (B, h, w) float32 confidence of the depth (Depth Anything 3 any-view
            types: 1 + exp, >= 1, larger = more confident).
        sky: (B, h, w) float32 sky map (sky where >= 0.3).
        logits: (B, C, h, w) class scores (segmentation).
        labels: (B, h, w) uint8 class ids 1..C (0 = unlabelled), the arg-max of
            ``logits``.
        cameras: a :class:`WindowCameras`: each view's camera as the model estimates
            it (windows of views); None for single images.
    """

    inverse_depth: Any = None
    depth: Any = None
    confidence: Any = None
    sky: Any = None
    logits: Any = None
    labels: Any = None
    cameras: Any = None

    def arrays(self) -> dict[str, Any]:
        """The per-pixel fields that are set, by name (``cameras`` aside)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "cameras" and getattr(self, f.name) is not None
        }

    def with_arrays(self, arrays: Mapping[str, Any]) -> Prediction:
        """A copy with the per-pixel fields of ``arrays`` replaced."""
        return replace(self, **arrays)


@dataclass(frozen=True)
class ModelSpec:
    """A model type: data, and the family that knows what to do with it.

    Attributes:
        name: registry name (``dpt_hybrid``, ``depth_anything_v2_vits`` ...).
        task: ``depth`` or ``segmentation``.
        backbone: DPT backbone name, or the DINOv2 encoder (``vits`` ...).
        output: ``relative_inverse_depth`` (affine-invariant, unitless; larger = nearer),
            ``metric_depth`` (metres) or ``labels``.
        net_width, net_height: the network size the model was trained at (pixels); inputs
            are resized around it keeping the aspect ratio, to multiples of
            :attr:`size_multiple` (see :attr:`resize_method`).
        file_name: the official checkpoint's file name.
        readout: ``project`` for every official DPT model (the DINOv2 families use no
            class token: ``ignore``).
        invert, scale, shift: metric DPT models turn the network output x into metres as
            ``1 / (scale * x + shift)``.
        num_classes: segmentation classes (ADE20K: 150).
        mean, std: input normalisation of RGB in [0, 1].
        max_depth: Depth Anything V2 metric models: the output's ceiling in metres
            (sigmoid times this); 0 for the others.
        licence: the official weights' licence (SPDX identifier).
        hub_repo: the Hugging Face hub repository of the official file ('' = a DPT
            release file).
        hub_model_name: the ``model_name`` that the ``config.json`` of a hub folder of
            this type holds (``da3-small`` ...); '' where the official files come as a
            single file (a folder is then one in transformers' format).
        maps: the per-pixel maps the model gives besides its depth or labels, each a
            field of :class:`Prediction` (``confidence`` or ``sky``).
        needs_intrinsics: metres need each image's camera matrix.
        windows: the type sees several views in one forward and estimates their
            cameras (:meth:`dpt_ros.models.Predictor.infer_window`).
        family: the :class:`ModelFamily` that builds, loads, sizes, preprocesses and
            decodes this type.
    """

    name: str
    task: str
    backbone: str
    output: str
    net_width: int
    net_height: int
    file_name: str
    readout: str = "project"
    invert: bool = False
    scale: float = 1.0
    shift: float = 0.0
    num_classes: int = 0
    mean: tuple[float, float, float] = field(default=(0.5, 0.5, 0.5))
    std: tuple[float, float, float] = field(default=(0.5, 0.5, 0.5))
    max_depth: float = 0.0
    licence: str = "MIT"
    hub_repo: str = ""
    hub_model_name: str = ""
    maps: tuple[str, ...] = ()
    needs_intrinsics: bool = False
    windows: bool = False
    family: ModelFamily = field(kw_only=True)

    @property
    def url(self) -> str:
        """Official download address of the checkpoint."""
        if self.hub_repo:
            return _HUB_URL.format(repo=self.hub_repo, file=self.file_name)
        return _RELEASE_URL + self.file_name

    @property
    def hash_prefix(self) -> str | None:
        """First hex digits of the checkpoint's sha256 where its file name carries them
        (the torch.hub convention of the DPT release files), else None."""
        return self.family.hash_prefix(self)

    @property
    def cache_subdir(self) -> str:
        """Where in the cache directory the official file is kept: '' (the directory
        itself) where its name is unique, else a folder of its own."""
        return self.family.cache_subdir(self)

    @property
    def size_multiple(self) -> int:
        """Network input sides are multiples of this."""
        return self.family.size_multiple

    @property
    def resize_method(self) -> str:
        """How an image is sized for the network around (net_height, net_width): see
        :attr:`ModelFamily.resize_method`."""
        return self.family.resize_method

    @property
    def output_interpolation(self) -> str:
        """How the network output is resized to the image: see
        :attr:`ModelFamily.output_interpolation`."""
        return self.family.output_interpolation

    @property
    def second_output(self) -> str:
        """The first of :attr:`maps` (``confidence`` or ``sky``), else ''."""
        return self.maps[0] if self.maps else ""

    @property
    def camera_requirement(self) -> str:
        """What the type's output needs of each image's camera, as a clause for
        messages (``its metres come from the focal length``), or '' where the image
        alone gives it: see :meth:`ModelFamily.camera_requirement`."""
        return self.family.camera_requirement(self)

    @property
    def is_metric(self) -> bool:
        return self.output == METRIC_DEPTH

    @property
    def is_depth(self) -> bool:
        return self.task == "depth"

    @property
    def depth_ceiling(self) -> float:
        """Metres beyond which a metric model cannot tell depth: the maximum depth of a
        bounded output (Depth Anything V2's metric models: sigmoid times 20 m or 80 m),
        ``1 / shift`` for an inverted output (DPT: 7.26 m for NYU, 172.7 m for KITTI),
        else ``inf`` (Depth Anything 3's metric type has no ceiling)."""
        if self.is_metric and self.max_depth > 0:
            return self.max_depth
        if self.is_metric and self.invert and self.shift > 0:
            return 1.0 / self.shift
        return float("inf")

    def network_size_problem(
        self, width: int, height: int, names: tuple[str, str] | None = None
    ) -> str | None:
        """Why (width, height) is not a valid network input size for this model type
        (sides must be positive multiples of :attr:`size_multiple`), or None.

        Args:
            width: pixels.
            height: pixels.
            names: what the caller calls the two sides (e.g. parameters): the problem
                then names each side that is wrong, by that name.
        """
        m = self.size_multiple
        if names is not None:
            bad = [
                f"{name}={side}"
                for name, side in zip(names, (width, height))
                if side <= 0 or side % m
            ]
            if bad:
                return f"{' and '.join(bad)}: {self.name} needs positive multiples of {m}"
            return None
        if width <= 0 or height <= 0 or width % m or height % m:
            return (
                f"network size for {self.name} must be positive multiples of {m}, "
                f"got {width}x{height}"
            )
        return None


class ModelFamily:
    """What a family of model types decides: how its networks are built and their weight
    files read, how an image is sized and normalised for them, and what their raw
    outputs mean. One instance per family (``FAMILY`` in its module), shared by the
    family's :class:`ModelSpec` entries; each method takes the spec it works for.

    The methods here are the single-image dense-prediction pipeline that DPT and Depth
    Anything V2 share (resize and normalise on the device, the network, resize back);
    a family overrides what it does otherwise.

    Attributes:
        name: the family's name (``dpt`` ...), also its module's.
        title: how people call it (``Depth Anything V2``).
        size_multiple: network input sides are multiples of this (the coarsest feature
            map's stride, or the ViT's patch side).
        resize_method: how an image is sized around the network size: ``minimal``
            (scale as little as possible), ``lower_bound`` (the shorter side reaches
            the network size) or ``upper_bound`` (the longer side becomes the network
            size).
        output_interpolation: how outputs are resized to the image (a
            :func:`~dpt_ros.models.transforms.resize_output` mode).
        reference_views: types with windows: the strategies by which a window of
            views picks its reference view (Depth Anything 3's; the first is the
            default), () where the family has none.
        window_modes: types with windows: the preprocessing modes of a window's views
            (VGGT's ``crop`` and ``pad``; the first is the default), () where the
            family has none.
        transformers_model_type: the ``model_type`` of transformers' ``config.json``
            for this family's models, or '' (none in that format).
        transformers_rules: the renamings of transformers' state_dict keys into the
            official layout.
        reference: the implementation ``dpt-ros bench`` compares with
            (``transformers`` or ``depth_anything_3``), or '' (none yet).
        engines: whether the family's networks export to engines (ONNX Runtime,
            TensorRT); where not, ``backend: auto`` means PyTorch and an engine backend
            is refused.
        weight_markers: key prefixes (official layout, after :meth:`file_keys`) that
            together tell a file of this family: a file of this family given to
            another family's type is refused naming them.
        external_data: ONNX exports keep the weights in a file of their own beside the
            graph (``<file>.onnx.data``): networks past protobuf's 2 GB (VGGT).
        takes_known_cameras: windows take known cameras (Depth Anything 3's
            ``cam_enc``); where not (VGGT estimates them itself) a window given
            cameras is refused before anything runs.
        auto_builds: with ``backend: auto``, whether missing engines are built (as
            ``engine_build`` says); False only loads engines already in the cache (built
            with ``backend: onnxruntime`` or ``dpt-ros export``), for networks whose
            full-size export was not proven here and needs many GB (VGGT).
        auto_build_reason: why ``auto`` does not build (said once in the log).
    """

    name: str = ""
    title: str = ""
    size_multiple: int = 1
    resize_method: str = "minimal"
    output_interpolation: str = "bicubic"
    reference_views: tuple[str, ...] = ()
    window_modes: tuple[str, ...] = ()
    transformers_model_type: str = ""
    transformers_rules: tuple[Rule, ...] = ()
    reference: str = "transformers"
    engines: bool = True
    weight_markers: tuple[str, ...] = ()
    external_data: bool = False
    takes_known_cameras: bool = False
    auto_builds: bool = True
    auto_build_reason: str = ""

    def holds_weights(self, keys: Iterable[str]) -> bool:
        """Whether a state_dict's keys (official layout) have every one of
        :attr:`weight_markers` as a prefix (False for a family without markers)."""
        if not self.weight_markers:
            return False
        found: set[str] = set()
        for key in keys:
            found.update(m for m in self.weight_markers if key.startswith(m))
        return len(found) == len(self.weight_markers)

    def __repr__(self) -> str:
        return f"<model family {self.name}>"

    def __str__(self) -> str:
        return self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):  # ModelSpec.family was the family's name until 0.2
            warnings.warn(
                f"comparing ModelSpec.family with a string is deprecated: compare "
                f"family.name ({other!r} == {self.name!r})",
                DeprecationWarning,
                stacklevel=2,
            )
            return other == self.name
        return self is other

    # ----------------------------------------------------------------- files

    def hash_prefix(self, spec: ModelSpec) -> str | None:
        """First hex digits of the official file's sha256 in its name, else None."""
        return None

    def cache_subdir(self, spec: ModelSpec) -> str:
        """The official file's folder in the cache directory ('' = the directory)."""
        return ""

    def build(self, spec: ModelSpec) -> nn.Module:
        """``spec``'s network with random initial weights, in eval mode."""
        raise NotImplementedError(f"{self.title} builds no network")

    def file_keys(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """A weight file's state_dict with this family's file conventions turned into
        the official key layout (a wrapper's key prefix...); any other state_dict as it
        is. The loader passes every file through every family's."""
        return dict(state_dict)

    def unsupported_kind(self, shapes: Mapping[str, tuple[int, ...]]) -> str | None:
        """What an official file of this family that dpt_ros does not run is, from its
        ({key: shape}), or None."""
        return None

    def identify_transformers_config(self, config: Mapping[str, Any]) -> FolderModel:
        """What a transformers ``config.json`` of :attr:`transformers_model_type`
        describes, and which types it fits.

        Raises:
            CheckpointError: a model of no type here (the message names the fields).
        """
        raise NotImplementedError(f"{self.title} has no transformers format")

    def transformers_model(self, spec: ModelSpec, size_hw: Sequence[int]) -> nn.Module:
        """transformers' model of ``spec``'s architecture, random weights (benchmarks)."""
        raise NotImplementedError(f"{self.title} has no transformers model")

    def transformers_input_hw(self, spec: ModelSpec, input_hw: Sequence[int]) -> tuple[int, int]:
        """The input size the transformers comparison runs at, given the camera's
        network input."""
        return int(input_hw[0]), int(input_hw[1])

    def camera_requirement(self, spec: ModelSpec) -> str:
        """What ``spec``'s output needs of each image's camera besides the image, as a
        clause for messages, or '' (none: the default). Callers ask the spec
        (:attr:`ModelSpec.camera_requirement`), not the family's name or flags."""
        return ""

    def window_forward(self, spec: ModelSpec, network: nn.Module) -> Callable[[torch.Tensor], Any]:
        """Types with :attr:`ModelSpec.windows`: the network's raw window forward of a
        (1, N, 3, h, w) float32 input (what ``dpt-ros bench --window`` times).

        Raises:
            ValueError: a family without windows.
        """
        raise ValueError(f"no window forward for the {self.name} family")

    def window_reference(self, spec: ModelSpec) -> tuple[str, nn.Module | None]:
        """Types with :attr:`ModelSpec.windows`: the reference implementation that
        ``dpt-ros bench --window`` times beside :meth:`window_forward`: what it is and
        its network with random weights, float32 on the CPU; where it does not import
        (an optional package, never a dependency), how to install it and None."""
        return f"no reference for the {self.name} family", None

    # ----------------------------------------------------------------- images

    def input_size(
        self,
        spec: ModelSpec,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        keep_aspect_ratio: bool,
    ) -> tuple[int, int]:
        """The network input (h, w) of an (H, W) image for the network size ``net_hw``
        (keeping the aspect ratio, or stretched to ``net_hw``)."""
        # torch on first use: the registry imports the families at start-up
        from dpt_ros.models.transforms import network_input_size

        return network_input_size(
            image_hw, net_hw, keep_aspect_ratio, self.size_multiple, self.resize_method
        )

    def preprocess(
        self,
        spec: ModelSpec,
        images: torch.Tensor,
        input_hw: Sequence[int],
        net_hw: Sequence[int],
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB on the device -> the (B, 3, h, w) float32 network
        input at ``input_hw`` (on the images' device, or on the host for the caller to
        move), normalised with ``mean`` and ``std`` (float64, on the device)."""
        # torch on first use: the registry imports the families at start-up
        from dpt_ros.models.transforms import preprocess

        return preprocess(images, input_hw, mean, std)

    def decode(
        self,
        spec: ModelSpec,
        raw: torch.Tensor,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        fill_sky: bool = False,
    ) -> Prediction:
        """The network's raw output -> a :class:`Prediction` at the network's grid.

        Args:
            spec: the model type.
            raw: the network's output for B images of (H, W) = ``image_hw``.
            image_hw: the images' size.
            net_hw: the network size (h, w) they were sized around.
            intrinsics: each image's (3, 3) camera matrix (pixels), one for all, or
                None; used where :attr:`ModelSpec.needs_intrinsics`.
            fill_sky: models with a sky map: sky pixels get the depth of the far
                scene, as the reference's output; else they are infinitely far.
        """
        if not spec.is_depth:
            return Prediction(logits=raw)
        out = raw.float()
        out = out.squeeze(1) if out.ndim == 4 else out
        return Prediction(depth=out) if spec.is_metric else Prediction(inverse_depth=out)

    def forward_window(
        self,
        spec: ModelSpec,
        network: nn.Module,
        x: torch.Tensor,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        camera_from_world: np.ndarray | None = None,
        intrinsics: np.ndarray | None = None,
        reference_view: str = "saddle_balanced",
        view_keys: Sequence[Hashable] | None = None,
        cache: ViewCache | None = None,
    ) -> Prediction:
        """Types with :attr:`ModelSpec.windows`: one window of N views through the
        network.

        Args:
            spec: the model type.
            network: what :meth:`build` made, with its weights.
            x: (N, 3, h, w) the views' network input (:meth:`preprocess`), on the
                network's device.
            image_hw: the views' (H, W).
            net_hw: the network size they were sized around.
            camera_from_world: known cameras, (N, 3, 4) or (N, 4, 4), OpenCV axes, or
                None.
            intrinsics: with them, (N, 3, 3) pixels of the images.
            reference_view: how the window picks its reference view (family-specific).
            view_keys: each view's identity, with ``cache``: a view whose key is in the
                cache reuses what the family kept of it (the work that depends on that
                view alone), the others are computed and kept. Families that keep
                nothing ignore them. The result is the same either way.
            cache: where the views are kept, with ``view_keys``.

        Returns:
            ``depth`` (N, h, w) in the window's unit, the family's maps (tensors on the
            device) and ``cameras`` (:class:`WindowCameras`, intrinsics on the network
            grid).
        """
        raise NotImplementedError(f"{self.title} has no windows of views")

    def window_module(
        self, spec: ModelSpec, network: nn.Module, reference_view: str, known_cameras: bool
    ) -> nn.Module:
        """Types with :attr:`ModelSpec.windows`: the window forward as a module of plain
        tensors for an export of one window (``input_names``, ``output_names``,
        ``forward(*inputs) -> tuple``), with ``reference_view`` and ``known_cameras``
        fixed.

        Raises:
            ValueError: a strategy or camera mode the family does not have.
        """
        raise NotImplementedError(f"{self.title} has no windows of views")

    def align_window_to_input(
        self,
        spec: ModelSpec,
        prediction: Prediction,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        camera_from_world: np.ndarray,
        intrinsics: np.ndarray,
    ) -> Prediction:
        """Types that take known cameras: a window's :meth:`forward_window` output
        brought into the given cameras' world and unit (depth and cameras), as the
        original's API returns it.

        Args:
            spec: the model type.
            prediction: :meth:`forward_window`'s output for these cameras.
            image_hw, net_hw: as for :meth:`forward_window`.
            camera_from_world: the given cameras, (N, 3, 4) or (N, 4, 4).
            intrinsics: (N, 3, 3) pixels of the images.

        Returns:
            ``prediction`` with its depth and cameras in the given world and unit, and
            ``cameras.scale`` set.
        """
        raise ValueError(f"{self.title} takes no known cameras: nothing to align to")

    def window_input(
        self,
        spec: ModelSpec,
        images: torch.Tensor,
        input_hw: Sequence[int],
        net_hw: Sequence[int],
        mean: torch.Tensor,
        std: torch.Tensor,
        mode: str | None = None,
    ) -> tuple[torch.Tensor, np.ndarray | None]:
        """Types with :attr:`ModelSpec.windows`: the network input of a window's views
        and the region of each image that the network grid covers.

        Args:
            images: (N, H, W, 3) uint8 RGB of one size.
            input_hw, net_hw, mean, std: as :meth:`preprocess`.
            mode: the family's preprocessing mode (VGGT: ``crop`` or ``pad``); None =
                its default. Families without modes refuse any.

        Returns:
            The (N, 3, h, w) input (:meth:`preprocess`), and (N, 4) ``x0, y0, x1, y1``
            boxes (:attr:`WindowCameras.network_box`) or None for the whole image.
        """
        if mode is not None:
            raise ValueError(
                f"{spec.name} has no window preprocessing modes (VGGT's crop and pad), got {mode!r}"
            )
        return self.preprocess(spec, images, input_hw, net_hw, mean, std), None

    def resize(self, spec: ModelSpec, prediction: Prediction, size_hw: Sequence[int]) -> Prediction:
        """``prediction`` at (H, W) = ``size_hw``, each field resized as the original
        resizes its outputs (:attr:`output_interpolation`); logits stay float32."""
        # torch on first use: the registry imports the families at start-up
        from dpt_ros.models.transforms import resize_output

        hw = (int(size_hw[0]), int(size_hw[1]))
        return prediction.with_arrays(
            {
                name: resize_output(value, hw, self.output_interpolation)
                for name, value in prediction.arrays().items()
                if name in ("inverse_depth", "depth", "logits")
            }
        )


def per_image(
    intrinsics: np.ndarray | Sequence[np.ndarray] | None, count: int
) -> list[np.ndarray] | None:
    """``intrinsics`` as one (3, 3) matrix per image, or None.

    Raises:
        ValueError: as many matrices as images are needed.
    """
    if intrinsics is None:
        return None
    ks = [intrinsics] * count if np.ndim(intrinsics) == 2 else list(intrinsics)
    if len(ks) != count:
        raise ValueError(f"{len(ks)} camera matrices for {count} images")
    return [np.asarray(k) for k in ks]


def resize_depth_and_maps(
    spec: ModelSpec, prediction: Prediction, size_hw: Sequence[int]
) -> Prediction:
    """Depth as the geometry resizes it (metres by :func:`upsample_depth`, inverse depth
    bilinearly), the type's other maps bilinearly, all with ``align_corners=False``: the
    resize of the families whose heads give depth with confidence or sky (Depth Anything
    3, VGGT)."""
    # torch on first use: the registry imports this file at start-up
    from dpt_ros.models.da3_transforms import resize_maps
    from dpt_ros.models.geometry import upsample_depth
    from dpt_ros.models.transforms import resize_output

    hw = (int(size_hw[0]), int(size_hw[1]))
    arrays = {name: resize_maps(getattr(prediction, name), hw) for name in spec.maps}
    if prediction.depth is not None:
        arrays["depth"] = upsample_depth(prediction.depth, hw)
    if prediction.inverse_depth is not None:
        arrays["inverse_depth"] = resize_output(prediction.inverse_depth, hw, "inverse_depth")
    return prediction.with_arrays(arrays)
