"""How a model is run: one options type for the Predictor, the node and every command
(``dpt_ros.cli.args`` adds its flags to a command and builds it from them).

Everything a caller can choose about running a model type lives here once: the valid
precisions, compile modes and backends, the network-size rule, and their checks. No
torch import here, so command-line parsing stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from dpt_ros.models.registry import get_spec, task_problem
from dpt_ros.options import Naming, Options, option

#: ``precision`` values; ``auto`` is fp16 on CUDA and fp32 on the CPU.
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: ``compile`` values: ``none`` or a ``torch.compile`` mode (``reduce-overhead`` adds
#: CUDA graphs on the GPU).
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
#: ``backend`` values: ``auto`` (the fastest available, see
#: :func:`dpt_ros.runtime.engine_cache.resolve_backend`), PyTorch itself, or an engine:
#: a file from ``dpt-ros export``, or one built and cached on first use.
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
#: ``engine_build`` values: when an engine that is not in the cache yet is built.
#: ``lazy`` (the default): in the background from the warm-up (or the first frame of a
#: size), PyTorch serving meanwhile, the engine taking over when ready; ``eager``: at
#: start (the warm-up waits for it); ``never``: only engines already cached are used.
ENGINE_BUILDS = ("eager", "lazy", "never")
#: The backends that run an exported engine file.
ENGINE_BACKENDS = ("onnxruntime", "tensorrt")
#: ``device`` values (case and surrounding blanks do not matter); N is a CUDA index.
DEVICES = ("auto", "cpu", "cuda", "cuda:N")


def device_problem(device: str | None) -> str | None:
    """Why ``device`` is not a device name (see :data:`DEVICES`), or None. Whether the
    device exists on this machine is checked when the model loads."""
    name = (device or "auto").strip().lower()
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return None
    return f"unknown device {device!r}; valid: {', '.join(DEVICES)}"


@dataclass(frozen=True)
class PredictorOptions(Options):
    """Everything that says how one model type runs.

    Attributes:
        model_type: registry name, e.g. ``dpt_hybrid``.
        weights: weights file; None = the cache, downloading the official file there.
        random_weights: explicitly use random weights (demos, benchmarks).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: one of :data:`PRECISIONS`.
        network_size: (width, height) in pixels to resize around instead of the model's
            own; multiples of the model's ``size_multiple`` (32 for DPT, 14 for Depth
            Anything V2). None = the model's.
        keep_aspect_ratio: resize both axes by one scale (the original's behaviour).
        backend: one of :data:`BACKENDS`.
        engine: an exported file for an engine backend; None = build (or reuse) one
            in the engine cache for each network input shape.
        engine_build: one of :data:`ENGINE_BUILDS` (cached engines only).
        compile: one of :data:`COMPILE_MODES` (torch backend only).
        channels_last: NHWC activations in the torch backend's convolutions.
    """

    NAMING: ClassVar[Naming] = "field"

    model_type: str
    weights: str | None = None
    random_weights: bool = False
    device: str = option(
        "auto",
        "Inference device: auto, cpu, cuda or cuda:N.",
        param="device",
        flag="--device",
        metavar="DEVICE",
    )
    precision: str = option(
        "auto",
        "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16 or bf16.",
        choices=PRECISIONS,
        param="precision",
        flag="--precision",
    )
    network_size: tuple[int, int] | None = None
    keep_aspect_ratio: bool = option(
        True,
        "Resize the image by one scale for both axes before the network (as the original).",
        param="keep_aspect_ratio",
    )
    backend: str = option(
        "auto",
        "Inference backend: auto (tensorrt on CUDA where installed, else onnxruntime at "
        "fp32 where installed, else torch), torch, onnxruntime or tensorrt. An engine "
        "backend runs <task>.engine, or without one builds an engine per network size "
        "once into $DPT_ROS_CACHE/engines and reuses it on later starts; a failed "
        "build falls back to torch with a warning.",
        choices=BACKENDS,
        param="backend",
        flag="--backend",
        summary=(
            "auto (the fastest engine this machine has), torch, onnxruntime or tensorrt; engines "
            "are built once and cached."
        ),
    )
    engine: str | None = None
    #: The commands' ``--engine-build`` is their own (default ``eager``, or ``auto``
    #: for a one-shot job: :func:`dpt_ros.cli.args.add_predictor_arguments`).
    engine_build: str = option(
        "lazy",
        "When a missing cached engine is built: lazy = in the background from the "
        "start, PyTorch serving frames until the engine takes over (the switch is logged "
        "and in /diagnostics' backend); eager = at start, before the first frame "
        "(minutes on a Jetson); never = cached engines only.",
        choices=ENGINE_BUILDS,
        param="engine_build",
        summary=(
            "When a missing cached engine is built: lazy (in the background, PyTorch serving "
            "meanwhile), eager (at start) or never."
        ),
    )
    compile: str = option(
        "none",
        "torch.compile mode: none, default, reduce-overhead (adds CUDA graphs) or "
        "max-autotune; compiles at start (warm-up), minutes on a Jetson.",
        choices=COMPILE_MODES,
        param="compile",
        flag="--compile",
    )
    channels_last: bool = True

    def choice_problem(self, label: str, value: Any, choices: tuple[str, ...]) -> str:
        what = "compile mode" if label == "compile" else label
        return f"unknown {what} {value!r}; valid: {', '.join(choices)}"

    def problems(  # type: ignore[override]  # which task, and what the caller calls things
        self,
        task: str | None = None,
        engine_name: str = "an engine file",
        size_names: tuple[str, str] | None = None,
        naming: Naming | None = None,
    ) -> list[str]:
        """Every problem with these options (empty = valid). Options with none for
        ``task`` are recorded as checked for it: :meth:`validated` does not check them
        again.

        Args:
            task: ``depth`` or ``segmentation`` if the caller needs that task.
            engine_name: what the caller calls :attr:`engine` (a flag, a parameter).
            size_names: what the caller calls the width and the height of
                :attr:`network_size` (parameters): the size's problem then names the
                side that is wrong.
            naming: what the other problems call a field (see
                :meth:`dpt_ros.options.Options.problems`).
        """
        found: list[str] = []
        problem = task_problem(self.model_type, task)
        if problem:
            found.append(problem)
        device = device_problem(self.device)
        if device:
            found.append(device)
        found += self.field_problems(naming)
        if self.backend == "auto" and self.engine:
            found.append(
                f"{engine_name} {self.engine!r} needs backend onnxruntime or tensorrt, "
                "not auto (auto builds and caches its own engines)"
            )
        elif (
            self.backend in ENGINE_BACKENDS
            and not problem
            and not get_spec(self.model_type).family.engines
        ):
            found.append(
                f"{self.model_type} has no {self.backend} engines yet (its export is "
                "not proven); use backend torch or auto"
            )
        elif self.backend in ENGINE_BACKENDS and self.compile != "none":
            found.append(
                f"compile={self.compile!r} applies to backend torch only; an "
                f"exported {self.backend} engine is already optimised"
            )
        if self.network_size is not None and not problem:
            size_problem = get_spec(self.model_type).network_size_problem(
                *self.network_size, names=size_names
            )
            if size_problem:
                found.append(size_problem)
        if not found:
            # What the caller calls things changes the words, not the verdict: options
            # without problems for a task are not checked for it again (validated()).
            done: tuple[str | None, ...] = self.__dict__.get("_validated_for", ())
            object.__setattr__(self, "_validated_for", (*done, task))
        return found

    def validated(self, task: str | None = None) -> PredictorOptions:
        """These options; ValueError naming every problem otherwise.

        Checked once per instance (and task): the boundary that took the options (a
        command's flags, the node's parameters) checks them with :meth:`problems` or
        here, and the :class:`~dpt_ros.models.Predictor` and
        :class:`~dpt_ros.pipeline.frames.FramePipeline` they reach do not check them
        again. The options are frozen, and :meth:`with_` gives a new, unchecked instance.
        """
        done: tuple[str | None, ...] = self.__dict__.get("_validated_for", ())
        if task in done or (task is None and done):
            return self
        found = self.problems(task)
        if found:
            raise ValueError("; ".join(found))
        return self

    def with_(self, **changes: Any) -> PredictorOptions:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)
