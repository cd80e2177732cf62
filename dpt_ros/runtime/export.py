"""Exporting a model as a fixed-shape ONNX file or TensorRT engine (the library
behind ``dpt-ros export``).

The exported graph is the torch network and nothing else: it takes the normalised
float32 (B, 3, H, W) input that ``Predictor`` feeds its model and returns the same
output (depth models: (B, H, W) float32; segmentation models: (B, 150, H, W) float32
logits). Pre- and post-processing stay in torch. Every size is fixed at export time
(no dynamic axes), so a runtime can plan memory and kernels once.

:func:`export_onnx` uses ``torch.onnx.export(..., dynamo=True)`` (torch.export), the
default since torch 2.9 (the TorchScript exporter is deprecated): it bakes every shape
into the graph, so the input and output shapes in the file are fixed numbers and no
Shape/Gather arithmetic is left for a runtime. It writes ONNX opset 18 at least.
LayerNorm is one ``LayerNormalization`` node from opset 17 on, which TensorRT maps to
its normalisation layer instead of elementary ops that can overflow in fp16; the export
counts those nodes and warns if a LayerNorm was split.

A sidecar ``<file>.json`` describes the export (model type, input and output shapes,
mean/std, output kind, opset, versions, weights SHA-256) so that a backend can check
that the file fits the configured model and camera.

:func:`build_tensorrt_engine` builds an engine from such an ONNX file with the
``tensorrt`` Python API on this machine's GPU (an engine only runs on the GPU model and
TensorRT version that built it: build it on the robot).

onnxruntime and tensorrt are optional: they are imported inside the functions that use
them (onnx comes with torch's exporter, on use).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from dpt_ros import __version__
from dpt_ros.models.network.std_conv import fold_weight_standardization
from dpt_ros.models.registry import ModelSpec, get_spec, window_model_names
from dpt_ros.models.weights.checkpoint import load_model, resolve_weights
from dpt_ros.models.weights.digest import weights_digest
from dpt_ros.models.weights.download import default_cache_dir
from dpt_ros.options import Naming, Options, option
from dpt_ros.runtime.runtimes import (
    SIDECAR_VERSION,
    OnnxRuntimeModel,
    import_tensorrt,
    read_sidecar,
    sidecar_path,
)
from dpt_ros.runtime.window_runtimes import NO_REFERENCE

_LOG = logging.getLogger(__name__)

#: What ``dpt-ros export --format`` writes.
FORMATS = ("onnx", "tensorrt")
#: TensorRT engine precisions (the ONNX model itself is always float32).
ENGINE_PRECISIONS = ("fp32", "fp16")
#: Lowest opset the torch.export-based exporter writes; LayerNormalization needs 17.
DEFAULT_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"
#: Largest difference to PyTorch accepted by the check, relative to the output's largest
#: magnitude. Both run float32; their kernels sum in other orders, which moves the output
#: by 1e-6 to 5e-5 of its maximum (about as much as PyTorch's float32 differs from float64).
CHECK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ExportOptions(Options):
    """What kind of file is written (``dpt-ros export``'s ``--format`` and
    ``--precision``). ``precision`` is the precision of the exported engine, not a
    Predictor's: the ONNX model is always float32.
    """

    NAMING: ClassVar[Naming] = "flag"

    format: str = option(
        "onnx", "onnx, or tensorrt (needs TensorRT and a GPU).", choices=FORMATS, flag="--format"
    )
    precision: str | None = option(
        None,
        "Engine precision: fp16 (default for tensorrt) or fp32; the ONNX model itself is "
        "always fp32.",
        choices=ENGINE_PRECISIONS,
        flag="--precision",
    )

    @property
    def engine_precision(self) -> str:
        """``precision``, or the format's default: fp16 for TensorRT, fp32 for ONNX."""
        return self.precision or ("fp16" if self.format == "tensorrt" else "fp32")

    def combined_problems(self, naming: Naming | None = None) -> list[str]:
        """A reduced precision asked of an ONNX model (an unknown one is a field's
        problem)."""
        reduced = self.precision in ENGINE_PRECISIONS and self.precision != "fp32"
        if self.format != "onnx" or not reduced:
            return []
        precision, kind = (self.label(n, naming) for n in ("precision", "format"))
        return [
            f"{precision} {self.precision} applies to TensorRT engines; the ONNX model is "
            f"exported in fp32 (use {kind} tensorrt, or leave {precision} out)"
        ]


