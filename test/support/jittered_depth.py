"""A depth predictor whose per-frame scale is known: the flicker that temporal
stabilisation must remove, made to order.

:func:`jitter` wraps a real :class:`~dpt_ros.models.Predictor` so that each frame's raw
depth is multiplied by a factor the frame carries itself, in its top-left pixel's red
value (:func:`marked`): a frame's factor is known whichever path (node, bag, fleet)
carries it, and in whatever order. One pixel changes the network's output far less
than the factors do. A frame whose top-left green value is 255 is a scene cut
(:func:`cut`): its output is turned upside down and left to right, another scene as
far as a fit to the previous frame can tell (random weights see hardly any
difference between images of their own).
"""

from __future__ import annotations

import numpy as np
import torch

from dpt_ros.models import Predictor


def factor_of(red: int) -> float:
    """The depth factor of a frame whose top-left red value is ``red``: 0.5 .. 1.5."""
    return 0.5 + red / 255.0


def marked(rgb: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """(a copy of ``rgb`` carrying ``factor``, the factor as carried: rounded to 1/255)."""
    red = int(round((factor - 0.5) * 255.0))
    out = rgb.copy()
    out[0, 0, 0] = red
    return out, factor_of(red)


def cut(rgb: np.ndarray) -> np.ndarray:
    """A copy of ``rgb`` marked as a scene cut."""
    out = rgb.copy()
    out[0, 0, 1] = 255
    return out


def jitter(predictor: Predictor) -> Predictor:
    """``predictor`` with each frame's raw depth scaled by its :func:`marked` factor,
    and turned round where the frame is a :func:`cut`."""
    plain = predictor.infer_on_device

    def infer_on_device(images: torch.Tensor, *args, **kwargs):
        found = plain(images, *args, **kwargs)  # images: (B, H, W, 3) uint8
        name = "depth" if found.depth is not None else "inverse_depth"
        raw = getattr(found, name)  # (B, h, w) metres or relative inverse depth
        factor = 0.5 + images[:, 0, 0, 0].to(raw.dtype) / 255.0
        turned = (images[:, 0, 0, 1] == 255).view(-1, 1, 1)
        raw = torch.where(turned, raw.flip(-2, -1), raw)
        setattr(found, name, raw * factor.view(-1, 1, 1))
        return found

    predictor.infer_on_device = infer_on_device  # type: ignore[method-assign]
    return predictor


def relative_scales(frames: list[np.ndarray], affine: bool = True) -> np.ndarray:
    """Each frame's scale relative to the first: ``a`` of the least-squares fit
    ``frame ~ a * first + b`` (affine) or ``frame ~ a * first``."""
    first = frames[0].astype(np.float64).ravel()
    out = []
    for frame in frames:
        y = frame.astype(np.float64).ravel()
        keep = np.isfinite(first) & np.isfinite(y)
        if affine:
            out.append(np.polyfit(first[keep], y[keep], 1)[0])
        else:
            out.append(float(y[keep] @ first[keep] / (first[keep] @ first[keep])))
    return np.asarray(out)
