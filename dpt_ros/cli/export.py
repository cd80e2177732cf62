"""``dpt-ros export``: a DPT model as a fixed-shape ONNX file or TensorRT engine.

The exported graph is the torch network and nothing else: it takes the normalised
float32 (B, 3, H, W) input that ``Predictor`` feeds its model and returns the same
output (depth models: (B, H, W) float32; segmentation models: (B, 150, H, W) float32
logits). Pre- and post-processing stay in torch. Every size is fixed at export time
(no dynamic axes), so a runtime can plan memory and kernels once.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export), the default
since torch 2.9 (the TorchScript exporter is deprecated): it bakes every shape into the
graph, so the input and output shapes in the file are fixed numbers and no Shape/Gather
arithmetic is left for a runtime. It writes ONNX opset 18 at least. LayerNorm is one
``LayerNormalization`` node from opset 17 on, which TensorRT maps to its normalisation
layer instead of elementary ops that can overflow in fp16; the export counts those
nodes and warns if a LayerNorm was split.

A sidecar ``<file>.json`` describes the export (model type, input and output shapes,
mean/std, output kind, opset, versions, weights SHA-256) so that a backend can check
that the file fits the configured model and camera.

``--format tensorrt`` exports the ONNX file, then builds an engine from it with the
``tensorrt`` Python API on this machine's GPU (an engine only runs on the GPU model and
TensorRT version that built it: build it on the robot).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Union

from dpt_ros.cli.args import positive_int

if TYPE_CHECKING:  # torch is imported inside the functions: 'dpt-ros --help' stays fast
    import torch

_LOG = logging.getLogger(__name__)

FORMATS = ("onnx", "tensorrt")
#: Lowest opset the torch.export-based exporter writes; LayerNormalization needs 17.
DEFAULT_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"
#: Largest difference to PyTorch accepted by the check, relative to the output's largest
#: magnitude. Both run float32; their kernels sum in other orders, which moves the output
#: by 1e-6 to 5e-5 of its maximum (about as much as PyTorch's float32 differs from float64).
CHECK_TOLERANCE = 1e-3

_EPILOG = """\
files:
  OUTPUT          the ONNX model (single file) or TensorRT engine
  OUTPUT.json     sidecar: model type, input/output names and shapes, mean/std, output
                  kind, opset, torch/TensorRT versions, weights SHA-256
  tensorrt also keeps the ONNX model it was built from: OUTPUT with suffix .onnx

the graph's input is the normalised image, float32 B x 3 x H x W ((rgb/255 - mean) / std);
its output is the torch model's: B x H x W depth, or B x 150 x H x W logits.

