"""How a model runs: PyTorch itself, ONNX Runtime or TensorRT (torch only, no ROS).

``dpt_ros.models`` says what a model is (the registry, the networks, the weights); this
package runs one. :mod:`~dpt_ros.runtime.runtimes` holds the ``Runtime`` contract and
its runtimes, :mod:`~dpt_ros.runtime.backend` picks the one a ``PredictorOptions``
asks for, :mod:`~dpt_ros.runtime.engine_cache` builds engines on first use and keeps
them (the build itself in a child process, :mod:`~dpt_ros.runtime.engine_build`),
:mod:`~dpt_ros.runtime.export` writes ONNX files and TensorRT engines (``dpt-ros
export``), and :mod:`~dpt_ros.runtime.build_choice` decides whether a build pays off
for a job of known length (``dpt-ros predict``). ``dpt_ros.models.Predictor`` puts a
model and its runtime together; the options (``backend``, ``engine``,
``engine_build``) choose the runtime.
"""

#: No public names: a runtime is chosen through ``PredictorOptions`` (docs/python_api.md).
__all__: list[str] = []
