"""The official model types (six DPT, nine Depth Anything V2, five Depth Anything 3) and
everything a caller
needs to run them. No torch here (command lines parse fast), and no import of the
networks: :func:`dpt_ros.models.network.build.build_network` makes a spec's network."""

from __future__ import annotations

from dataclasses import dataclass, field

_RELEASE_URL = "https://github.com/intel-isl/DPT/releases/download/1_0/"
_HUB_URL = "https://huggingface.co/{repo}/resolve/main/{file}"

#: Model families: the 2021 DPT models, Depth Anything V2 (DPT decoder, DINOv2 encoder)
#: and Depth Anything 3 (DINOv2 encoder, DPT head with a second output).
DPT = "dpt"
DEPTH_ANYTHING_V2 = "depth_anything_v2"
DEPTH_ANYTHING_3 = "depth_anything_3"
#: Network input sides are multiples of this, per family (DPT's coarsest map is 1/32;
#: DINOv2's patches are 14 pixels).
SIZE_MULTIPLES = {DPT: 32, DEPTH_ANYTHING_V2: 14, DEPTH_ANYTHING_3: 14}

#: What a model's output means.
RELATIVE_INVERSE_DEPTH = "relative_inverse_depth"
METRIC_DEPTH = "metric_depth"
LABELS = "labels"


