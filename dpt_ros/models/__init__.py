"""The DPT network and its inference pipeline (torch and timm only, no ROS).

Typical use::

    from dpt_ros.models import Predictor
    predictor = Predictor("dpt_hybrid", weights="dpt_hybrid-midas-501f0c75.pt")
    inverse_depth = predictor.predict(rgb)   # (H, W) float32
"""
from dpt_ros.models.weights.checkpoint import check_state_dict, identify_model_types, load_model, read_state_dict
from dpt_ros.models.network.dpt import DPT, DPTDepthModel, DPTSegmentationModel
from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.predictor import Predictor, resolve_device, resolve_precision
from dpt_ros.models.registry import (LABELS, METRIC_DEPTH, MODEL_SPECS, RELATIVE_INVERSE_DEPTH, ModelSpec,
                       get_spec, model_names)

__all__ = [
    "CheckpointError", "DPT", "DPTDepthModel", "DPTSegmentationModel", "LABELS",
    "METRIC_DEPTH", "MODEL_SPECS", "ModelSpec", "Predictor", "RELATIVE_INVERSE_DEPTH",
    "check_state_dict", "get_spec", "identify_model_types", "load_model", "model_names",
    "read_state_dict", "resolve_device", "resolve_precision",
]
