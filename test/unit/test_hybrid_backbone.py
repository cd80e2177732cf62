"""DPT-Hybrid's timm backbone is built without timm's probe run of the ResNet, and is
the same model, with the same random weights for a seed, as ``timm.create_model``."""

from __future__ import annotations

from typing import Any

import timm
import torch
from timm.models.resnetv2 import ResNetV2

from dpt_ros.models import get_spec
from dpt_ros.models.network import encoder
from dpt_ros.models.network.build import build_network
from dpt_ros.models.network.hybrid import HYBRID_TIMM_NAME, create_hybrid_vit


def _seeded(build: Any) -> tuple[Any, torch.Tensor]:
    """``build()`` from seed 0, and the next draws of the global generator after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build()
        return model, torch.rand(4)


def test_the_hybrid_build_does_not_run_the_resnet(monkeypatch):
    """timm's HybridEmbed ran the ResNet on a 384x384 image to learn its output size:
    about 3 CPU-seconds of each dpt_hybrid* start with random weights."""
    runs = []
    real_forward = ResNetV2.forward

    def counted(self, x):
        runs.append(tuple(x.shape))
        return real_forward(self, x)

    monkeypatch.setattr(ResNetV2, "forward", counted)
    build_network(get_spec("dpt_hybrid"))
    assert runs == []


def test_the_hybrid_vit_is_timm_s_model_with_the_same_weights():
    ours, after_ours = _seeded(create_hybrid_vit)
    timms, after_timm = _seeded(lambda: timm.create_model(HYBRID_TIMM_NAME, pretrained=False))
    mine, theirs = ours.state_dict(), timms.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert torch.equal(after_ours, after_timm)  # the generator drawn from in the same order
    for name in ("img_size", "patch_size", "feature_ratio", "feature_dim", "grid_size"):
        assert getattr(ours.patch_embed, name) == getattr(timms.patch_embed, name), name
    assert tuple(ours.patch_embed.feature_size) == tuple(timms.patch_embed.feature_size)
    assert ours.pretrained_cfg == timms.pretrained_cfg


def test_random_weights_and_outputs_are_those_of_the_timm_build(monkeypatch):
    spec = get_spec("dpt_hybrid")
    ours, _ = _seeded(lambda: build_network(spec))
    monkeypatch.setattr(
        encoder, "create_hybrid_vit", lambda: timm.create_model(HYBRID_TIMM_NAME, pretrained=False)
    )
    timms, _ = _seeded(lambda: build_network(spec))
    mine, theirs = ours.state_dict(), timms.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(ours(x), timms(x))
