"""``dpt-ros bag IN1 IN2 ... -o OUTDIR``: many bags, one after another or on Ray.

Each input bag is one unit of work, written to ``OUTDIR/<input name>``:

- A finished output (a bag with its ``metadata.yaml``) is skipped on a later run.
- Work goes to ``OUTDIR/.<name>.partial`` and is renamed into place when the bag is
  done, so a half-written bag never counts as finished; a partial output left by a
  killed run is removed and redone from scratch.
- A corrupt or unreadable bag, or a worker that dies, fails that bag only; the others
  finish, the summary names the reason, and the exit status is 1.
- One run at a time per output directory: a run holds ``flock`` on
  ``OUTDIR/.dpt-ros-bag.lock`` (:func:`output_lock`), and a second is refused. The kernel
  drops the lock of a process that dies, so a killed run never blocks the next.

Without ``--ray`` the bags run in this process, sharing one loaded pipeline, and Ray is
never imported. With ``--ray`` each worker is a Ray actor that loads the models once and
processes bag after bag (:class:`_Worker`); the Ray code is here and in
:mod:`dpt_ros.cli.ray_pool` (connecting, pool size), shared with reconstruct. The
output directory must be reachable by every worker (a shared file system on a cluster).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dpt_ros.cli import ray_pool
from dpt_ros.cli.bag import job as bag_job
from dpt_ros.cli.stop_signals import raise_swallowed


@dataclass(frozen=True)
class BagSpec:
    """One unit of work: an input bag and its final output path."""

    input: Path
    output: Path

    @property
    def partial(self) -> Path:
        return self.output.with_name(f".{self.output.name}.partial")


@dataclass(frozen=True)
class Outcome:
    """What happened to one bag: status ``done``, ``skipped`` or ``failed: <reason>``."""

    input: str
    frames: int
    seconds: float
    status: str
    worker: str = ""


def output_name(path: Path) -> str:
    """``OUTDIR/<input name>``: a bag directory's name, a file's name without its suffix,
    of the path resolved (``.`` is named after the current directory).

    Raises:
        ValueError: the path has no name (``/``).
    """
    resolved = path.resolve()
    name = resolved.name if resolved.is_dir() else resolved.stem
    if not name:
        raise ValueError(
            f"input bag {str(path)!r} has no name to give its output OUTDIR/<name>; "
            "give the bag's path by a name"
        )
    return name


def plan(inputs: Sequence[str], out_dir: Path) -> list[BagSpec]:
    """The units of work; ValueError for missing inputs, two with one output name, or an
    output that is (or is in, or holds) an input."""
    specs: list[BagSpec] = []
    seen: dict[str, str] = {}
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise FileNotFoundError(f"input bag {text!r} does not exist")
        name = output_name(path)
        if name in seen:
            raise ValueError(
                f"inputs {seen[name]!r} and {text!r} would both write {out_dir / name}"
            )
        seen[name] = text
        specs.append(BagSpec(path, out_dir / name))
    _check_apart(specs, out_dir)
    return specs


def _check_apart(specs: Sequence[BagSpec], out_dir: Path) -> None:
    """ValueError unless ``out_dir`` and every output lie outside every input bag and no
    input lies inside an output: an input must never be taken for a finished output,
    written into, or removed as a stale one."""
    try:
        out_abs = out_dir.resolve()
        outputs = [(s.input, s.output.resolve()) for s in specs]
        inputs = [(s.input, s.input.resolve()) for s in specs]
    except OSError:
        return
    for text, inp in inputs:
        # The bag: a directory, or a .db3/.mcap file's folder where it holds metadata.yaml.
        folder = inp if inp.is_dir() else inp.parent
        bag = folder if (folder / "metadata.yaml").is_file() else inp
        if out_abs.is_relative_to(bag):
            raise ValueError(
                f"-o {out_dir} is inside input bag {str(text)!r}; choose an output "
                "directory outside every input (a bag directory holds one bag)"
            )
        for source, out in outputs:
            if out.is_relative_to(bag) or inp.is_relative_to(out):
                what = "is input" if out == inp else "holds input"
                raise ValueError(
                    f"-o {out_dir}: the output for {str(source)!r} would be "
                    f"{out_dir / out.name}, which {what} {str(text)!r}; choose an output "
                    "directory outside the inputs"
                )


def is_finished(output: Path) -> bool:
    """A finished output bag: renamed into place, so complete, with its metadata."""
    return (output / "metadata.yaml").is_file()


#: The lock file of a run in its output directory (see :func:`output_lock`).
LOCK_NAME = ".dpt-ros-bag.lock"


@contextlib.contextmanager
def output_shared_lock(out_dir: Path) -> Iterator[None]:
    """For one ``dpt-ros bag`` run writing into ``out_dir``: a shared ``flock`` on the
    lock of a fleet run there (:func:`output_lock`) if there is one, so the single run
    is refused while a fleet writes into the directory and a fleet is refused while it
    runs; single runs do not exclude each other. Without a lock file nothing is held
    (a fleet started later finds the single run's output and leaves it alone).

    Raises:
        ValueError: a fleet run holds the lock (the text names its pid).
    """
    path = out_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise ValueError(
                f"{out_dir} is in use by a dpt-ros bag run of several bags{who}; wait for "
                f"it to end or choose another output directory (the lock: {path})"
            ) from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``out_dir/.dpt-ros-bag.lock`` for the block, so
    that two runs never write (or remove) each other's partial outputs; the file holds
    the owner's pid and is removed when the block ends.

    Raises:
        ValueError: another run holds it (the text names its pid).
    """
    path = out_dir / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise ValueError(
                f"-o {out_dir} is in use by another dpt-ros bag run{who}; wait for it to "
                f"end or choose another output directory (the lock: {path})"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # else a finishing run removed the file we opened: take the new one
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while held: a run that opened it meanwhile sees it gone
        os.close(fd)


def process(args: argparse.Namespace, spec: BagSpec, pipeline: Any, worker: str = "") -> Outcome:
    """One bag, atomically (see the module docstring). Never raises for a bad bag."""
    if is_finished(spec.output):
        return Outcome(str(spec.input), 0, 0.0, "skipped", worker)
    shutil.rmtree(spec.partial, ignore_errors=True)  # a killed run's: redo from scratch
    start = time.monotonic()
    try:
        if spec.output.exists():
            raise FileExistsError(f"{spec.output} exists but is not a finished bag; remove it")
        job, _, _ = bag_job.process_bag(args, spec.input, spec.partial, pipeline, progress=False)
        spec.partial.rename(spec.output)
    except Exception as exc:  # this bag fails, the others go on
        shutil.rmtree(spec.partial, ignore_errors=True)
        raise_swallowed()  # unless it was a stop that came as another error: all stop
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return Outcome(str(spec.input), 0, time.monotonic() - start, f"failed: {reason}", worker)
    return Outcome(str(spec.input), job.frames_done, time.monotonic() - start, "done", worker)


def run(args: argparse.Namespace) -> int:
    """``dpt-ros bag`` with several inputs; exit status 1 when any bag failed."""
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"-o {out_dir}: with several inputs it must be a directory")
    depth, segmentation = bag_job.checked_options(args)
    specs = plan(args.input, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir):
        if args.ray is None:
            outcomes = _run_here(args, specs, (depth, segmentation))
        else:
            outcomes = _run_on_ray(args, specs)
    print_summary(outcomes)
    return 1 if any(o.status.startswith("failed") for o in outcomes) else 0


def _progress(args: argparse.Namespace, specs: Sequence[BagSpec]) -> Any:
    return tqdm(
        total=len(specs),
        unit="bag",
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
        desc="dpt-ros bag",
    )


def _advance(bar: Any, outcome: Outcome, frames: list[int]) -> None:
    frames[0] += outcome.frames
    bar.set_postfix_str(f"{frames[0]} frames", refresh=False)
    bar.update(1)


def _run_here(args: argparse.Namespace, specs: Sequence[BagSpec], options: tuple) -> list[Outcome]:
    """The bags one after another in this process, with one pipeline."""
    todo = [s for s in specs if not is_finished(s.output)]
    pipeline = bag_job.make_pipeline(args, *options) if todo else None
    outcomes, frames = [], [0]
    with _progress(args, specs) as bar:
        for spec in specs:
            outcome = process(args, spec, pipeline)
            outcomes.append(outcome)
            _advance(bar, outcome, frames)
    return outcomes


def print_summary(outcomes: Sequence[Outcome]) -> None:
    """The table: bag, frames, seconds, status (and the worker, on Ray)."""
    width = max([len(o.input) for o in outcomes] + [3])
    show_worker = any(o.worker for o in outcomes)
    head = f"{'bag':<{width}}  {'frames':>6}  {'seconds':>8}  status"
    print(head + ("  worker" if show_worker else ""))
    for o in outcomes:
        line = f"{o.input:<{width}}  {o.frames:>6}  {o.seconds:>8.1f}  {o.status}"
        print(line + (f"  {o.worker}" if show_worker else ""))
    failed = sum(o.status.startswith("failed") for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    print(
        f"{len(outcomes)} bag(s): {len(outcomes) - failed - skipped} done, {skipped} skipped, "
        f"{failed} failed"
    )


# ------------------------------------------------------------------------------ Ray


class _Worker:
    """A Ray actor: loads the pipeline once, then processes bag after bag."""

    def __init__(self, args: argparse.Namespace) -> None:

        self.args = args
        self.pipeline = bag_job.make_pipeline(args, *bag_job.checked_options(args))
        self.name = f"pid {os.getpid()}"

    def process(self, spec: BagSpec) -> Outcome:
        return process(self.args, spec, self.pipeline, self.name)


def _run_on_ray(args: argparse.Namespace, specs: Sequence[BagSpec]) -> list[Outcome]:
    """The bags as Ray tasks on a pool of model-holding actors (see the module docstring)."""
    ray = ray_pool.connect(args)
    gpus = ray_pool.gpus_per_worker(args)
    actor_cls = ray.remote(num_cpus=1, num_gpus=gpus)(_Worker)
    count = ray_pool.worker_count(args, ray, gpus, len(specs))
    pending = list(specs)
    running: dict[Any, tuple[Any, BagSpec]] = {}
    outcomes: list[Outcome] = []
    frames = [0]
    with _progress(args, specs) as bar:
        idle = [actor_cls.remote(args) for _ in range(count)]
        while pending or running:
            while idle and pending:
                actor, spec = idle.pop(), pending.pop(0)
                running[actor.process.remote(spec)] = (actor, spec)
            done, _ = ray.wait(list(running), num_returns=1)
            actor, spec = running.pop(done[0])
            outcome, actor = _collect(ray, done[0], actor, spec, actor_cls, args)
            idle.append(actor)
            outcomes.append(outcome)
            _advance(bar, outcome, frames)
    order = {str(s.input): i for i, s in enumerate(specs)}
    return sorted(outcomes, key=lambda o: order[o.input])


def _collect(ray: Any, ref: Any, actor: Any, spec: BagSpec, actor_cls: Any, args: Any) -> tuple:
    """(the task's outcome, an actor for the next bag): a dead worker fails its bag only
    and is replaced."""
    try:
        return ray.get(ref), actor
    except ray.exceptions.RayActorError as exc:
        reason = " ".join(str(exc).split())[:200]
        shutil.rmtree(spec.partial, ignore_errors=True)
        return Outcome(
            str(spec.input), 0, 0.0, f"failed: worker died ({reason})"
        ), actor_cls.remote(args)
    except ray.exceptions.RayError as exc:
        reason = " ".join(str(exc).split())[:200]
        return Outcome(str(spec.input), 0, 0.0, f"failed: {reason}"), actor