exit status: 0 on success, 2 on an error (one line on stderr, 'dpt-ros: error: ...')."""


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
    metadata: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    max_abs_diff: Optional[float] = None
    max_rel_diff: Optional[float] = None


def _multiple_of_32(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0 or value % 32:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of 32, got {value}")
    return value


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    """Adds the ``export`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        name, help="export a model to ONNX or a TensorRT engine (fixed input size)",
        description=__doc__, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-type", required=True, metavar="NAME",
                   help="model type, e.g. dpt_hybrid or dpt_hybrid_ade20k")
    p.add_argument("--format", choices=FORMATS, default="onnx",
                   help="onnx, or tensorrt (needs TensorRT and a GPU) (default: onnx)")
    p.add_argument("--weights", metavar="PATH",
                   help="weights file (.pt); default: the official checkpoint from the cache "
                        "($DPT_ROS_CACHE or ~/.cache/dpt_ros), downloaded there if missing")
    p.add_argument("--random-weights", action="store_true",
                   help="use random weights instead of a file (testing only: the outputs "
                        "are meaningless)")
    p.add_argument("--width", type=_multiple_of_32, metavar="W",
                   help="network input width in pixels, a multiple of 32 (default: the "
                        "model's, e.g. 384)")
    p.add_argument("--height", type=_multiple_of_32, metavar="H",
                   help="network input height in pixels, a multiple of 32 (default: the "
                        "model's)")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="images per inference (default 1)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset, at least {DEFAULT_OPSET} (default {DEFAULT_OPSET})")
    p.add_argument("--precision", choices=("fp32", "fp16"),
                   help="engine precision: fp16 (default for tensorrt) or fp32; the ONNX "
                        "model itself is always fp32")
    p.add_argument("--output", metavar="PATH",
                   help="output file (default: ./<model_type>_<W>x<H>_b<N>.onnx or .engine)")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=None,
                   help="compare onnxruntime's output with PyTorch's on a random input and "
                        "print the largest difference (default: when onnxruntime is "
                        "installed)")
    return p


def default_output_name(model_type: str, width: int, height: int, batch: int,
                        fmt: str = "onnx") -> str:
    """``<model_type>_<W>x<H>_b<N>.onnx`` (or ``.engine`` for tensorrt)."""
    suffix = ".engine" if fmt == "tensorrt" else ".onnx"
    return f"{model_type}_{width}x{height}_b{batch}{suffix}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
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
        raise ValueError(f"ONNX export needs {' and '.join(missing)}: pip install "
                         f"{' '.join(missing)} (or pip install 'dpt_ros[export]')")


def _write_sidecar(path: Path, metadata: Dict[str, Any]) -> Path:
    from dpt_ros.models.runtimes import sidecar_path

    side = sidecar_path(path)
    side.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return side


def _torch_reference(model: "torch.nn.Module", x: "torch.Tensor") -> Tuple["torch.Tensor", int]:
    """The model's output for ``x`` and how many LayerNorm modules ran."""
    import torch

    calls = [0]

    def count(*_):
        calls[0] += 1

    hooks = [m.register_forward_pre_hook(count) for m in model.modules()
             if isinstance(m, torch.nn.LayerNorm)]
    try:
        with torch.inference_mode():
            out = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return out, calls[0]


def _compare(path: Path, x: "torch.Tensor", reference: "torch.Tensor") -> Tuple[float, float]:
    """Largest absolute and relative difference of onnxruntime (CPU) to ``reference``."""
    from dpt_ros.models.runtimes import OnnxRuntimeModel

    out = OnnxRuntimeModel(path, "cpu")(x)
    diff = float((out - reference).abs().max())
    scale = float(reference.abs().max())
    return diff, diff / scale if scale > 0 else diff


def export_onnx(model_type: str, output: Union[str, Path], *, weights: Optional[str] = None,
                random_weights: bool = False, width: Optional[int] = None,
                height: Optional[int] = None, batch: int = 1, opset: int = DEFAULT_OPSET,
                check: Optional[bool] = None, cache_dir: Optional[str] = None,
                progress: bool = True) -> ExportResult:
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
    import torch

    from dpt_ros import __version__
    from dpt_ros.models import get_spec, load_model
    from dpt_ros.models.runtimes import SIDECAR_VERSION
    from dpt_ros.models.weights.checkpoint import resolve_weights
    from dpt_ros.models.network.std_conv import fold_weight_standardization

    spec = get_spec(model_type)
    width = spec.net_width if width is None else int(width)
    height = spec.net_height if height is None else int(height)
    if width <= 0 or height <= 0 or width % 32 or height % 32:
        raise ValueError(f"network size must be positive multiples of 32, got {width}x{height}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if opset < DEFAULT_OPSET:
        raise ValueError(f"opset {opset} is too low: the torch.export-based ONNX exporter "
                         f"writes opset {DEFAULT_OPSET} or later")
    _require_exporter()
    if check is None:
        check = _onnxruntime_available()
    elif check and not _onnxruntime_available():
        raise ValueError("--check needs onnxruntime: pip install onnxruntime "
                         "(or pip install 'dpt_ros[export]'), or use --no-check")
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)

    if random_weights:
        weights_info: Dict[str, Any] = {"random": True}
        model = load_model(model_type, weights, random_weights=True)
    else:
        path = resolve_weights(spec, weights, cache_dir, progress)
        model = load_model(model_type, path)
        weights_info = {"file": path.name, "sha256": _sha256(path)}
    model.eval()

    shape = (batch, 3, height, width)
    generator = torch.Generator().manual_seed(0)
    # Inputs like normalised images ((rgb - 0.5) / 0.5 lies in [-1, 1]); the check uses
    # another input than the trace, so values baked into the graph would show.
    trace_x = torch.rand(shape, generator=generator) * 2 - 1
    check_x = torch.rand(shape, generator=generator) * 2 - 1
    reference, layer_norms = _torch_reference(model, check_x)
    # The hybrid's weight standardisation becomes constant, standardised weights in the
    # graph, computed by the eager model's own function (the check below compares with
    # the eager model as loaded): the same numbers, and plain convolutions for TensorRT.
    fold_weight_standardization(model)

    start = time.perf_counter()
    program = torch.onnx.export(model, (trace_x,), dynamo=True, opset_version=opset,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                optimize=True, verbose=False)
    written_opset = program.model.opset_imports.get("", 0)
    if written_opset != opset:
        raise ValueError(f"the exporter cannot write opset {opset} for {model_type} (it "
                         f"made opset {written_opset}); use --opset {written_opset}")
    ln_nodes = sum(1 for node in program.model.graph
                   if node.op_type == "LayerNormalization" and node.domain in ("", "ai.onnx"))
    # One file: the largest model (dpt_large, 1.4 GB) is below protobuf's 2 GB limit.
    program.save(str(output), external_data=False)
    seconds = time.perf_counter() - start
    del program

    if ln_nodes != layer_norms:
        _LOG.warning("%s: %d LayerNorm calls became %d LayerNormalization nodes; the others "
                     "were split into elementary ops (slower, and less accurate in fp16)",
                     output.name, layer_norms, ln_nodes)
    metadata: Dict[str, Any] = {
        "sidecar_version": SIDECAR_VERSION,
        "format": "onnx",
        "file": output.name,
        "model_type": model_type,
        "task": spec.task,
        "output_kind": spec.output,
        "input_name": INPUT_NAME,
        "input_shape": list(shape),
        "input_dtype": "float32",
        "input_layout": "NCHW, (rgb / 255 - mean) / std",
        "mean": list(spec.mean),
        "std": list(spec.std),
        "output_name": OUTPUT_NAME,
        "output_shape": list(reference.shape),
        "output_dtype": "float32",
        "num_classes": spec.num_classes,
        "opset": written_opset,
        "layer_norm_nodes": ln_nodes,
        "precision": "fp32",
        "weights": weights_info,
        "torch": torch.__version__,
        "dpt_ros": __version__,
    }
    side = _write_sidecar(output, metadata)
    result = ExportResult(output, side, metadata, seconds)
    if check:
        result.max_abs_diff, result.max_rel_diff = _compare(output, check_x, reference)
        if not result.max_rel_diff <= CHECK_TOLERANCE:
            raise ValueError(f"{output} was written but its output differs from PyTorch's by "
                             f"{result.max_abs_diff:.3g} ({result.max_rel_diff:.3g} of the "
                             f"output's largest magnitude, more than {CHECK_TOLERANCE:g}); "
                             "do not use it")
    return result


def build_tensorrt_engine(onnx_path: Union[str, Path], engine_path: Union[str, Path], *,
                          precision: str = "fp16") -> ExportResult:
    """Builds a TensorRT engine from an ONNX file of ``export_onnx``, for this machine's GPU.

    Args:
        onnx_path: the ONNX file; its sidecar must be beside it.
        engine_path: the engine to write (replaced if it exists); its sidecar is
            written beside it.
        precision: ``fp16`` (TensorRT may run layers in float16; inputs and outputs
            stay float32) or ``fp32``.

    Returns:
        The engine, its sidecar and the build time (no check).

    Raises:
        ValueError: TensorRT is not installed, fp16 asked of a TensorRT without the
            FP16 builder flag (11 and later), or the parse or build failed.
    """
    import torch

    from dpt_ros.models.runtimes import import_tensorrt, read_sidecar

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"unknown engine precision {precision!r}; valid: fp32, fp16")
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise ValueError("building a TensorRT engine needs a CUDA GPU; none is available")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path).expanduser()
    metadata = read_sidecar(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # TensorRT 8: explicit batch is opt-in
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise ValueError(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly "
                             "typed networks only); use --precision fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    elif hasattr(trt.BuilderFlag, "TF32"):
        # fp32 means fp32: TensorRT would otherwise use TF32 tensor cores (10-bit
        # mantissa) on Ampere and later, 1e-3 off the original instead of 1e-5.
        config.clear_flag(trt.BuilderFlag.TF32)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ValueError(f"TensorRT could not build an engine from {onnx_path} (see its "
                         "messages above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    with open(engine_path, "wb") as f:
        f.write(serialized)
    seconds = time.perf_counter() - start
    metadata.update({
        "format": "tensorrt",
        "file": engine_path.name,
        "onnx_file": onnx_path.name,
        "precision": precision,
        "tensorrt": trt.__version__,
        "gpu": torch.cuda.get_device_name(),
    })
    side = _write_sidecar(engine_path, metadata)
    return ExportResult(engine_path, side, metadata, seconds)


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def run(args: argparse.Namespace) -> int:
    from dpt_ros.models import get_spec

    spec = get_spec(args.model_type)
    precision = args.precision or ("fp16" if args.format == "tensorrt" else "fp32")
    if args.format == "onnx" and precision != "fp32":
        raise ValueError("--precision fp16 applies to TensorRT engines; the ONNX model is "
                         "exported in fp32 (use --format tensorrt, or leave --precision out)")
    if args.format == "tensorrt":
        from dpt_ros.models.runtimes import import_tensorrt

        import_tensorrt()  # before the export: fail fast without TensorRT
    width = args.width or spec.net_width
    height = args.height or spec.net_height
    output = Path(args.output or default_output_name(args.model_type, width, height,
                                                     args.batch, args.format))
    onnx_path = output if args.format == "onnx" else output.with_suffix(".onnx")
    if onnx_path == output and args.format == "tensorrt":
        raise ValueError(f"the engine cannot be named {output}: that is the name of the "
                         "ONNX model it is built from (use .engine)")

    result = export_onnx(args.model_type, onnx_path, weights=args.weights,
                         random_weights=args.random_weights, width=width, height=height,
                         batch=args.batch, opset=args.opset, check=args.check)
    meta = result.metadata
    print(f"{result.path}: {args.model_type}, input {'x'.join(map(str, meta['input_shape']))} "
          f"float32, output {'x'.join(map(str, meta['output_shape']))}, opset {meta['opset']}, "
          f"{meta['layer_norm_nodes']} LayerNormalization nodes, {_mb(result.path)}, "
          f"exported in {result.seconds:.1f} s")
    if result.max_abs_diff is not None:
        print(f"check: onnxruntime vs PyTorch on a random input: max abs diff "
              f"{result.max_abs_diff:.3g}, max rel diff {result.max_rel_diff:.3g} (of the "
              "output's largest magnitude)")
    elif args.check is None:
        print("check: skipped, onnxruntime is not installed (pip install onnxruntime)")
    sidecars = [result.sidecar]
    if args.format == "tensorrt":
        engine = build_tensorrt_engine(onnx_path, output, precision=precision)
        print(f"{engine.path}: TensorRT {engine.metadata['tensorrt']} engine, {precision}, "
              f"for {engine.metadata['gpu']}, {_mb(engine.path)}, built in "
              f"{engine.seconds:.1f} s")
        sidecars.append(engine.sidecar)
    print("sidecar: " + ", ".join(str(s) for s in sidecars))
    return 0
