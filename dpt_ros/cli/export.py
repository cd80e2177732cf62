"""``dpt-ros export``: a model as a fixed-shape ONNX file or TensorRT engine.

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
import sys
from pathlib import Path

from dpt_ros.cli.args import network_size, positive_int
from dpt_ros.models.registry import ModelSpec, get_spec
from dpt_ros.options import add_flags, from_flags
from dpt_ros.runtime.export import (
    DEFAULT_OPSET,
    ExportOptions,
    ExportResult,
    build_tensorrt_engine,
    default_output_name,
    export_onnx,
)
from dpt_ros.runtime.runtimes import import_tensorrt

#: Printed when the deprecated --width/--height are used (they go in the next release).
DEPRECATION_NOTE = "dpt-ros: note: --width/--height are deprecated, use --network-size WxH"

_EPILOG = """\
files:
  OUTPUT          the ONNX model (single file) or TensorRT engine
  OUTPUT.json     sidecar: model type, input/output names and shapes, mean/std, output
                  kind, opset, torch/TensorRT versions, weights SHA-256
  tensorrt also keeps the ONNX model it was built from: OUTPUT with suffix .onnx

the graph's input is the normalised image, float32 B x 3 x H x W ((rgb/255 - mean) / std);
its output is the torch model's: B x H x W depth, or B x 150 x H x W logits. The network
size (W x H) and the batch (B) are fixed in the file: export one per size and batch.

examples:
  dpt-ros export --model-type dpt_hybrid --network-size 512x384 --output hybrid.onnx
  dpt-ros export --model-type dpt_hybrid --network-size 512x384 --format tensorrt

--width W --height H still work in place of --network-size WxH but are deprecated (a
note on stderr); they go in the next release.

exit status: 0 on success, 2 on an error (one line on stderr, 'dpt-ros: error: ...')."""


class _SizeAction(argparse.Action):
    """Stores --network-size or a deprecated --width/--height; both kinds at once is a
    usage error (whichever comes second is the one refused)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if self.dest == "network_size":
            clash = [
                name for name in ("width", "height") if getattr(namespace, name, None) is not None
            ]
            other = "/".join(f"--{name}" for name in clash)
        else:
            clash = ["network_size"] if getattr(namespace, "network_size", None) is not None else []
            other = "--network-size"
        if clash:
            raise argparse.ArgumentError(self, f"not allowed with {other}")
        setattr(namespace, self.dest, values)


def add_parser(subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """Adds the ``export`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        name,
        help=help,
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_model_arguments(p)
    _add_file_arguments(p)
    return p


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """What is exported: model type, weights, network size, batch."""
    p.add_argument(
        "--model-type",
        required=True,
        metavar="NAME",
        help="model type, e.g. dpt_hybrid or dpt_hybrid_ade20k",
    )
    add_flags(p, ExportOptions, ["format"])
    p.add_argument(
        "--weights",
        metavar="PATH",
        help="weights file (.pt) or transformers save_pretrained folder; default: the "
        "official checkpoint from the cache "
        "($DPT_ROS_CACHE or ~/.cache/dpt_ros), downloaded there if missing",
    )
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="use random weights instead of a file (testing only: the outputs are meaningless)",
    )
    p.add_argument(
        "--network-size",
        type=network_size,
        action=_SizeAction,
        metavar="WxH",
        help="network input size in pixels, multiples of 32, fixed in the file "
        "(default: the model's, e.g. 384x384)",
    )
    p.add_argument(
        "--width",
        type=positive_int,
        action=_SizeAction,
        metavar="W",
        help="deprecated: use --network-size WxH",
    )
    p.add_argument(
        "--height",
        type=positive_int,
        action=_SizeAction,
        metavar="H",
        help="deprecated: use --network-size WxH",
    )
    p.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help="images per inference (default 1)",
    )


def _add_file_arguments(p: argparse.ArgumentParser) -> None:
    """How it is written: opset, engine precision, output file, check."""
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"ONNX opset, at least {DEFAULT_OPSET} (default {DEFAULT_OPSET})",
    )
    add_flags(p, ExportOptions, ["precision"])
    p.add_argument(
        "--output",
        metavar="PATH",
        help="output file (default: ./<model_type>_<W>x<H>_b<N>.onnx or .engine)",
    )
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compare onnxruntime's output with PyTorch's on a random input and "
        "print the largest difference (default: when onnxruntime is "
        "installed)",
    )


def _network_size(args: argparse.Namespace, spec: ModelSpec) -> tuple[int, int]:
    """(width, height) from --network-size, the deprecated --width/--height (with a note
    on stderr), or the model's own; ValueError if the aliases give an invalid size."""
    if args.network_size is not None:
        width, height = args.network_size
    elif args.width is None and args.height is None:
        return spec.net_width, spec.net_height
    else:
        print(DEPRECATION_NOTE, file=sys.stderr)
        width = spec.net_width if args.width is None else args.width
        height = spec.net_height if args.height is None else args.height
    problem = spec.network_size_problem(width, height)
    if problem:
        raise ValueError(problem)
    return width, height


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def _print_onnx(args: argparse.Namespace, result: ExportResult) -> None:
    meta = result.metadata
    print(
        f"{result.path}: {args.model_type}, input {'x'.join(map(str, meta['input_shape']))} "
        f"float32, output {'x'.join(map(str, meta['output_shape']))}, opset {meta['opset']}, "
        f"{meta['layer_norm_nodes']} LayerNormalization nodes, {_mb(result.path)}, "
        f"exported in {result.seconds:.1f} s"
    )
    if result.max_abs_diff is not None:
        print(
            f"check: onnxruntime vs PyTorch on a random input: max abs diff "
            f"{result.max_abs_diff:.3g}, max rel diff {result.max_rel_diff:.3g} (of the "
            "output's largest magnitude)"
        )
    elif args.check is None:
        print("check: skipped, onnxruntime is not installed (pip install onnxruntime)")


def run(args: argparse.Namespace) -> int:

    spec = get_spec(args.model_type)
    width, height = _network_size(args, spec)
    # ValueError for fp16 asked of an ONNX model.
    precision = from_flags(ExportOptions, args).engine_precision
    if args.format == "tensorrt":
        import_tensorrt()  # before the export: fail fast without TensorRT
    output = Path(
        args.output or default_output_name(args.model_type, width, height, args.batch, args.format)
    )
    onnx_path = output if args.format == "onnx" else output.with_suffix(".onnx")
    if onnx_path == output and args.format == "tensorrt":
        raise ValueError(
            f"the engine cannot be named {output}: that is the name of the "
            "ONNX model it is built from (use .engine)"
        )

    result = export_onnx(
        args.model_type,
        onnx_path,
        weights=args.weights,
        random_weights=args.random_weights,
        width=width,
        height=height,
        batch=args.batch,
        opset=args.opset,
        check=args.check,
    )
    _print_onnx(args, result)
    sidecars = [result.sidecar]
    if args.format == "tensorrt":
        engine = build_tensorrt_engine(onnx_path, output, precision=precision)
        print(
            f"{engine.path}: TensorRT {engine.metadata['tensorrt']} engine, {precision}, "
            f"for {engine.metadata['gpu']}, {_mb(engine.path)}, built in "
            f"{engine.seconds:.1f} s"
        )
        sidecars.append(engine.sidecar)
    print("sidecar: " + ", ".join(str(s) for s in sidecars))
    return 0
