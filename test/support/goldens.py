"""What the original implementations computed, and how a result is compared with it.

Every golden travels with the code in compact form (``test/fixtures/compact``): for each
array ``A``, 4,000 values at sampled positions (``A__index``, ``A__value``) plus the full
array's shape, mean and standard deviation. The random test networks are chaotic, so a
deviation anywhere shows at nearly every sampled position. Where the full goldens are
present (``../shared/fixtures``), :attr:`Golden.full` holds the complete arrays too and
the comparisons below also run on every element.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The project's own fidelity fixtures (keys/, compact/, scene_a.png): travel with the code.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def shared_fixtures_dir() -> Path | None:
    """The full fixtures beside the repository (``../shared/fixtures``, or
    ``$DPT_ROS_FIXTURES``), or None where they are absent."""
    env = os.environ.get("DPT_ROS_FIXTURES")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "fixtures"
    return path if (path / "dpt").is_dir() else None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


class Golden:
    """One model's golden on one image.

    Args:
        compact: the arrays of ``<model>_scene_a.compact.npz``.
        full: the arrays of the full golden ``golden_<model>_scene_a.npz``, or None.
    """

    def __init__(
        self, compact: dict[str, np.ndarray], full: dict[str, np.ndarray] | None = None
    ) -> None:
        self.compact = compact
        self.full = full

    @classmethod
    def load(cls, compact_path: Path, full_path: Path | None = None) -> Golden:
        full = _load_npz(full_path) if full_path is not None and full_path.is_file() else None
        return cls(_load_npz(compact_path), full)

    def shape(self, name: str) -> tuple[int, ...]:
        """The full array's shape."""
        return tuple(int(d) for d in self.compact[f"{name}__shape"])

    def samples(self, name: str) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """(index tuple, values): the sampled positions of ``name`` and its values there."""
        index = self.compact[f"{name}__index"]
        return tuple(index.T.astype(np.int64)), self.compact[f"{name}__value"]

    def raw(self, name: str) -> np.ndarray:
        """An entry stored as it is (``logit_index``, ``logit_value``, ``input_size``)."""
        return self.compact[name]

    def relative_error(self, name: str, got: np.ndarray) -> float:
        """Largest |got - golden| relative to the golden's largest magnitude.

        At the sampled positions, and on the mean and standard deviation of the whole
        array; on every element where the full golden is present.
        """
        got = np.asarray(got)
        assert got.shape == self.shape(name), (name, got.shape, self.shape(name))
        index, want = self.samples(name)
        want = want.astype(np.float64)
        scale = float(np.abs(want).max())
        errors = [
            np.abs(got[index].astype(np.float64) - want).max(),
            abs(float(got.mean(dtype=np.float64)) - float(self.compact[f"{name}__mean"])),
            abs(float(got.std(dtype=np.float64)) - float(self.compact[f"{name}__std"])),
        ]
        if self.full is not None:
            full = self.full[name].astype(np.float64)
            scale = float(np.abs(full).max())
            errors.append(np.abs(got.astype(np.float64) - full).max())
        return float(max(errors) / scale)

    def agreement(self, name: str, got: np.ndarray) -> float:
        """Share of positions where integer ``got`` equals the golden (labels, argmax):
        the sampled ones, or all where the full golden is present."""
        got = np.asarray(got)
        assert got.shape == self.shape(name), (name, got.shape, self.shape(name))
        if self.full is not None:
            return float(np.mean(got == self.full[name]))
        index, want = self.samples(name)
        return float(np.mean(got[index] == want))