@dataclass(frozen=True)
class ModelSpec:
    """A model type.

    Attributes:
        name: registry name (``dpt_hybrid``, ``depth_anything_v2_vits`` ...).
        task: ``depth`` or ``segmentation``.
        backbone: DPT backbone name, or the Depth Anything V2 encoder (``vits`` ...).
        output: ``relative_inverse_depth`` (affine-invariant, unitless; larger = nearer),
            ``metric_depth`` (metres) or ``labels``.
        net_width, net_height: the network size the model was trained at (pixels); inputs
            are resized around it keeping the aspect ratio, to multiples of
            :attr:`size_multiple` (see :attr:`resize_method`).
        file_name: the official checkpoint's file name.
        readout: ``project`` for every official DPT model (Depth Anything V2 uses no
            class token: ``ignore``).
        invert, scale, shift: metric models turn the network output x into metres as
            ``1 / (scale * x + shift)``.
        num_classes: segmentation classes (ADE20K: 150).
        mean, std: input normalisation of RGB in [0, 1].
        family: ``dpt`` or ``depth_anything_v2``.
        max_depth: Depth Anything V2 metric models: the output's ceiling in metres
            (sigmoid times this); 0 for the others.
        licence: the official weights' licence (SPDX identifier).
        hub_repo: the Hugging Face hub repository of the official file ('' = a DPT
            release file).
        second_output: Depth Anything 3: what the network's second map is
            (``confidence`` or ``sky``); '' for the others.
        hub_model_name: Depth Anything 3: the ``model_name`` of the hub repository's
            ``config.json`` (``da3-small`` ...); '' for the others.
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
    family: str = DPT
    max_depth: float = 0.0
    licence: str = "MIT"
    hub_repo: str = ""
    second_output: str = ""
    hub_model_name: str = ""

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
        if self.family != DPT:
            return None
        return self.file_name.rsplit("-", 1)[-1].split(".")[0]

    @property
    def cache_subdir(self) -> str:
        """Where in the cache directory the official file is kept: '' (the directory
        itself) where its name is unique, the hub repository's name for Depth Anything 3
        (every type's file is ``model.safetensors``)."""
        return self.hub_repo.rsplit("/", 1)[-1] if self.family == DEPTH_ANYTHING_3 else ""

    @property
    def size_multiple(self) -> int:
        """Network input sides are multiples of this."""
        return SIZE_MULTIPLES[self.family]

    @property
    def resize_method(self) -> str:
        """How an image is sized for the network around (net_height, net_width):
        ``minimal`` (DPT: scale as little as possible), ``lower_bound`` (Depth
        Anything V2: the shorter side reaches the network size) or ``upper_bound``
        (Depth Anything 3: the longer side becomes the network size, then each side
        its nearest multiple of 14; see ``dpt_ros.models.da3_transforms``)."""
        if self.family == DEPTH_ANYTHING_3:
            return "upper_bound"
        return "lower_bound" if self.family == DEPTH_ANYTHING_V2 else "minimal"

    @property
    def output_interpolation(self) -> str:
        """How the network output is resized to the image (a
        :func:`~dpt_ros.models.transforms.resize_output` mode): as the original does it,
        ``bicubic`` (DPT) or ``bilinear`` with align_corners=True (Depth Anything V2);
        ``inverse_depth`` (Depth Anything 3: bilinear in inverse depth, as the geometry
        resizes metric depth)."""
        if self.family == DEPTH_ANYTHING_3:
            return "inverse_depth"
        return "bicubic" if self.family == DPT else "bilinear"

    @property
    def is_metric(self) -> bool:
        return self.output == METRIC_DEPTH

    @property
    def is_depth(self) -> bool:
        return self.task == "depth"

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


_SPECS = (
    ModelSpec(
        "dpt_hybrid",
        "depth",
        "vitb_rn50_384",
        RELATIVE_INVERSE_DEPTH,
        384,
        384,
        "dpt_hybrid-midas-501f0c75.pt",
    ),
    ModelSpec(
        "dpt_large",
        "depth",
        "vitl16_384",
        RELATIVE_INVERSE_DEPTH,
        384,
        384,
        "dpt_large-midas-2f21e586.pt",
    ),
    ModelSpec(
        "dpt_hybrid_kitti",
        "depth",
        "vitb_rn50_384",
        METRIC_DEPTH,
        1216,
        352,
        "dpt_hybrid_kitti-cb926ef4.pt",
        invert=True,
        scale=0.00006016,
        shift=0.00579,
    ),
    ModelSpec(
        "dpt_hybrid_nyu",
        "depth",
        "vitb_rn50_384",
        METRIC_DEPTH,
        640,
        480,
        "dpt_hybrid_nyu-2ce69ec7.pt",
        invert=True,
        scale=0.000305,
        shift=0.1378,
    ),
    ModelSpec(
        "dpt_hybrid_ade20k",
        "segmentation",
        "vitb_rn50_384",
        LABELS,
        480,
        480,
        "dpt_hybrid-ade20k-53898607.pt",
        num_classes=150,
    ),
    ModelSpec(
        "dpt_large_ade20k",
        "segmentation",
        "vitl16_384",
        LABELS,
        480,
        480,
        "dpt_large-ade20k-b12dca68.pt",
        num_classes=150,
    ),
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
#: Depth Anything V2's default network size (its ``input_size``).
DAV2_INPUT_SIZE = 518
_DAV2_SIZES = {"vits": "Small", "vitb": "Base", "vitl": "Large"}
#: The weights' licences: Small is Apache-2.0, Base and Large are non-commercial.
_DAV2_LICENCES = {"vits": "Apache-2.0", "vitb": "CC-BY-NC-4.0", "vitl": "CC-BY-NC-4.0"}
#: Metric variants: (type-name part, hub repository part, maximum depth in metres).
_DAV2_METRIC = {"hypersim": ("Hypersim", 20.0), "vkitti": ("VKITTI", 80.0)}


def _dav2_spec(encoder: str, dataset: str = "") -> ModelSpec:
    """A Depth Anything V2 model type: relative, or metric trained on ``dataset``."""
    size = _DAV2_SIZES[encoder]
    if dataset:
        repo_part, max_depth = _DAV2_METRIC[dataset]
        name = f"depth_anything_v2_metric_{dataset}_{encoder}"
        repo = f"depth-anything/Depth-Anything-V2-Metric-{repo_part}-{size}"
    else:
        name, max_depth = f"depth_anything_v2_{encoder}", 0.0
        repo = f"depth-anything/Depth-Anything-V2-{size}"
    return ModelSpec(
        name,
        "depth",
        encoder,
        METRIC_DEPTH if dataset else RELATIVE_INVERSE_DEPTH,
        DAV2_INPUT_SIZE,
        DAV2_INPUT_SIZE,
        f"{name}.pth",
        readout="ignore",
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        family=DEPTH_ANYTHING_V2,
        max_depth=max_depth,
        licence=_DAV2_LICENCES[encoder],
        hub_repo=repo,
    )


_DAV2_SPECS = tuple(
    _dav2_spec(encoder, dataset)
    for dataset in ("", "hypersim", "vkitti")
    for encoder in ("vits", "vitb", "vitl")
)

#: Depth Anything 3's default network size: the longest side (its ``process_res``).
DA3_PROCESS_RES = 504
#: (type-name part, hub repository, second output, licence) of the five official types.
_DA3 = (
    ("small", "DA3-SMALL", "confidence", "Apache-2.0"),
    ("base", "DA3-BASE", "confidence", "Apache-2.0"),
    ("large", "DA3-LARGE", "confidence", "CC-BY-NC-4.0"),
    ("mono_large", "DA3MONO-LARGE", "sky", "Apache-2.0"),
    ("metric_large", "DA3METRIC-LARGE", "sky", "Apache-2.0"),
)


def _da3_spec(part: str, repo: str, second_output: str, licence: str) -> ModelSpec:
    """A Depth Anything 3 type. Its relative types predict depth up to scale; the
    predictor turns it into relative inverse depth, the output every relative type
    shares. The metric type's output becomes metres through the camera's focal length."""
    return ModelSpec(
        f"depth_anything_3_{part}",
        "depth",
        "vits" if part == "small" else "vitb" if part == "base" else "vitl",
        METRIC_DEPTH if part == "metric_large" else RELATIVE_INVERSE_DEPTH,
        DA3_PROCESS_RES,
        DA3_PROCESS_RES,
        "model.safetensors",
        readout="ignore",
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        family=DEPTH_ANYTHING_3,
        licence=licence,
        hub_repo=f"depth-anything/{repo}",
        second_output=second_output,
        hub_model_name=repo.lower(),
    )


_DA3_SPECS = tuple(_da3_spec(*entry) for entry in _DA3)

MODEL_SPECS: dict[str, ModelSpec] = {s.name: s for s in _SPECS + _DAV2_SPECS + _DA3_SPECS}


def model_names(task: str | None = None) -> tuple[str, ...]:
    """Registered model types, optionally only those of ``task`` (``depth``/``segmentation``)."""
    return tuple(n for n, s in MODEL_SPECS.items() if task is None or s.task == task)


TASKS = ("depth", "segmentation")


def task_problem(name: str, task: str | None = None) -> str | None:
    """Why ``name`` is not a model type (of ``task``, if given), or None."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    valid = model_names(task)
    if name in valid:
        return None
    if name in MODEL_SPECS:
        return (
            f"{name} is a {MODEL_SPECS[name].task} model, not a {task} model; valid: "
            f"{', '.join(valid)}"
        )
    kind = f"{task} model type" if task else "model type"
    return f"unknown {kind} {name!r}; valid: {', '.join(valid)}"


def get_spec(name: str) -> ModelSpec:
    """Returns the spec of model type ``name``; ValueError lists the valid names."""
    try:
        return MODEL_SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown model type {name!r}; valid model types are {', '.join(MODEL_SPECS)}"
        ) from None
