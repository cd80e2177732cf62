"""What ``dpt-ros bag --ray`` and ``dpt-ros reconstruct --ray`` share: importing Ray
(an optional dependency), connecting to it, and sizing the pool of model-holding actors
from ``--workers``, ``--gpus-per-worker`` and ``--device``.

Each verb keeps its own actor and task loop (a bag's outcome counts frames and cleans a
partial output; an input's outcome carries the reconstruction's summary)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["connect", "gpus_per_worker", "worker_count"]


def connect(args: argparse.Namespace) -> Any:
    """The ``ray`` module, initialised on ``--ray`` (``local``: a Ray started here; else
    the cluster address) unless the caller already did.

    Raises:
        ValueError: Ray is not installed (the message says how to install it).
    """
    try:
        # optional dependency: ray
        import ray
    except ImportError:
        raise ValueError(
            "--ray needs Ray, which is not installed: pip install 'dpt_ros[fleet]' "
            "(or pip install ray)"
        ) from None
    if not ray.is_initialized():
        address = None if args.ray == "local" else args.ray
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    return ray


def gpus_per_worker(args: argparse.Namespace) -> float:
    """``--gpus-per-worker``, or one GPU per actor on a CUDA device and none elsewhere."""
    if args.gpus_per_worker is not None:
        return float(args.gpus_per_worker)
    return 1.0 if str(args.device).startswith("cuda") else 0.0


def worker_count(args: argparse.Namespace, ray: Any, gpus: float, jobs: int) -> int:
    """How many actors: ``--workers`` (at most one per job), else as many as the
    cluster's GPUs hold at ``gpus`` each, else one."""
    if args.workers:
        return min(args.workers, jobs)
    if gpus > 0:
        return max(1, min(jobs, int(ray.cluster_resources().get("GPU", 0) // gpus)))
    return 1
