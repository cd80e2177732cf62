"""Argument types and flags shared by the ``dpt-ros`` subcommands (no heavy imports
here: ``dpt_ros.models.options`` imports no torch)."""

from __future__ import annotations

import argparse
import sys

from dpt_ros.models.options import ENGINE_BUILDS, PredictorOptions
from dpt_ros.node.options import NodeOptions
from dpt_ros.options import add_flags, declared, flag_help


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _int_at_least(text, 0)


def add_max_input_pixels_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-input-pixels N``: dpt_node's ``max_input_pixels`` parameter, with the
    default, range and help of its one declaration
    (:class:`~dpt_ros.node.options.NodeOptions`). The commands read the value directly,
    so argparse refuses one outside the range."""
    field, spec = declared(NodeOptions)["max_input_pixels"]
    assert spec.range is not None
    lowest, highest = int(spec.range[0]), int(spec.range[1])

    def pixels(text: str) -> int:
        value = _int_at_least(text, lowest)
        if value > highest:
            raise argparse.ArgumentTypeError(f"must be at most {highest}, got {value}")
        return value

    parser.add_argument(
        spec.flag,
        type=pixels,
        default=field.default,
        metavar=spec.metavar,
        help=flag_help(spec, field.default),
    )


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
    """argparse type: ``WxH`` -> (width, height), positive; whether they are multiples of
    the model's granularity (32 or 14) is checked with the model type."""
    return image_size(text)


def add_predictor_arguments(
    parser: argparse.ArgumentParser,
    *,
    compile: bool = True,
    engine_build_auto: bool = False,
    job_unit: str = "image",
) -> None:
    """Adds ``--device``, ``--precision``, ``--network-size``, ``--backend``,
    ``--engine-build`` and, with ``compile``, ``--compile`` to a command's parser. Model
    type, weights and engine file flags are the command's own (one model, or one per
    task). With ``engine_build_auto`` (a one-shot job of known length),
    ``--engine-build`` also takes ``auto``, its default: the command builds an engine
    only where the build pays off over its frames; ``job_unit``: what the job runs one
    at a time, for its help (an image, a window)."""
    add_flags(parser, PredictorOptions, ["device", "precision"])
    parser.add_argument(
        "--network-size",
        type=network_size,
        metavar="WxH",
        help="network input size around which images are resized keeping their "
        "aspect ratio: multiples of 32 for DPT, of 14 for Depth Anything V2 (NxN is the "
        "original's input_size N) and Depth Anything 3 (the larger side is its process_res) "
        "(default: the model's; 518 for Depth Anything V2, 504 for Depth Anything 3)",
    )
    add_flags(parser, PredictorOptions, ["backend"])
    auto_help = (
        f"{AUTO_BUILD} = only where the build takes less time than the engine saves over "
        f"the {job_unit}s (PyTorch timed on the first {job_unit}; build time from earlier builds in "
        "the cache, else estimated), "
        if engine_build_auto
        else ""
    )
    default_build = AUTO_BUILD if engine_build_auto else "eager"
    parser.add_argument(
        "--engine-build",
        default=default_build,
        choices=((AUTO_BUILD,) if engine_build_auto else ()) + ENGINE_BUILDS,
        help=f"when an engine missing from the cache is built: {auto_help}eager = at start, "
        "lazy = in the background (torch runs meanwhile), never = use cached "
        f"engines only (default: {default_build})",
    )
    if compile:
        add_flags(parser, PredictorOptions, ["compile"])


#: ``--engine-build`` of a one-shot command: build only where it pays off over the job.
AUTO_BUILD = "auto"


def say_backend(text: str) -> None:
    """A one-shot command's backend line (what runs and why, :data:`AUTO_BUILD`):
    stderr, apart from the results on stdout."""
    print(f"dpt-ros: backend: {text}", file=sys.stderr, flush=True)


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
