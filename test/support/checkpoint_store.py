"""Deterministic checkpoints on disk within a bound of bytes (the ``det_checkpoint``
fixture): written when asked for, the least recently used removed to make room."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from deterministic_weights import LayoutEntry, deterministic_state_dict

#: The most bytes of deterministic checkpoints on disk at once: the largest is 1.3 GB
#: (dpt_large, depth_anything_3_metric_large), all of them 4.9 GB.
CHECKPOINT_BOUND = 1_500_000_000


class CheckpointStore:
    """Deterministic checkpoints in ``root``, at most about ``bound`` bytes of them: the
    least recently used are removed to make room and written again when asked for
    (seconds each). A file the running test asked for is never removed while it runs; a
    path kept longer (by a module's fixture) is asked for again where it is used."""

    def __init__(
        self,
        root: Path,
        layout: Callable[[str], list[LayoutEntry]],
        bound: int = CHECKPOINT_BOUND,
    ):
        self.root, self.layout, self.bound = root, layout, bound
        self.kept: dict[str, int] = {}  # model type -> bytes, least recently used first
        self.held: set[str] = set()  # asked for by the running test

    def __call__(self, model_type: str) -> Path:
        path = self.root / f"det_{model_type}.pt"
        if model_type in self.kept:
            self.kept[model_type] = self.kept.pop(model_type)
        else:
            layout = self.layout(model_type)
            self._make_room(sum(math.prod(s) * getattr(torch, d).itemsize for _, s, d in layout))
            torch.save(deterministic_state_dict(layout), path)
            self.kept[model_type] = path.stat().st_size
        self.held.add(model_type)
        return path

    def _make_room(self, size: int) -> None:
        for old in [t for t in self.kept if t not in self.held]:
            if sum(self.kept.values()) + size <= self.bound:
                return
            del self.kept[old]
            (self.root / f"det_{old}.pt").unlink()
