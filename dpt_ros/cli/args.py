"""Argument types and flags shared by the ``dpt-ros`` subcommands (no heavy imports
here: ``dpt_ros.models.options`` imports no torch)."""

from __future__ import annotations

import argparse

from dpt_ros.models.options import (
    BACKENDS,
    COMPILE_MODES,
    ENGINE_BUILDS,
    PRECISIONS,
    PredictorOptions,
    network_size_problem,
)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """argparse type: ``WxH`` -> (width, height), both positive."""
    try:
        w_text, h_text = text.lower().split("x")
        w, h = int(w_text), int(h_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT such as 640x480, got {text!r}"
        ) from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {w}x{h}")
    return w, h


def network_size(text: str) -> tuple[int, int]:
    """argparse type: ``WxH`` -> (width, height), positive multiples of 32."""
    w, h = image_size(text)
    problem = network_size_problem(w, h)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return w, h


def add_predictor_arguments(parser: argparse.ArgumentParser, *, compile: bool = True) -> None:
    """Adds ``--device``, ``--precision``, ``--network-size``, ``--backend``,
    ``--engine-build`` and, with ``compile``, ``--compile`` to a command's parser. Model
    type, weights and engine file flags are the command's own (one model, or one per
    task)."""
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="auto (CUDA if available), cpu, cuda or cuda:N (default: auto)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto = fp16 on CUDA, fp32 on the CPU (default: auto)",
    )
    parser.add_argument(
        "--network-size",
        type=network_size,
        metavar="WxH",
        help="network input size, multiples of 32, around which images "
        "are resized keeping their aspect ratio (default: the "
        "model's)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="auto = tensorrt on CUDA where it is installed, else onnxruntime (fp32) "
        "where installed, else torch; onnxruntime / tensorrt run an engine from "
        "'dpt-ros export' or build one per network size once into "
        "$DPT_ROS_CACHE/engines (default: auto)",
    )
    parser.add_argument(
        "--engine-build",
        default="eager",
        choices=ENGINE_BUILDS,
        help="when an engine missing from the cache is built: eager = at start, "
        "lazy = in the background (torch runs meanwhile), never = use cached "
        "engines only (default: eager)",
    )
    if compile:
        parser.add_argument(
            "--compile",
            default="none",
            choices=COMPILE_MODES,
            help="torch.compile mode (torch backend; default: none)",
        )


def options_from_flags(
    args: argparse.Namespace,
    model_type: str,
    *,
    weights: str | None = None,
    engine: str | None = None,
    random_weights: bool = False,
) -> PredictorOptions:
    """Options from the flags of :func:`add_predictor_arguments` plus the command's own."""
    return PredictorOptions(
        model_type=model_type,
        weights=weights or None,
        random_weights=random_weights,
        device=args.device,
        precision=args.precision,
        network_size=args.network_size,
        backend=args.backend,
        engine=engine or None,
        engine_build=getattr(args, "engine_build", "eager"),
        compile=getattr(args, "compile", "none"),
    )
