"""The official model types of every family (six DPT, nine Depth Anything V2, five
Depth Anything 3, one VGGT) and everything a caller needs to run them. Each family's table and
decisions are in its module of :mod:`dpt_ros.models.families`; this lists the families.
No torch here (command lines parse fast), and no import of the networks:
:func:`dpt_ros.models.network.build.build_network` makes a spec's network."""

from __future__ import annotations

from dpt_ros.models.families import depth_anything_3, depth_anything_v2, dpt, vggt
from dpt_ros.models.family import (
    LABELS,
    METRIC_DEPTH,
    RELATIVE_INVERSE_DEPTH,
    ModelFamily,
    ModelSpec,
)

#: The family modules, in the order their types are listed. A new family: its module in
#: dpt_ros/models/families/ (``FAMILY`` and ``SPECS``), imported above and named here.
_MODULES = (dpt, depth_anything_v2, depth_anything_3, vggt)

#: The model families (each module's ``FAMILY``).
FAMILIES: tuple[ModelFamily, ...] = tuple(module.FAMILY for module in _MODULES)

MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec for module in _MODULES for spec in module.SPECS
}

#: Family names (``ModelSpec.family.name``).
DPT = dpt.FAMILY.name
DEPTH_ANYTHING_V2 = depth_anything_v2.FAMILY.name
DEPTH_ANYTHING_3 = depth_anything_3.FAMILY.name
#: Network input sides are multiples of this, per family name.
SIZE_MULTIPLES = {family.name: family.size_multiple for family in FAMILIES}

__all__ = [
    "FAMILIES",
    "LABELS",
    "METRIC_DEPTH",
    "MODEL_SPECS",
    "RELATIVE_INVERSE_DEPTH",
    "TASKS",
    "ModelFamily",
    "ModelSpec",
    "get_spec",
    "model_names",
    "task_problem",
]


def model_names(task: str | None = None) -> tuple[str, ...]:
    """Registered model types, optionally only those of ``task`` (``depth``/``segmentation``)."""
    return tuple(n for n, s in MODEL_SPECS.items() if task is None or s.task == task)


def window_model_names() -> tuple[str, ...]:
    """The model types that see several views in one forward (:attr:`ModelSpec.windows`)."""
    return tuple(name for name, spec in MODEL_SPECS.items() if spec.windows)


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
