"""``dpt-ros bag --temporal``: the node's temporal stabilisation (``temporal.*``) over a
bag's image topic, with the same defaults and checks
(:class:`~dpt_ros.alignment.temporal.TemporalOptions`). Each bag starts its stream
afresh (``FramePipeline.reset``), so a bag's outputs do not depend on what ran before
it in the same process or fleet worker."""

from __future__ import annotations

import argparse

from dpt_ros.alignment.temporal import TemporalOptions, TemporalStreams
from dpt_ros.options import add_flags, from_flags


def add_arguments(p: argparse._ActionsContainer) -> None:
    """The temporal flags of ``dpt-ros bag``, made from the declarations of
    :class:`TemporalOptions` (the node's ``temporal.*``)."""
    add_flags(p, TemporalOptions)


def options_from_args(args: argparse.Namespace) -> TemporalOptions:
    """The stabilisation the flags ask for; ValueError naming each flag out of range."""
    options: TemporalOptions = from_flags(TemporalOptions, args)
    return options


def streams(options: TemporalOptions) -> TemporalStreams | None:
    """The pipeline's stabiliser for ``options`` (None when off)."""
    return TemporalStreams(options) if options.enabled else None
