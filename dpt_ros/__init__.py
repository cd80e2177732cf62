"""dpt_ros: DPT monocular depth and semantic segmentation for ROS 2.

Layers, each importing only from those below it (``test/unit/test_layers.py`` checks):
``dpt_ros.cli`` (the command-line tools) > ``dpt_ros.node`` (the ROS 2 node) >
``dpt_ros.pipeline`` and ``dpt_ros.alignment`` (the processing core, no rclpy node) >
``dpt_ros.ros`` (message conversions and geometry on numpy arrays) and
``dpt_ros.runtime`` (how a model runs: PyTorch, ONNX Runtime, TensorRT; with
``dpt_ros.models.Predictor``) > ``dpt_ros.models`` (what a model is: the registry, the
networks, the weights; torch only); ``dpt_ros.viz`` (colour maps) is usable from every
layer below ``cli``.
"""

__version__ = "0.1.0"

#: Public: the version; the public names of each subpackage are in its own
#: ``__all__`` (docs/python_api.md lists them all).
__all__ = ["__version__"]
