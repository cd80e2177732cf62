"""Depth Anything 3 (Lin et al., 2025) on one view at a time: three any-view types
(depth and its confidence), the monocular type and the metric type (depth and a sky
map), DINOv2 encoders with a DPT head that gives two maps.

The network is :mod:`dpt_ros.models.network.depth_anything3` (under ``model`` as in the
hub's files: :class:`~dpt_ros.models.network.depth_anything3.DepthAnything3Stacked`
gives (B, 2, h, w), depth then the second map). Images are prepared on the CPU by
OpenCV as the reference's ``InputProcessor`` does (the longer side becomes the network
size, each side its nearest multiple of 14; :mod:`dpt_ros.models.da3_transforms`).
Decoding: the relative types' depth grows with distance, so its inverse is published as
relative inverse depth (sky 0); the metric type's output becomes metres through each
image's focal length, so it needs the camera's intrinsics. Weights: the hub's
``model.safetensors`` (every key under ``model.``; a bare state_dict gets the prefix),
one folder per type in the cache since every type's file has that name.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dpt_ros.models import camera_alignment
from dpt_ros.models.family import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    METRIC_DEPTH,
    RELATIVE_INVERSE_DEPTH,
    ModelFamily,
    ModelSpec,
    Prediction,
    ViewCache,
    WindowCameras,
    per_image,
    resize_depth_and_maps,
)

if TYPE_CHECKING:  # annotations only: the registry imports this file without torch
    import torch
    from torch import nn

#: Depth Anything 3's default network size: the longest side (its ``process_res``).
DA3_PROCESS_RES = 504

# --------------------------------------------------------------------------- keys

#: The prefix of every key in the hub's ``model.safetensors``.
HUB_PREFIX = "model."
#: The first name parts of a bare (prefix-less) Depth Anything 3 state_dict.
_BARE_PARTS = ("backbone", "head", "cam_enc", "cam_dec")
#: DINOv2-G's token width: the any-view giant type (DA3-GIANT), not supported here.
_GIANT_WIDTH = 1536


def strip_hub_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict without the hub's ``model.`` prefix (where every key has it)."""
    if state_dict and all(k.startswith(HUB_PREFIX) for k in state_dict):
        return {k[len(HUB_PREFIX) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def with_hub_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict with the hub's ``model.`` prefix where it is a bare Depth Anything 3
    one (every key under ``backbone``, ``head``, ``cam_enc`` or ``cam_dec``, as
    ``DepthAnything3.state_dict()`` gives); any other state_dict as it is."""
    state = dict(state_dict)
    if (
        state
        and any(k.startswith("backbone.pretrained.") for k in state)
        and all(k.split(".", 1)[0] in _BARE_PARTS for k in state)
    ):
        return {HUB_PREFIX + k: v for k, v in state.items()}
    return state


def unsupported_kind(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """What an official Depth Anything 3 file that dpt_ros does not run is, or None:
    the nested any-view + metric pair (DA3NESTED-GIANT-LARGE: its networks under
    ``da3.`` and ``da3_metric.``) or the giant any-view type (DA3-GIANT: 1536 wide)."""
    keys = [k[len(HUB_PREFIX) :] if k.startswith(HUB_PREFIX) else k for k in shapes]
    if (
        keys
        and any(k.startswith("da3.") for k in keys)
        and any(k.startswith("da3_metric.") for k in keys)
    ):
        return "Depth Anything 3 nested (DA3NESTED-GIANT-LARGE)"
    for key, shape in shapes.items():
        if key.endswith("backbone.pretrained.cls_token") and tuple(shape)[-1:] == (_GIANT_WIDTH,):
            return "Depth Anything 3 giant (DA3-GIANT)"
    return None


# --------------------------------------------------------------------------- family


class DepthAnything3Family(ModelFamily):
    """Depth Anything 3: multiples of 14, the longer side at the network size
    (``process_res``), preprocessing by OpenCV on the CPU, two output maps; depth
    resized as the geometry resizes it (bilinear in inverse depth)."""

    name = "depth_anything_3"
    title = "Depth Anything 3"
    weight_markers = ("model.backbone.pretrained.", "model.head.")
    # the reference's strategies (network.depth_anything3.REFERENCE_VIEW_STRATEGIES)
    reference_views = ("saddle_balanced", "first", "middle", "saddle_sim_range")
    size_multiple = 14
    resize_method = "upper_bound"
    output_interpolation = "inverse_depth"
    reference = "depth_anything_3"
    takes_known_cameras = True

    def cache_subdir(self, spec: ModelSpec) -> str:
        """Every type's file is ``model.safetensors``: each in its hub repository's
        name."""
        return spec.hub_repo.rsplit("/", 1)[-1]

    def build(self, spec: ModelSpec) -> nn.Module:
        """(B, 2, h, w): depth and the second output; keys as in the hub's file."""
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models.network.depth_anything3 import DepthAnything3Stacked

        return DepthAnything3Stacked(spec.name).eval()

    def camera_requirement(self, spec: ModelSpec) -> str:
        """The metric type: metres from the focal length of each image's camera."""
        return "its metres come from the focal length" if spec.needs_intrinsics else ""

    def file_keys(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        return with_hub_prefix(state_dict)

    def unsupported_kind(self, shapes: Mapping[str, tuple[int, ...]]) -> str | None:
        return unsupported_kind(shapes)

    def input_size(
        self,
        spec: ModelSpec,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        keep_aspect_ratio: bool,
    ) -> tuple[int, int]:
        """The longer side at ``process_res`` (the larger side of ``net_hw``), each side
        its nearest multiple of 14; without ``keep_aspect_ratio`` (an engine file's
        fixed input) ``net_hw`` itself."""
        if not keep_aspect_ratio:
            return int(net_hw[0]), int(net_hw[1])
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models import da3_transforms

        return da3_transforms.network_input_size(image_hw, max(net_hw))

    def preprocess(
        self,
        spec: ModelSpec,
        images: torch.Tensor,
        input_hw: Sequence[int],
        net_hw: Sequence[int],
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> torch.Tensor:
        """Resized on the CPU by OpenCV, as the reference does it (uint8 ``INTER_AREA``
        / ``INTER_CUBIC``), and normalised there: a host tensor."""
        # torch and OpenCV on first use: the registry imports this file at start-up
        import torch

        from dpt_ros.models import da3_transforms  # the same: at first use

        host = images.cpu().numpy()
        process_res = max(net_hw)
        x = np.stack([da3_transforms.preprocess_to(rgb, input_hw, process_res) for rgb in host])
        return torch.from_numpy(x)

    def decode(
        self,
        spec: ModelSpec,
        raw: torch.Tensor,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        fill_sky: bool = False,
    ) -> Prediction:
        """(B, 2, h, w) -> depth and the second map (``confidence``, any-view types:
        1 + exp, >= 1; ``sky``, mono and metric: sky where >= 0.3).

        Depth: relative inverse depth for the relative types (the inverse of the
        network's depth, which grows with distance; sky 0), or metres for the metric
        type (network output x ((fx + fy) / 2) / 300, fx and fy of the network input;
        none without ``intrinsics``). Sky pixels are infinitely far, or with
        ``fill_sky`` get the 99th percentile of the other pixels' depth, as the
        reference's output.
        """
        # torch on first use: the registry imports this file at start-up
        from dpt_ros.models import da3_transforms

        out = raw.float()
        depth, second = out[:, 0], out[:, 1]
        maps = {spec.second_output: second}
        if spec.second_output == "sky":
            sky = second >= da3_transforms.SKY_THRESHOLD
            if fill_sky:
                depth = da3_transforms.fill_sky(depth, second)
            else:
                depth = depth.masked_fill(sky, float("inf"))
        if not spec.is_metric:
            return Prediction(inverse_depth=1.0 / depth, **maps)
        ks = per_image(intrinsics, len(out))
        if ks is None:
            return Prediction(**maps)
        input_hw = tuple(out.shape[-2:])
        net_k = np.stack(
            [da3_transforms.network_intrinsics_to(k, image_hw, input_hw, max(net_hw)) for k in ks]
        )
        metres = da3_transforms.metric_depth(depth, depth.new_tensor(net_k))
        return Prediction(depth=metres, **maps)

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
        """The any-view types on one window (the reference's
        ``DepthAnything3Net.forward``): depth (exp, larger = farther, in the window's
        unit), confidence (1 + exp) and the camera decoder's cameras.

        Known cameras are prepared as the reference's ``DepthAnything3.inference`` feeds
        them to the network: the intrinsics rescaled to the network input as the images
        are, the extrinsics made relative to the first view's camera (which becomes the
        world) with their translations divided by the median camera distance (at least
        0.1). The returned cameras stay in the network's world (the reference aligns
        them back to the given ones afterwards, outside its network: not done here).

        With ``view_keys`` and ``cache`` a view seen before keeps what the blocks
        before ``alt_start`` made of it (:class:`ViewPrefix`: a third of the backbone's
        blocks; the later blocks attend across the window and the head reads them, so
        they run again for every view).
        """
        model: Any = getattr(network, "model", network)  # DepthAnything3Stacked or bare
        known: dict[str, torch.Tensor] = {}
        if camera_from_world is not None:
            if intrinsics is None:
                raise ValueError("known cameras need both extrinsics and intrinsics")
            known = self._known_cameras(
                camera_from_world, intrinsics, image_hw, max(net_hw), len(x), x.device
            )
        elif intrinsics is not None:
            raise ValueError("known cameras need both extrinsics and intrinsics")
        kept: dict[str, Any] = {}
        if view_keys is not None and cache is not None and hasattr(model, "backbone"):
            # the torch network (an engine runs its whole graph: nothing to keep)
            kept["prefix"] = _kept_prefix(model.backbone.pretrained, x, view_keys, cache)
        out = model.forward_window(x[None], reference_view=reference_view, **kept, **known)
        cameras = WindowCameras(
            camera_from_world=out.camera_from_world[0].float().cpu().numpy(),
            intrinsics=out.intrinsics[0].float().cpu().numpy(),
            reference_view=int(out.reference_view[0]),
        )
        return Prediction(
            depth=out.depth[0].float(), confidence=out.confidence[0].float(), cameras=cameras
        )

    def window_module(
        self, spec: ModelSpec, network: nn.Module, reference_view: str, known_cameras: bool
    ) -> nn.Module:
        """:class:`~dpt_ros.models.network.depth_anything3.DepthAnything3Window`: the
        reference-view choice and the restored order inside the graph."""
        # the network module (and timm) on first use: the registry imports this file
        from dpt_ros.models.network.depth_anything3 import DepthAnything3Window

        return DepthAnything3Window(network, reference_view, known_cameras)

    @staticmethod
    def _known_cameras(
        camera_from_world: np.ndarray,
        intrinsics: np.ndarray,
        image_hw: Sequence[int],
        process_res: int,
        views: int,
        device: torch.device,
    ) -> dict[str, torch.Tensor]:
        """The network's ``camera_from_world`` (1, N, 4, 4) and ``intrinsics``
        (1, N, 3, 3) for known cameras, normalised as the reference's inference does."""
        # torch on first use: the registry imports this file at start-up
        import torch

        extrinsics = np.asarray(camera_from_world, dtype=np.float32)
        ks = np.asarray(intrinsics, dtype=np.float32)
        if extrinsics.shape[1:] not in ((3, 4), (4, 4)) or len(extrinsics) != views:
            raise ValueError(
                f"extrinsics must be ({views}, 3, 4) or ({views}, 4, 4) camera-from-world, "
                f"got {extrinsics.shape}"
            )
        if ks.shape != (views, 3, 3):
            raise ValueError(f"intrinsics must be ({views}, 3, 3), got {ks.shape}")
        if extrinsics.shape[1] == 3:
            bottom = np.tile(np.array([[[0, 0, 0, 1]]], np.float32), (views, 1, 1))
            extrinsics = np.concatenate((extrinsics, bottom), axis=1)
        net_k = DepthAnything3Family._network_intrinsics(ks, image_hw, process_res)
        ext = torch.from_numpy(extrinsics)[None].to(device)
        first = ext[:, :1]
        rotation_t = first[..., :3, :3].mT
        first_inverse = torch.cat(
            (torch.cat((rotation_t, -rotation_t @ first[..., :3, 3:]), -1), first[..., 3:, :]), -2
        )
        normalised = ext @ first_inverse
        rotation_t = normalised[..., :3, :3].mT
        centres = -rotation_t @ normalised[..., :3, 3:]
        scale = torch.clamp(torch.median(centres[..., 0].norm(dim=-1)), min=1e-1)
        normalised[..., :3, 3] = normalised[..., :3, 3] / scale
        return {
            "camera_from_world": normalised,
            "intrinsics": torch.from_numpy(net_k)[None].to(device),
        }

    @staticmethod
    def _network_intrinsics(
        intrinsics: np.ndarray, image_hw: Sequence[int], process_res: int
    ) -> np.ndarray:
        """(N, 3, 3) float32 intrinsics of the images -> on the network grid, as the
        reference's ``InputProcessor`` rescales them."""
        from dpt_ros.models import da3_transforms  # torch: at first use

        ks = np.asarray(intrinsics, dtype=np.float32)
        return np.stack([da3_transforms.network_intrinsics(k, image_hw, process_res) for k in ks])

    def align_window_to_input(
        self,
        spec: ModelSpec,
        prediction: Prediction,
        image_hw: Sequence[int],
        net_hw: Sequence[int],
        camera_from_world: np.ndarray,
        intrinsics: np.ndarray,
    ) -> Prediction:
        """The reference API's alignment (``DepthAnything3.inference`` with
        ``align_to_input_ext_scale=True``; the rule and where it differs:
        :mod:`dpt_ros.models.camera_alignment`): the cameras become the given ones
        (camera-from-world (N, 3, 4) float32, intrinsics on the network grid), the depth
        is divided by the Umeyama scale of the given centres onto the predicted ones,
        and ``cameras.scale`` records it."""
        cameras = prediction.cameras
        scale = camera_alignment.scale_to_given(cameras.camera_from_world, camera_from_world)
        aligned = replace(
            cameras,
            camera_from_world=camera_alignment.camera_from_world_3x4(camera_from_world),
            intrinsics=self._network_intrinsics(intrinsics, image_hw, max(net_hw)),
            scale=scale,
        )
        return replace(prediction, depth=prediction.depth / scale, cameras=aligned)

    def resize(self, spec: ModelSpec, prediction: Prediction, size_hw: Sequence[int]) -> Prediction:
        """Depth as the geometry resizes it (bilinear in inverse depth), the maps
        bilinearly, both with ``align_corners=False``."""
        return resize_depth_and_maps(spec, prediction, size_hw)

    def window_forward(self, spec: ModelSpec, network: nn.Module) -> Callable[[torch.Tensor], Any]:
        """:class:`~dpt_ros.models.network.depth_anything3.DepthAnything3Net`'s
        ``forward_window`` (under the stacked network's ``model``), cameras decoded
        inside."""
        model: Any = network
        return getattr(model, "model", model).forward_window

    def window_reference(self, spec: ModelSpec) -> tuple[str, nn.Module | None]:
        """The reference's ``DepthAnything3Net`` of the type's hub model."""
        try:
            # optional, never a dependency: the reference for comparisons (docs/speed.md)
            from depth_anything_3.cfg import create_object, load_config
            from depth_anything_3.registry import MODEL_REGISTRY
        except ImportError:
            return (
                "not installed (a separate venv: pip install --no-deps "
                "depth-anything-3==0.1.1 einops omegaconf addict imageio)",
                None,
            )
        name = spec.hub_model_name
        network = create_object(load_config(MODEL_REGISTRY[name])).eval()
        return f"depth_anything_3 {name} DepthAnything3Net, float32", network


FAMILY = DepthAnything3Family()

# --------------------------------------------------------------------------- types

#: (type-name part, hub repository, second output, licence) of the five official types.
_DA3 = (
    ("small", "DA3-SMALL", "confidence", "Apache-2.0"),
    ("base", "DA3-BASE", "confidence", "Apache-2.0"),
    ("large", "DA3-LARGE", "confidence", "CC-BY-NC-4.0"),
    ("mono_large", "DA3MONO-LARGE", "sky", "Apache-2.0"),
    ("metric_large", "DA3METRIC-LARGE", "sky", "Apache-2.0"),
)


def _spec(part: str, repo: str, second_output: str, licence: str) -> ModelSpec:
    """A Depth Anything 3 type. Its relative types predict depth up to scale; the
    decoding turns it into relative inverse depth, the output every relative type
    shares. The metric type's output becomes metres through the camera's focal length."""
    metric = part == "metric_large"
    return ModelSpec(
        f"depth_anything_3_{part}",
        "depth",
        "vits" if part == "small" else "vitb" if part == "base" else "vitl",
        METRIC_DEPTH if metric else RELATIVE_INVERSE_DEPTH,
        DA3_PROCESS_RES,
        DA3_PROCESS_RES,
        "model.safetensors",
        readout="ignore",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        licence=licence,
        hub_repo=f"depth-anything/{repo}",
        hub_model_name=repo.lower(),
        maps=(second_output,),
        needs_intrinsics=metric,
        windows=part in ("small", "base", "large"),
        family=FAMILY,
    )


SPECS: tuple[ModelSpec, ...] = tuple(_spec(*entry) for entry in _DA3)


def _kept_prefix(
    encoder: Any, x: torch.Tensor, view_keys: Sequence[Hashable], cache: ViewCache
) -> Any:
    """The window's :class:`~dpt_ros.models.network.depth_anything3.ViewPrefix`: the
    views ``cache`` holds (by key and input size) as kept, the others computed in one
    batch and kept."""
    # torch on first use: the registry imports this file at start-up
    from dpt_ros.models.network.depth_anything3 import ViewPrefix

    if len(view_keys) != len(x):
        raise ValueError(f"{len(view_keys)} view keys for a window of {len(x)} views")
    keys = [(key, tuple(x.shape[-2:]), str(x.dtype)) for key in view_keys]
    kept: dict[Hashable, ViewPrefix] = {}
    for key in keys:
        found = cache.get(key)
        if found is not None:
            kept[key] = found
    new = [i for i, key in enumerate(keys) if key not in kept and keys.index(key) == i]
    cache.hits += len(keys) - len(new)
    cache.misses += len(new)
    if new:
        fresh = encoder.view_prefix(x[new])
        for j, i in enumerate(new):
            kept[keys[i]] = fresh.take([j])
            cache.put(keys[i], kept[keys[i]])
    return ViewPrefix.join([kept[key] for key in keys])
