"""A VGGT file under a Depth Anything 3 type and the reverse: refused, naming what the
file holds (its family's key groups) and the type to use, whether the file matches a
type exactly or not; through the loader that predict, reconstruct and the node share
(tiny state dicts and meta tensors: no weights are made)."""

from __future__ import annotations

import re

import pytest
import torch
from cli_cases import run
from safetensors.torch import save_file

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.registry import get_spec
from dpt_ros.models.weights.checkpoint import check_state_dict, file_keys, load_model

_VGGT_HOLDS = "holds VGGT weights (aggregator.*, camera_head.*)"
_DA3_HOLDS = "holds Depth Anything 3 weights (model.backbone.pretrained.*, model.head.*)"
_DA3_TYPES = (
    "one of depth_anything_3_small, depth_anything_3_base, depth_anything_3_large, "
    "depth_anything_3_mono_large, depth_anything_3_metric_large"
)


def _tiny_vggt() -> dict[str, torch.Tensor]:
    """A few of VGGT's keys, with an official file's track head (not any type's layout)."""
    return {
        "aggregator.frame_blocks.0.norm1.weight": torch.ones(4),
        "aggregator.global_blocks.0.norm1.weight": torch.ones(4),
        "camera_head.trunk.0.norm1.weight": torch.ones(4),
        "depth_head.scratch.layer1_rn.weight": torch.ones(4),
        "track_head.feature_extractor.norm.weight": torch.ones(4),
    }


def _tiny_da3() -> dict[str, torch.Tensor]:
    """A few of Depth Anything 3's keys, bare (as DepthAnything3.state_dict() gives)."""
    return {
        "backbone.pretrained.cls_token": torch.ones(1, 1, 4),
        "backbone.pretrained.blocks.0.norm1.weight": torch.ones(4),
        "head.scratch.layer1_rn.weight": torch.ones(4),
        "cam_dec.backbone.0.weight": torch.ones(4),
    }


def _meta(key_spec, name: str) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, dtype=getattr(torch, d), device="meta") for k, s, d in key_spec(name)}


def _check(state: dict[str, torch.Tensor], model_type: str) -> str:
    with pytest.raises(CheckpointError) as info:
        check_state_dict(file_keys(state), get_spec(model_type), "weights.pt")
    return str(info.value)


@pytest.mark.parametrize(
    "model_type",
    ["depth_anything_3_small", "depth_anything_3_large", "depth_anything_3_metric_large"],
)
def test_a_vggt_file_under_a_da3_type_is_named(model_type):
    msg = _check(_tiny_vggt(), model_type)
    assert msg.startswith(f"weights.pt {_VGGT_HOLDS}, not {model_type}'s: use --model-type vggt_1b")


def test_a_da3_file_under_vggt_is_named():
    msg = _check(_tiny_da3(), "vggt_1b")
    assert msg.startswith(f"weights.pt {_DA3_HOLDS}, not vggt_1b's: use --model-type {_DA3_TYPES}")


def test_exact_layouts_name_the_type_and_what_the_file_holds(key_spec):
    vggt = _meta(key_spec, "vggt_1b")
    vggt["track_head.feature_extractor.norm.weight"] = torch.empty(128, device="meta")
    msg = _check(vggt, "depth_anything_3_base")
    assert msg.startswith(
        f"weights.pt is a vggt_1b checkpoint, not depth_anything_3_base (it {_VGGT_HOLDS}); "
        "use --model-type vggt_1b"
    )
    msg = _check(_meta(key_spec, "depth_anything_3_small"), "vggt_1b")
    assert msg.startswith(
        f"weights.pt is a depth_anything_3_small checkpoint, not vggt_1b (it {_DA3_HOLDS}); "
        "use --model-type depth_anything_3_small"
    )


def test_a_file_of_the_types_own_family_names_no_other():
    """A damaged VGGT file under vggt_1b: the differences, no family hint."""
    msg = _check(_tiny_vggt(), "vggt_1b")
    assert msg.startswith("weights.pt does not match the vggt_1b layout (")
    assert "holds" not in msg


def test_the_loader_refuses_both_files(tmp_path):
    vggt, da3 = tmp_path / "vggt.safetensors", tmp_path / "da3.pt"
    save_file(_tiny_vggt(), str(vggt))
    torch.save(_tiny_da3(), da3)
    with pytest.raises(CheckpointError, match=re.escape(f"{vggt} {_VGGT_HOLDS}")):
        load_model("depth_anything_3_small", vggt)
    with pytest.raises(CheckpointError, match=re.escape(f"{da3} {_DA3_HOLDS}")):
        load_model("vggt_1b", da3)


def test_reconstruct_and_predict_say_it(tmp_path, capsys, small_png):
    vggt = tmp_path / "vggt.safetensors"
    save_file(_tiny_vggt(), str(vggt))
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(small_png.read_bytes())
    rc, _, err = run(
        capsys,
        "reconstruct",
        folder,
        "-o",
        tmp_path / "out",
        "--model-type",
        "depth_anything_3_small",
        "--weights",
        vggt,
        "--device",
        "cpu",
    )
    assert rc == 2 and _VGGT_HOLDS in err and "use --model-type vggt_1b" in err, err
    da3 = tmp_path / "da3.pt"
    torch.save(_tiny_da3(), da3)
    rc, _, err = run(
        capsys,
        "predict",
        "--input",
        small_png,
        "--output",
        tmp_path / "pred",
        "--model-type",
        "vggt_1b",
        "--weights",
        da3,
        "--device",
        "cpu",
    )
    assert rc == 2 and _DA3_HOLDS in err, err
