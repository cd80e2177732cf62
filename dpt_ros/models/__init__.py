"""The networks of every model family (DPT, Depth Anything V2 and 3) and their
inference pipeline (torch and timm only, no ROS).

Typical use::

    from dpt_ros.models import Predictor
    predictor = Predictor("dpt_hybrid", weights="dpt_hybrid-midas-501f0c75.pt")
    inverse_depth = predictor.predict(rgb)   # (H, W) float32
    found = predictor.infer(rgb_batch)       # a Prediction: every output of the type

The names below load on first use, so that importing a light submodule
(``dpt_ros.models.options``, ``dpt_ros.models.registry``'s names) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from dpt_ros.models.errors import CheckpointError
    from dpt_ros.models.family import ModelFamily, Prediction
    from dpt_ros.models.network.dpt import DPT, DPTDepthModel, DPTSegmentationModel
    from dpt_ros.models.options import PredictorOptions
    from dpt_ros.models.predictor import Predictor, resolve_device, resolve_precision
    from dpt_ros.models.registry import (
        LABELS,
        METRIC_DEPTH,
        MODEL_SPECS,
        RELATIVE_INVERSE_DEPTH,
        ModelSpec,
        get_spec,
        model_names,
    )
    from dpt_ros.models.weights.checkpoint import check_state_dict, load_model, read_state_dict
    from dpt_ros.models.weights.layout import identify_model_types

_EXPORTS = {
    "CheckpointError": "dpt_ros.models.errors",
    "DPT": "dpt_ros.models.network.dpt",
    "DPTDepthModel": "dpt_ros.models.network.dpt",
    "DPTSegmentationModel": "dpt_ros.models.network.dpt",
    "LABELS": "dpt_ros.models.registry",
    "METRIC_DEPTH": "dpt_ros.models.registry",
    "MODEL_SPECS": "dpt_ros.models.registry",
    "ModelFamily": "dpt_ros.models.family",
    "ModelSpec": "dpt_ros.models.registry",
    "Prediction": "dpt_ros.models.family",
    "Predictor": "dpt_ros.models.predictor",
    "PredictorOptions": "dpt_ros.models.options",
    "RELATIVE_INVERSE_DEPTH": "dpt_ros.models.registry",
    "check_state_dict": "dpt_ros.models.weights.checkpoint",
    "get_spec": "dpt_ros.models.registry",
    "identify_model_types": "dpt_ros.models.weights.layout",
    "load_model": "dpt_ros.models.weights.checkpoint",
    "model_names": "dpt_ros.models.registry",
    "read_state_dict": "dpt_ros.models.weights.checkpoint",
    "resolve_device": "dpt_ros.models.predictor",
    "resolve_precision": "dpt_ros.models.predictor",
}

__all__ = [
    "CheckpointError",
    "DPT",
    "DPTDepthModel",
    "DPTSegmentationModel",
    "LABELS",
    "METRIC_DEPTH",
    "MODEL_SPECS",
    "ModelFamily",
    "ModelSpec",
    "Prediction",
    "Predictor",
    "PredictorOptions",
    "RELATIVE_INVERSE_DEPTH",
    "check_state_dict",
    "get_spec",
    "identify_model_types",
    "load_model",
    "model_names",
    "read_state_dict",
    "resolve_device",
    "resolve_precision",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dpt_ros.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return __all__