@dataclass
class ExportResult:
    """What ``export_onnx`` or ``build_tensorrt_engine`` wrote.

    Attributes:
        path: the ONNX file or engine.
        sidecar: its ``.json`` sidecar.
        metadata: the sidecar's content.
        seconds: time taken (export, or engine build).
        max_abs_diff, max_rel_diff: the check against PyTorch (onnxruntime on the CPU,
            one random input), None when not checked. The relative difference is the
            absolute one divided by the largest magnitude of the PyTorch output.
    """

    path: Path
    sidecar: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None


def default_output_name(
    model_type: str, width: int, height: int, batch: int, fmt: str = "onnx"
) -> str:
    """``<model_type>_<W>x<H>_b<N>.onnx`` (or ``.engine`` for tensorrt)."""
    suffix = ".engine" if fmt == "tensorrt" else ".onnx"
    return f"{model_type}_{width}x{height}_b{batch}{suffix}"


# --------------------------------------------------------------------------- helpers


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401  (optional dependency: onnxruntime)
    except ImportError:
        return False
    return True


def _require_exporter() -> None:
    """Raises ValueError unless the packages torch's ONNX exporter needs are installed."""
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ValueError(
            f"ONNX export needs {' and '.join(missing)}: pip install "
            f"{' '.join(missing)} (or pip install 'dpt_ros[export]')"
        )


def _write_sidecar(path: Path, metadata: dict[str, Any]) -> Path:
    side = sidecar_path(path)
    side.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return side


