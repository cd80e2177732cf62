"""The node's warm-up: one pass per set of CPU kernels, every model's engine prepared."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from dpt_ros.models import Predictor
from dpt_ros.models.errors import RandomWeightsWarning
from dpt_ros.node.models import warm_up


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, line: str) -> None:
        self.lines.append(line)


def _predictor(model_type: str, network: tuple[int, int] = (64, 64)) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return Predictor(
            model_type, device="cpu", backend="torch", random_weights=True, network_size=network
        )


@pytest.fixture(scope="module")
def hybrid_pair():
    return _predictor("dpt_hybrid"), _predictor("dpt_hybrid_ade20k")


def test_a_second_cpu_model_on_the_same_backbone_is_not_run_again(hybrid_pair, monkeypatch):
    """The demo's pair on the CPU: dpt_hybrid's pass set up the kernels both networks
    use; dpt_hybrid_ade20k's own pass cost a whole frame of the start (seconds on 2
    cores) and saved nothing measurable on its first frame."""
    depth, segmentation = hybrid_pair
    runs: list[str] = []
    real = Predictor.infer_on_device

    def counted(self, *args, **kwargs):
        runs.append(self.spec.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "infer_on_device", counted)
    log = _Lines()
    cfg = SimpleNamespace(warmup_width=64, warmup_height=48, cameras=[])
    warm_up(SimpleNamespace(depth=depth, segmentation=segmentation), cfg, log)
    assert runs == ["dpt_hybrid"]
    assert any(
        line.startswith("dpt_hybrid_ade20k: no warm-up pass of its own for 64x48 images")
        and "dpt_hybrid's" in line
        for line in log.lines
    ), log.lines
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    assert segmentation.predict(rgb).shape == (48, 64)  # and it runs as it is


def test_models_on_other_sizes_are_each_warmed_up(hybrid_pair, monkeypatch):
    depth, _ = hybrid_pair
    other = _predictor("dpt_hybrid_ade20k", (96, 96))  # another input: other kernels
    runs: list[str] = []
    real = Predictor.infer_on_device

    def counted(self, *args, **kwargs):
        runs.append(self.spec.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "infer_on_device", counted)
    cfg = SimpleNamespace(warmup_width=64, warmup_height=48, cameras=[])
    warm_up(SimpleNamespace(depth=depth, segmentation=other), cfg, _Lines())
    assert runs == ["dpt_hybrid", "dpt_hybrid_ade20k"]
