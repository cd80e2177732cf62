"""``dpt-ros bag --temporal``: the node's temporal stabilisation (``temporal.*``) over a
bag's image topic, with the same defaults and checks
(:class:`~dpt_ros.alignment.temporal.TemporalOptions`). Each bag starts its stream
afresh (``FramePipeline.reset``), so a bag's outputs do not depend on what ran before
it in the same process or fleet worker."""

from __future__ import annotations

import argparse

from dpt_ros.alignment.temporal import TemporalOptions, TemporalStreams

#: flag -> (options field, help text).
_FLAGS = {
    "--temporal-smoothing": (
        "smoothing",
        "least weight of a new frame in the tracker (while moving), 0.01..1",
    ),
    "--temporal-min-inliers": ("min_inliers", "share of sampled pixels a fit needs, 0..1"),
    "--temporal-max-residual": ("max_residual", "largest median relative residual of a fit"),
    "--temporal-reset-after": ("reset_after", "s between stamps beyond which it restarts"),
}


def add_arguments(p: argparse._ActionsContainer) -> None:
    """The temporal flags of ``dpt-ros bag`` (the node's ``temporal.*``)."""
    d = TemporalOptions()
    p.add_argument(
        "--temporal",
        action="store_true",
        help="stabilise depth over time before alignment, as the node's temporal.enabled "
        "(relative models: affine in inverse depth; metric: a scale)",
    )
    for flag, (field, text) in _FLAGS.items():
        default = getattr(d, field)
        p.add_argument(flag, type=float, default=default, help=f"{text} (default {default})")


def options_from_args(args: argparse.Namespace) -> TemporalOptions:
    """The stabilisation the flags ask for; ValueError naming each flag out of range."""
    fields = {field: getattr(args, _dest(flag)) for flag, (field, _) in _FLAGS.items()}
    options = TemporalOptions(enabled=args.temporal, **fields)
    flags = {field: flag for flag, (field, _) in _FLAGS.items()}
    problems = [
        f"{flags[field]}={fields[field]} is outside {lo}..{hi}"
        for field in options.out_of_range()
        for lo, hi in [TemporalOptions.RANGES[field]]
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return options


def streams(options: TemporalOptions) -> TemporalStreams | None:
    """The pipeline's stabiliser for ``options`` (None when off)."""
    return TemporalStreams(options) if options.enabled else None


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")
