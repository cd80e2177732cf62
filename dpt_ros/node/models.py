"""The node's models: loaded with the node's logging (a random-weights warning said
once), and warmed up for the configured camera size before the first frame."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

from dpt_ros.models.errors import RandomWeightsWarning
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.predictor import Predictor
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.node.diagnostics import backend_text
from dpt_ros.node.params import NodeConfig
from dpt_ros.pipeline.frames import FramePipeline


class _DropRandomWeightsRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "RANDOM weights" not in record.getMessage()


@contextlib.contextmanager
def _without_random_weights_log() -> Iterator[None]:
    """Drops the weights loader's random-weights log record within the block."""
    logger = logging.getLogger(load_model.__module__)
    drop = _DropRandomWeightsRecords()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def load_predictor(options: PredictorOptions | None, task: str, logger: Any) -> Predictor | None:
    """The ``task`` model (None when disabled), random weights announced once, as a
    warning of the node."""
    if options is None:
        return None
    if options.random_weights:
        logger.warning(
            f"{task}: {options.model_type} with RANDOM weights (parameter "
            f"{task}.random_weights): its outputs are meaningless"
        )
    # That line is the one warning: not the loader's log record and Python warning too.
    with warnings.catch_warnings(), _without_random_weights_log():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return Predictor(options)


def warm_up(pipeline: FramePipeline, cfg: NodeConfig, logger: Any) -> None:
    """Runs each model once at the configured camera size (CUDA context, cuDNN
    algorithms, torch.compile), batched as all cameras would be."""
    if not cfg.warmup_width:
        return
    hw = (cfg.warmup_height, cfg.warmup_width)
    batch = max(1, len(cfg.cameras))
    # Eager PyTorch on the CPU: the first pass of a process sets up the convolution
    # kernels for its shapes, shared by a second network on the same backbone and input
    # (dpt_hybrid + dpt_hybrid_ade20k): its own pass would cost a whole frame (seconds on
    # 2 cores) to save nothing measurable on its first frame.
    warmed_on_cpu: dict[tuple[str, tuple[int, int]], str] = {}
    for p in (pipeline.depth, pipeline.segmentation):
        if p is not None:
            engine_backend = getattr(p.runtime, "backend", None)
            if engine_backend is not None:
                logger.info(
                    f"{p.spec.name}: getting the {engine_backend} engine for "
                    f"{hw[1]}x{hw[0]} images (engine_build {p.options.engine_build}"
                    + (
                        ": PyTorch serves until it is ready"
                        if p.options.engine_build == "lazy"
                        else "; a first build takes minutes on a Jetson"
                    )
                    + ")"
                )
            cpu_key = (p.spec.backbone, p.input_size(hw))
            if cpu_key in warmed_on_cpu:
                p.prepare(hw, batch)  # a cached engine loads; a lazy build starts
                if p.eager_on_cpu:
                    logger.info(
                        f"{p.spec.name}: no warm-up pass of its own for {hw[1]}x{hw[0]} "
                        f"images: PyTorch on the CPU, kernels set up by "
                        f"{warmed_on_cpu[cpu_key]}'s"
                    )
                    continue
            seconds = p.warm_up(hw, batch)
            if p.eager_on_cpu:
                warmed_on_cpu[cpu_key] = p.spec.name
            logger.info(
                f"{p.spec.name}: warmed up for {hw[1]}x{hw[0]} images (batch {batch}) "
                f"in {seconds:.1f} s on {backend_text(p)}"
            )
