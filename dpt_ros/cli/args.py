"""Argument types shared by the ``dpt-ros`` subcommands (no heavy imports here)."""

from __future__ import annotations

import argparse

#: Network input sides are multiples of this (the ViT's patch grid at 1/32 after fusion).
NETWORK_MULTIPLE = 32


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
    from dpt_ros.models.options import network_size_problem

    w, h = image_size(text)
    problem = network_size_problem(w, h)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return w, h
