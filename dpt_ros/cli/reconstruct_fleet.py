"""``dpt-ros reconstruct --ray``: several inputs on Ray, one input per task.

Each worker is a Ray actor that loads the model (and the metric model) once and
reconstructs input after input into its own folder (``OUT/<input name>``), as
``dpt-ros bag --ray`` does with bags (connecting to Ray and sizing the pool:
:mod:`dpt_ros.cli.ray_pool`). The sequential
path (no ``--ray``: one loaded model in this process) runs the same
:data:`Reconstructor` callable, made by
:func:`dpt_ros.cli.reconstruct.make_reconstructor`. An input that fails on Ray fails
alone: its reason is reported, the others finish. The output folder must be reachable
by every worker (a shared file system on a cluster).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dpt_ros.cli import ray_pool

__all__ = ["InputJob", "InputOutcome", "Reconstructor", "run_on_ray"]


@dataclass(frozen=True)
class InputJob:
    """One unit of work: an input (a folder of images or a bag) and its output folder."""

    input: Path
    output: Path


@dataclass(frozen=True)
class InputOutcome:
    """What reconstructing one input did.

    Attributes:
        input: the input's path.
        said: the summary line for stdout ('' when it failed).
        warning: the skipped images line for stderr, or ''.
        skipped: how many images were skipped.
        failed: why it failed ('' = it did not).
        worker: the Ray worker that did it ('' without Ray).
    """

    input: str
    said: str
    warning: str = ""
    skipped: int = 0
    failed: str = ""
    worker: str = ""


#: Reconstructs one input (the model already loaded).
Reconstructor = Callable[[InputJob], InputOutcome]


class _Worker:
    """A Ray actor: loads the model once, then reconstructs input after input."""

    def __init__(self, make: Callable[[argparse.Namespace], Reconstructor], args: Any) -> None:
        self.one = make(args)
        self.name = f"pid {os.getpid()}"

    def process(self, job: InputJob) -> InputOutcome:
        try:
            return replace(self.one(job), worker=self.name)
        except Exception as exc:  # one input fails alone; the worker goes on
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            return InputOutcome(str(job.input), "", failed=reason, worker=self.name)


def run_on_ray(
    args: argparse.Namespace,
    jobs: Sequence[InputJob],
    make: Callable[[argparse.Namespace], Reconstructor],
) -> list[InputOutcome]:
    """The inputs as Ray tasks on a pool of model-holding actors, each of which calls
    ``make(args)`` once (:func:`dpt_ros.cli.reconstruct.make_reconstructor`); outcomes
    in the inputs' order. A worker that dies fails its input and is replaced."""
    ray = ray_pool.connect(args)
    gpus = ray_pool.gpus_per_worker(args)
    actor_cls = ray.remote(num_cpus=1, num_gpus=gpus)(_Worker)
    pending = list(jobs)
    running: dict[Any, tuple[Any, InputJob]] = {}
    outcomes: dict[str, InputOutcome] = {}
    count = ray_pool.worker_count(args, ray, gpus, len(jobs))
    idle = [actor_cls.remote(make, args) for _ in range(count)]
    while pending or running:
        while idle and pending:
            actor, job = idle.pop(), pending.pop(0)
            running[actor.process.remote(job)] = (actor, job)
        done, _ = ray.wait(list(running), num_returns=1)
        actor, job = running.pop(done[0])
        try:
            outcome = ray.get(done[0])
        except ray.exceptions.RayActorError as exc:
            reason = " ".join(str(exc).split())[:300]
            outcome = InputOutcome(str(job.input), "", failed=f"worker died ({reason})")
            actor = actor_cls.remote(make, args)
        except ray.exceptions.RayError as exc:
            outcome = InputOutcome(str(job.input), "", failed=" ".join(str(exc).split())[:300])
        idle.append(actor)
        outcomes[str(job.input)] = outcome
    return [outcomes[str(job.input)] for job in jobs]
