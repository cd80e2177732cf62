"""Shared test set-up."""

from __future__ import annotations

import gc
import itertools

import torch


def free() -> None:
    gc.collect()


def cheap_model(cls, **kwargs) -> torch.nn.Module:
    """``cls(**kwargs)`` with small seeded weights, skipping the slow default initialisation."""
    with torch.device("meta"):
        model = cls(**kwargs)
    model = model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in itertools.chain(model.named_parameters(), model.named_buffers()):
            if not t.is_floating_point():
                t.zero_()
            elif name.endswith("running_var"):
                t.fill_(1.0)
            else:
                t.normal_(0.0, 0.02, generator=gen)
    return model.eval()
