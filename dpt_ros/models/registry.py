"""The six official DPT model types and everything a caller needs to run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself needs no torch: command lines parse fast
    from torch import nn

_RELEASE_URL = "https://github.com/intel-isl/DPT/releases/download/1_0/"

#: What a model's output means.
RELATIVE_INVERSE_DEPTH = "relative_inverse_depth"
METRIC_DEPTH = "metric_depth"
LABELS = "labels"


@dataclass(frozen=True)
class ModelSpec:
    """A DPT model type.

    Attributes:
        name: registry name (``dpt_hybrid`` ...).
        task: ``depth`` or ``segmentation``.
        backbone: DPT backbone name.
        output: ``relative_inverse_depth`` (affine-invariant, unitless; larger = nearer),
            ``metric_depth`` (metres) or ``labels``.
        net_width, net_height: the network size the model was trained at (pixels); inputs
            are resized around it keeping the aspect ratio, to multiples of 32.
        file_name: the official checkpoint's file name.
        readout: ``project`` for every official model.
        invert, scale, shift: metric models turn the network output x into metres as
            ``1 / (scale * x + shift)``.
        num_classes: segmentation classes (ADE20K: 150).
        mean, std: input normalisation of RGB in [0, 1].
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

    @property
    def url(self) -> str:
        """Official download address of the checkpoint."""
        return _RELEASE_URL + self.file_name

    @property
    def hash_prefix(self) -> str:
        """First hex digits of the checkpoint's sha256 (the torch.hub file-name convention)."""
        return self.file_name.rsplit("-", 1)[-1].split(".")[0]

    @property
    def is_metric(self) -> bool:
        return self.output == METRIC_DEPTH

    @property
    def is_depth(self) -> bool:
        return self.task == "depth"

    def build(self) -> nn.Module:
        """Creates the network (random initial weights) in eval mode."""
        from dpt_ros.models.network.dpt import DPTDepthModel, DPTSegmentationModel

        if self.task == "depth":
            model: nn.Module = DPTDepthModel(
                backbone=self.backbone,
                readout=self.readout,
                non_negative=True,
                invert=self.invert,
                scale=self.scale,
                shift=self.shift,
            )
        else:
            model = DPTSegmentationModel(
                self.num_classes, backbone=self.backbone, readout=self.readout
            )
        return model.eval()


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

MODEL_SPECS: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


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