def _torch_reference(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The model's output for ``x`` and how many LayerNorm modules ran."""
    calls = [0]

    def count(*_):
        calls[0] += 1

    hooks = [
        m.register_forward_pre_hook(count)
        for m in model.modules()
        if isinstance(m, torch.nn.LayerNorm)
    ]
    try:
        with torch.inference_mode():
            out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return out, calls[0]


def _compare(path: Path, x: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Largest absolute and relative difference of onnxruntime (CPU) to ``reference``."""
    out = OnnxRuntimeModel(path, "cpu")(x)
    diff = float((out - reference).abs().max())
    scale = float(reference.abs().max())
    return diff, diff / scale if scale > 0 else diff


# --------------------------------------------------------------------------- ONNX


def _checked_arguments(
    spec: ModelSpec,
    width: int | None,
    height: int | None,
    batch: int,
    opset: int,
    check: bool | None,
) -> tuple[int, int, bool]:
    """(width, height, check) with the model's defaults filled in; ValueError on bad ones.

    Runs before the model is loaded: a bad argument costs nothing.
    """
    width = spec.net_width if width is None else int(width)
    height = spec.net_height if height is None else int(height)
    problem = spec.network_size_problem(width, height)
    if problem:
        raise ValueError(problem)
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if opset < DEFAULT_OPSET:
        raise ValueError(
            f"opset {opset} is too low: the torch.export-based ONNX exporter "
            f"writes opset {DEFAULT_OPSET} or later"
        )
    _require_exporter()
    if check is None:
        check = _onnxruntime_available()
    elif check and not _onnxruntime_available():
        raise ValueError(
            "--check needs onnxruntime: pip install onnxruntime "
            "(or pip install 'dpt_ros[export]'), or use --no-check"
        )
    return width, height, bool(check)


def _load_for_export(
    spec: ModelSpec,
    weights: str | None,
    random_weights: bool,
    cache_dir: str | None,
    progress: bool,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model in eval mode and the sidecar's description of its weights."""
    if random_weights:
        weights_info: dict[str, Any] = {"random": True}
        model = load_model(spec.name, weights, random_weights=True)
    else:
        path = resolve_weights(spec, weights, cache_dir, progress)
        model = load_model(spec.name, path)
        # Remembered in the cache's index: an engine built on first use hashed it already.
        sha = weights_digest(path, Path(cache_dir) if cache_dir else default_cache_dir())
        weights_info = {"file": path.name, "sha256": sha}
    return model.eval(), weights_info


def _example_inputs(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(trace input, check input): two seeded random inputs of ``shape``."""
    generator = torch.Generator().manual_seed(0)
    # Inputs like normalised images ((rgb - 0.5) / 0.5 lies in [-1, 1]); the check uses
    # another input than the trace, so values baked into the graph would show.
    trace_x = torch.rand(shape, generator=generator) * 2 - 1
    check_x = torch.rand(shape, generator=generator) * 2 - 1
    return trace_x, check_x


def _warn_if_layer_norms_split(output: Path, layer_norms: int, ln_nodes: int) -> None:
    if ln_nodes != layer_norms:
        _LOG.warning(
            "%s: %d LayerNorm calls became %d LayerNormalization nodes; the others "
            "were split into elementary ops (slower, and less accurate in fp16)",
            output.name,
            layer_norms,
            ln_nodes,
        )


def _write_onnx(
    model: torch.nn.Module,
    trace_x: torch.Tensor | tuple[torch.Tensor, ...],
    output: Path,
    model_type: str,
    opset: int,
    output_names: tuple[str, ...] = (OUTPUT_NAME,),
    input_names: tuple[str, ...] = (INPUT_NAME,),
    external_data: bool = False,
) -> tuple[int, int, float]:
    """Traces ``model`` on ``trace_x`` (one input, or a tuple of them named by
    ``input_names``) and saves the graph to ``output``; with ``external_data`` the
    weights go to ``<output>.data`` beside it (:func:`external_data_path`).

    The hybrid's weight standardisation becomes constant, standardised weights in the
    graph, computed by the eager model's own function: the same numbers, and plain
    convolutions for TensorRT. ``model`` is changed in place (compute any eager reference
    before).

    Returns:
        (opset written, LayerNormalization nodes in the graph, seconds taken).
    """
    fold_weight_standardization(model)
    start = time.perf_counter()
    program = torch.onnx.export(
        model,
        trace_x if isinstance(trace_x, tuple) else (trace_x,),
        dynamo=True,
        opset_version=opset,
        input_names=list(input_names),
        output_names=list(output_names),
        optimize=True,
        verbose=False,
    )
    if program is None:  # only without dynamo=True
        raise ValueError(f"the ONNX exporter returned no program for {model_type}")
    written_opset = program.model.opset_imports.get("", 0)
    if written_opset != opset:
        raise ValueError(
            f"the exporter cannot write opset {opset} for {model_type} (it "
            f"made opset {written_opset}); use --opset {written_opset}"
        )
    ln_nodes = sum(
        1
        for node in program.model.graph
        if node.op_type == "LayerNormalization" and node.domain in ("", "ai.onnx")
    )
    # One file where it fits (dpt_large, 1.4 GB, is below protobuf's 2 GB limit); the
    # families past it (VGGT, 4.8 GB) keep their weights in <output>.data.
    program.save(str(output), external_data=external_data)
    return written_opset, ln_nodes, time.perf_counter() - start


def external_data_path(onnx_path: Path) -> Path:
    """Where an export with external data keeps its weights: ``<file>.onnx.data``
    (the name torch's exporter gives it, which the graph refers to)."""
    return onnx_path.with_name(onnx_path.name + ".data")


#: The input of a network that takes normalised images (every family but VGGT's, whose
#: networks say their own ``input_layout``).
NORMALISED_LAYOUT = "(rgb / 255 - mean) / std"


def input_layout(model: torch.nn.Module) -> str:
    """One image's input to ``model``, as an export's sidecar describes it."""
    return str(getattr(model, "input_layout", NORMALISED_LAYOUT))


def _onnx_metadata(
    spec: ModelSpec,
    model: torch.nn.Module,
    output: Path,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    opset: int,
    ln_nodes: int,
    weights_info: dict[str, Any],
) -> dict[str, Any]:
    """The sidecar of an ONNX export."""
    return {
        "sidecar_version": SIDECAR_VERSION,
        "format": "onnx",
        "file": output.name,
        "model_type": spec.name,
        "task": spec.task,
        "output_kind": spec.output,
        "input_name": INPUT_NAME,
        "input_shape": list(input_shape),
        "input_dtype": "float32",
        "input_layout": f"NCHW, {input_layout(model)}",
        "mean": list(spec.mean),
        "std": list(spec.std),
        "output_name": OUTPUT_NAME,
        "output_shape": list(output_shape),
        "output_dtype": "float32",
        "num_classes": spec.num_classes,
        "opset": opset,
        "layer_norm_nodes": ln_nodes,
        "precision": "fp32",
        "weights": weights_info,
        "torch": torch.__version__,
        "dpt_ros": __version__,
        **({"external_data": external_data_path(output).name} if spec.family.external_data else {}),
    }


def _check_against_torch(result: ExportResult, x: torch.Tensor, reference: torch.Tensor) -> None:
    """Fills the result's differences; ValueError above :data:`CHECK_TOLERANCE`."""
    result.max_abs_diff, result.max_rel_diff = _compare(result.path, x, reference)
    if not result.max_rel_diff <= CHECK_TOLERANCE:
        raise ValueError(
            f"{result.path} was written but its output differs from PyTorch's "
            f"by {result.max_abs_diff:.3g} ({result.max_rel_diff:.3g} of the "
            f"output's largest magnitude, more than {CHECK_TOLERANCE:g}); "
            "do not use it"
        )


def export_onnx(
    model_type: str,
    output: str | Path,
    *,
    weights: str | None = None,
    random_weights: bool = False,
    width: int | None = None,
    height: int | None = None,
    batch: int = 1,
    opset: int = DEFAULT_OPSET,
    check: bool | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> ExportResult:
    """Exports ``model_type`` to a fixed-shape ONNX file plus its sidecar.

    Args:
        model_type: registry name, e.g. ``dpt_hybrid``.
        output: the ``.onnx`` file to write (replaced if it exists).
        weights: weights file; None uses the cache / official download.
        random_weights: explicitly use random weights (tests); logs a warning.
        width, height: network input size in pixels, multiples of 32; None = the model's.
        batch: images per inference.
        opset: ONNX opset, at least ``DEFAULT_OPSET``.
        check: compare onnxruntime with PyTorch on a random input (None: when
            onnxruntime is installed). A difference above ``CHECK_TOLERANCE`` is an error.
        cache_dir: checkpoint cache directory override.
        progress: show a download progress bar.

    Returns:
        The file, its sidecar, the sidecar's content and the check's differences.

    Raises:
        ValueError: bad sizes, opset or model type; check asked for without onnxruntime;
            the check failed.
        CheckpointError: the weights are missing, unreadable or for another model.
    """

    spec = get_spec(model_type)
    width, height, check = _checked_arguments(spec, width, height, batch, opset, check)
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    model, weights_info = _load_for_export(spec, weights, random_weights, cache_dir, progress)

    shape = (batch, 3, height, width)
    trace_x, check_x = _example_inputs(shape)
    # The check compares with the eager model as loaded, before _write_onnx folds it.
    reference, layer_norms = _torch_reference(model, check_x)
    opset, ln_nodes, seconds = _write_onnx(
        model,
        trace_x,
        output,
        model_type,
        opset,
        external_data=spec.family.external_data,
    )
    _warn_if_layer_norms_split(output, layer_norms, ln_nodes)
    metadata = _onnx_metadata(
        spec, model, output, shape, tuple(reference.shape), opset, ln_nodes, weights_info
    )
    result = ExportResult(output, _write_sidecar(output, metadata), metadata, seconds)
    if check:
        _check_against_torch(result, check_x, reference)
    return result


# --------------------------------------------------------------------------- windows

#: Largest difference of a window export to PyTorch accepted by its check, relative to
#: each output's largest magnitude (measured on da3-small, 3 views at 112x140: 4e-6;
#: VGGT's graph at a reduced configuration, 2 and 3 views of 70x56: 1.3e-6).
WINDOW_CHECK_TOLERANCE = 1e-4


def export_window_onnx(
    model_type: str,
    output: str | Path,
    *,
    views: int,
    width: int,
    height: int,
    reference_view: str = "saddle_balanced",
    known_cameras: bool = False,
    weights: str | None = None,
    random_weights: bool = False,
    opset: int = DEFAULT_OPSET,
    check: bool | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> ExportResult:
    """Exports the window forward of a type with windows (Depth Anything 3's any-view
    types, VGGT) for one window of a fixed number of views and size.

    The graph is the family's :meth:`~dpt_ros.models.family.ModelFamily.window_module`.
    Depth Anything 3's takes ``input`` (1, views, 3, height, width) float32, the views'
    normalised network input, and gives ``depth`` and ``confidence`` (1, views, height,
    width), ``camera_from_world`` (1, views, 3, 4), ``intrinsics`` (1, views, 3, 3) and
    ``reference_view`` (1,) int64, as :meth:`DepthAnything3.forward_window` with
    ``reference_view`` as the strategy (the choice itself is in the graph: computed
    from each input's tokens, the views reordered and the outputs restored to the
    input order inside it). With ``known_cameras`` it also takes ``camera_from_world``
    (1, views, 4, 4) and ``intrinsics`` (1, views, 3, 3) float32, normalised as the
    network takes them, and chooses no reference view. VGGT's takes ``input`` (1,
    views, 3, height, width) RGB in [0, 1] and gives the fields of
    :class:`~dpt_ros.models.network.vggt.VggtOutput` (``pose_enc``, ``depth``,
    ``depth_conf``, ``world_points``, ``world_points_conf``); it has no reference-view
    strategy and takes no known cameras, and its weights go to ``<output>.data``
    (:func:`external_data_path`: 1.19 B parameters exceed protobuf's 2 GB).

    Args:
        model_type: a type with windows (``depth_anything_3_small`` ...).
        output: the ``.onnx`` file to write.
        views: views per window (N).
        width, height: the network input in pixels, multiples of 14.
        reference_view: the reference-view strategy baked into the graph (VGGT has
            none: its sidecar records ``none``).
        known_cameras: the graph takes known cameras (the camera encoder's path).
        weights, random_weights, opset, check, cache_dir, progress: as
            :func:`export_onnx`; the check compares every output with PyTorch's, each
            relative to its largest magnitude, within :data:`WINDOW_CHECK_TOLERANCE`.

    Raises:
        ValueError: a type without windows (naming those with them), bad sizes or
            views, the check failed.
    """
    spec = get_spec(model_type)
    if not spec.windows:
        raise ValueError(
            f"{model_type} sees one image at a time; windows of views need one of: "
            f"{', '.join(window_model_names())}"
        )
    if views < 1:
        raise ValueError(f"a window needs at least one view, got {views}")
    width, height, check = _checked_arguments(spec, width, height, 1, opset, check)
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    network, weights_info = _load_for_export(spec, weights, random_weights, cache_dir, progress)
    model = spec.family.window_module(spec, network, reference_view, known_cameras).eval()

    shape = (1, views, 3, height, width)
    trace_args, check_args = _window_examples(shape, known_cameras)
    with torch.inference_mode():
        reference = model(*check_args)
    # the window module's class attributes (nn.Module's __getattr__ types them as Tensor)
    names: tuple[str, ...] = tuple(getattr(model, "output_names"))  # noqa: B009
    input_names: tuple[str, ...] = tuple(getattr(model, "input_names"))  # noqa: B009
    opset, ln_nodes, seconds = _write_onnx(
        model,
        trace_args,
        output,
        model_type,
        opset,
        names,
        input_names,
        external_data=spec.family.external_data,
    )
    metadata = _onnx_metadata(
        spec, model, output, shape, tuple(reference[0].shape), opset, ln_nodes, weights_info
    )
    metadata.update(
        _window_metadata(spec, model, reference_view, known_cameras, check_args, reference)
    )
    result = ExportResult(output, _write_sidecar(output, metadata), metadata, seconds)
    if check:
        result.max_rel_diff = _check_window_onnx(model, output, check_args, reference)
    return result


def _window_examples(
    shape: tuple[int, ...], known_cameras: bool
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The inputs to trace a window export with and the other ones to check it with."""
    views, height, width = shape[1], shape[3], shape[4]
    trace_x, check_x = _example_inputs(shape)
    trace_args: tuple[torch.Tensor, ...] = (trace_x,)
    check_args: tuple[torch.Tensor, ...] = (check_x,)
    if known_cameras:
        trace_args += example_cameras(views, height, width, seed=2)
        check_args += example_cameras(views, height, width, seed=3)
    return trace_args, check_args


def _window_metadata(
    spec: ModelSpec,
    model: torch.nn.Module,
    reference_view: str,
    known_cameras: bool,
    check_args: tuple[torch.Tensor, ...],
    reference: tuple[torch.Tensor, ...],
) -> dict[str, Any]:
    """The sidecar's window fields: the input layout, the views, the strategy and the
    inputs' and outputs' shapes."""
    names: tuple[str, ...] = tuple(getattr(model, "output_names"))  # noqa: B009
    input_names: tuple[str, ...] = tuple(getattr(model, "input_names"))  # noqa: B009
    # VGGT's input is RGB in [0, 1] (its network normalises), and it has no strategy
    layout = input_layout(model)
    strategy = reference_view if spec.family.reference_views else NO_REFERENCE
    return {
        "input_layout": f"(1, N, 3, H, W): N views, each {layout}",
        "output_name": names[0],
        "window": {
            "views": int(check_args[0].shape[1]),
            "reference_view": strategy,
            "known_cameras": known_cameras,
            "inputs": {n: list(v.shape) for n, v in zip(input_names, check_args)},
            "outputs": {n: list(v.shape) for n, v in zip(names, reference)},
        },
    }


def _check_window_onnx(
    model: torch.nn.Module,
    output: Path,
    check_args: tuple[torch.Tensor, ...],
    reference: tuple[torch.Tensor, ...],
) -> float:
    """The worst output difference of the written graph against PyTorch on
    ``check_args``, each relative to its largest magnitude.

    Raises:
        ValueError: an output past :data:`WINDOW_CHECK_TOLERANCE`.
    """
    import onnxruntime as ort  # optional dependency: checked by the caller

    names: tuple[str, ...] = tuple(getattr(model, "output_names"))  # noqa: B009
    input_names: tuple[str, ...] = tuple(getattr(model, "input_names"))  # noqa: B009
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    feeds = {n: v.numpy() for n, v in zip(input_names, check_args)}
    found = session.run(list(names), feeds)
    if names[-1] == "reference_view":  # Depth Anything 3: the choice is in the graph
        chosen = int(found[-1].reshape(-1)[0])
        if chosen != int(reference[-1].reshape(-1)[0]):
            check_x = check_args[0]
            reference = _tie_checked(model, check_x, chosen, int(reference[-1][0]), output)
    worst = 0.0
    for name, got, want in zip(names, found, reference):
        want_np = want.numpy().astype("float64")
        scale = max(float(abs(want_np).max()), 1e-12)
        error = float(abs(got.astype("float64") - want_np).max()) / scale
        worst = max(worst, error)
        if not error <= WINDOW_CHECK_TOLERANCE:
            raise ValueError(
                f"{output} was written but its {name} differs from PyTorch's by "
                f"{error:.3g} of its largest magnitude (more than "
                f"{WINDOW_CHECK_TOLERANCE:g}); do not use it"
            )
    return worst


def _tie_checked(
    model: torch.nn.Module, x: torch.Tensor, chosen: int, torch_chosen: int, output: Path
) -> tuple[torch.Tensor, ...]:
    """PyTorch's outputs for the window ``x`` with ``chosen`` as the reference view, when
    the graph chose another view than PyTorch did on the check's input.

    The saddle strategies compare measures of the views' tokens; where those agree to a
    few float32 steps (random weights give near-identical tokens for every view) the
    choice is decided by rounding, which differs between any two kernels. The window
    with the reference chosen is the window reordered with it first under ``first``
    (the layers before the choice see each view alone), its outputs put back in the
    input order: the graph's other outputs must equal that within the tolerance. That a
    graph makes PyTorch's choice on views that tell apart is the tests' part (it is
    computed in the graph: nothing of the traced input is baked in).
    """
    # the network module (and timm) on first use
    from dpt_ros.models.network.depth_anything3 import (
        DepthAnything3Window,
        reference_first_order,
    )

    views = int(x.shape[1])
    order = reference_first_order(torch.tensor([chosen]), views)[0]
    restore = torch.argsort(order)
    first = DepthAnything3Window(getattr(model, "model", model), "first")
    with torch.inference_mode():
        out = first(x[:, order])
    _LOG.warning(
        "%s: on the check's random input the graph took view %d as the reference and "
        "PyTorch view %d (their tokens tie to float32 rounding); its outputs are checked "
        "against PyTorch's with view %d as the reference",
        output.name,
        chosen,
        torch_chosen,
        chosen,
    )
    return (*(v[:, restore] for v in out[:4]), torch.tensor([chosen]))


def example_cameras(
    views: int, height: int, width: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Known cameras for a window export's trace and check: ``camera_from_world``
    (1, views, 4, 4), the first the identity and the others turned about the vertical
    axis by up to 0.2 rad and moved by up to 1, and ``intrinsics`` (1, views, 3, 3)
    with a focal length of about the width and the principal point at the centre."""
    generator = torch.Generator().manual_seed(seed)
    angles = (torch.rand(views, generator=generator) - 0.5) * 0.4
    angles[0] = 0.0
    cos, sin = angles.cos(), angles.sin()
    extrinsics = torch.eye(4).repeat(views, 1, 1)
    extrinsics[:, 0, 0], extrinsics[:, 0, 2] = cos, sin
    extrinsics[:, 2, 0], extrinsics[:, 2, 2] = -sin, cos
    moves = torch.rand(views, 3, generator=generator) * 2 - 1
    moves[0] = 0.0
    extrinsics[:, :3, 3] = moves
    focal = width * (0.9 + 0.2 * torch.rand(views, generator=generator))
    intrinsics = torch.zeros(views, 3, 3)
    intrinsics[:, 0, 0], intrinsics[:, 1, 1] = focal, focal
    intrinsics[:, 0, 2], intrinsics[:, 1, 2], intrinsics[:, 2, 2] = width / 2, height / 2, 1.0
    return extrinsics[None], intrinsics[None]


# --------------------------------------------------------------------------- TensorRT


def _parse_onnx(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    """(network, parser) for ``onnx_path``; ValueError naming the parser's errors.

    The parser owns the weights the network points to: the caller keeps it alive until
    the engine is built.
    """
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # TensorRT 8: explicit batch is opt-in
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    return network, parser


def keep_norms_float32_trt(trt: Any, network: Any, config: Any) -> int:
    """Normalisation layers compute in float32 in an fp16 engine, as the torch path's
    autocast does: each ``NORMALIZATION`` layer (ONNX ``LayerNormalization``) gets a
    float32 precision and output type, and the builder is told to obey them.

    Returns:
        How many layers were constrained.
    """
    norm = getattr(trt.LayerType, "NORMALIZATION", None)  # TensorRT 8.6 and later
    if norm is None:
        return 0
    count = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type == norm:
            layer.precision = trt.float32
            layer.set_output_type(0, trt.float32)
            count += 1
    if count:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    return count


def _progress_monitor(trt: Any) -> Any:
    """A TensorRT progress monitor that logs each build phase (TensorRT 10 and later),
    or None."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _LogPhases(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if parent_phase is None:
                _LOG.warning("TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            _LOG.info("TensorRT build: %s done", phase_name)

    return _LogPhases()


def _builder_config(trt: Any, builder: Any, network: Any, precision: str) -> Any:
    """The builder configuration for ``precision`` (``fp16`` or ``fp32``), logging the
    build's phases."""
    config = builder.create_builder_config()
    monitor = _progress_monitor(trt)
    if monitor is not None:
        config.progress_monitor = monitor
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise ValueError(
                f"TensorRT {trt.__version__} has no FP16 builder flag (strongly "
                "typed networks only); use --precision fp32"
            )
        config.set_flag(trt.BuilderFlag.FP16)
        kept = keep_norms_float32_trt(trt, network, config)
        _LOG.info("TensorRT fp16: %d normalisation layers kept in float32", kept)
    elif hasattr(trt.BuilderFlag, "TF32"):
        # fp32 means fp32: TensorRT would otherwise use TF32 tensor cores (10-bit
        # mantissa) on Ampere and later, 1e-3 off the original instead of 1e-5.
        config.clear_flag(trt.BuilderFlag.TF32)
    return config


def build_tensorrt_engine(
    onnx_path: str | Path, engine_path: str | Path, *, precision: str = "fp16"
) -> ExportResult:
    """Builds a TensorRT engine from an ONNX file of ``export_onnx``, for this machine's GPU.

    Args:
        onnx_path: the ONNX file; its sidecar must be beside it.
        engine_path: the engine to write (replaced if it exists); its sidecar is
            written beside it.
        precision: ``fp16`` (TensorRT may run layers in float16, normalisation layers
            constrained to float32; inputs and outputs stay float32) or ``fp32``.

    Returns:
        The engine, its sidecar and the build time (no check).

    Raises:
        ValueError: TensorRT is not installed, fp16 asked of a TensorRT without the
            FP16 builder flag (11 and later), or the parse or build failed.
    """
    if precision not in ENGINE_PRECISIONS:
        raise ValueError(
            f"unknown engine precision {precision!r}; valid: {', '.join(ENGINE_PRECISIONS)}"
        )
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise ValueError("building a TensorRT engine needs a CUDA GPU; none is available")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path).expanduser()
    metadata = read_sidecar(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # ``parser`` stays referenced until the function returns: it owns the weights.
    network, parser = _parse_onnx(trt, builder, logger, onnx_path)
    config = _builder_config(trt, builder, network, precision)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ValueError(
            f"TensorRT could not build an engine from {onnx_path} (see its messages above)"
        )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    with open(engine_path, "wb") as f:
        f.write(serialized)
    seconds = time.perf_counter() - start
    metadata.update(
        {
            "format": "tensorrt",
            "file": engine_path.name,
            "onnx_file": onnx_path.name,
            "precision": precision,
            "tensorrt": trt.__version__,
            "gpu": torch.cuda.get_device_name(),
        }
    )
    side = _write_sidecar(engine_path, metadata)
    return ExportResult(engine_path, side, metadata, seconds)
