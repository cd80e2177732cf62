"""Folders in transformers' format (``save_pretrained``): keys converted into our layout,
checked against transformers' own forward pass at network level.

Each transformers model is built once per module with the published config.json of its
hub repository, given seeded random values in every entry (so that a swapped LayerNorm,
batch-norm statistic or fusion level shows in the output), saved with
``save_pretrained`` and loaded by ``load_model``. Inputs have the network size the
position embeddings were trained at (384 for DPT, 518 for Depth Anything V2): at other
sizes transformers resamples them differently from the original implementations, which
dpt_ros follows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers_cases import DAV2_SMALL_HF, relative_max_diff, transformers

from dpt_ros.models import Predictor
from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.models.weights.transformers_format import identify_folder_model

DAV2_BASE_HF = {
    **DAV2_SMALL_HF,
    "backbone_config": {
        **DAV2_SMALL_HF["backbone_config"],
        "hidden_size": 768,
        "num_attention_heads": 12,
    },
    "fusion_hidden_size": 128,
    "neck_hidden_sizes": [96, 192, 384, 768],
    "reassemble_hidden_size": 768,
}


def test_dpt_hybrid_folder_loads_for_the_metric_hybrids_and_the_predictor(hybrid_folder):
    folder, x, _ = hybrid_folder
    reference = load_model("dpt_hybrid", weights=folder)
    nyu = load_model("dpt_hybrid_nyu", weights=folder)
    for (name, a), b in zip(reference.state_dict().items(), nyu.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    predictor = Predictor(
        "dpt_hybrid", weights=folder, device="cpu", precision="fp32", backend="torch"
    )
    assert predictor.predict(np.zeros((64, 64, 3), dtype=np.uint8)).shape == (64, 64)


def test_depth_anything_v2_small_matches_transformers(dav2_folder):
    folder, x, expected = dav2_folder
    ours = load_model("depth_anything_v2_vits", weights=folder)
    with torch.no_grad():
        got = ours(x)
    assert got.shape == expected.shape == (1, 518, 518)
    assert expected.abs().max() > 0 and expected.std() > 0
    assert relative_max_diff(got, expected) < 1e-4


def edited_copy(folder: Path, tmp_path: Path, **changes) -> Path:
    """A copy of ``folder`` whose config.json has ``changes`` (None deletes a field)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").symlink_to(folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        ("dpt_large", "holds a DPT-Hybrid depth model (like dpt_hybrid), not dpt_large"),
        (
            "dpt_hybrid_ade20k",
            "holds a DPT-Hybrid depth model (like dpt_hybrid), not dpt_hybrid_ade20k",
        ),
        (
            "depth_anything_v2_vits",
            "holds a DPT-Hybrid depth model (like dpt_hybrid), not depth_anything_v2_vits",
        ),
    ],
)
def test_a_hybrid_folder_is_refused_for_other_types(hybrid_folder, model_type, message):
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_model(model_type, weights=hybrid_folder[0])


def test_a_base_folder_is_refused_as_small(tmp_path):
    folder = tmp_path / "base"
    config = transformers.DepthAnythingConfig(**DAV2_BASE_HF)
    config.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"never read")
    with pytest.raises(CheckpointError) as err:
        load_model("depth_anything_v2_vits", weights=folder)
    assert (
        "holds a Depth Anything V2 Base relative depth model (like depth_anything_v2_vitb)"
        in str(err.value)
    )
    assert "not depth_anything_v2_vits" in str(err.value)


@pytest.mark.parametrize(
    ("max_depth", "like"),
    [(20, "depth_anything_v2_metric_hypersim_vits"), (80, "depth_anything_v2_metric_vkitti_vits")],
)
def test_a_metric_folder_is_refused_as_relative(dav2_folder, tmp_path, max_depth, like):
    folder = edited_copy(
        dav2_folder[0], tmp_path, depth_estimation_type="metric", max_depth=max_depth
    )
    with pytest.raises(CheckpointError) as err:
        load_model("depth_anything_v2_vits", weights=folder)
    text = str(err.value)
    assert f"metric depth model with max_depth {max_depth} m (like {like})" in text
    assert "not depth_anything_v2_vits" in text
    # ... and loads as the metric type it is.
    assert load_model(like, weights=folder) is not None


def test_a_metric_folder_with_another_ceiling_is_refused(dav2_folder, tmp_path):
    folder = edited_copy(dav2_folder[0], tmp_path, depth_estimation_type="metric", max_depth=10)
    with pytest.raises(CheckpointError, match="max_depth 10 m: the metric types are for 20 m"):
        load_model("depth_anything_v2_metric_hypersim_vits", weights=folder)


def test_a_folder_without_config_is_refused(dav2_folder, tmp_path):
    (tmp_path / "model.safetensors").symlink_to(dav2_folder[0] / "model.safetensors")
    with pytest.raises(CheckpointError, match="has no config.json; expected a folder written by"):
        load_model("depth_anything_v2_vits", weights=tmp_path)


def test_a_pickle_only_folder_is_refused_unread(dav2_folder, tmp_path):
    folder = edited_copy(dav2_folder[0], tmp_path)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    torch.save({"x": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"holds only pickle weights \(pytorch_model.bin\)"):
        load_model("depth_anything_v2_vits", weights=folder)
    assert not marker.exists()


def test_a_folder_without_weights_is_refused(dav2_folder, tmp_path):
    folder = edited_copy(dav2_folder[0], tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors; expected a folder"):
        load_model("depth_anything_v2_vits", weights=folder)


def test_sharded_weights_load(dav2_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(dav2_folder[0] / "model.safetensors")
    names = sorted(tensors)
    shards = {"a.safetensors": names[::2], "b.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, tmp_path / file)
    index = {"weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_bytes((dav2_folder[0] / "config.json").read_bytes())
    single = load_model("depth_anything_v2_vits", weights=dav2_folder[0])
    sharded = load_model("depth_anything_v2_vits", weights=tmp_path)
    for (name, a), b in zip(
        single.state_dict().items(), sharded.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_entries_without_a_place_are_refused(dav2_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = edited_copy(dav2_folder[0], tmp_path)
    tensors = load_file(dav2_folder[0] / "model.safetensors")
    tensors["neck.extra.weight"] = torch.zeros(3)
    (folder / "model.safetensors").unlink()
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(
        CheckpointError,
        match=r"1 entries have no place in the depth_anything_v2_vits layout: neck\.extra\.weight",
    ):
        load_model("depth_anything_v2_vits", weights=folder)


def test_the_command_line_takes_a_folder(dav2_folder, tmp_path, capsys):
    import cv2

    from dpt_ros.cli.main import main

    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.full((40, 60, 3), 128, np.uint8))
    args = ["predict", "--weights", str(dav2_folder[0]), "--input", str(image), "--device", "cpu"]
    args += ["--backend", "torch"]
    rc = main([*args, "--model-type", "depth_anything_v2_vits", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (tmp_path / "out" / "scene_depth.npy").is_file()
    rc = main([*args, "--model-type", "depth_anything_v2_vitb", "--output", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "holds a Depth Anything V2 Small relative depth model" in err


def hybrid_config(hybrid_folder) -> dict:
    return json.loads((hybrid_folder[0] / "config.json").read_text())


def test_a_hybrid_config_without_the_backbone_type_is_still_a_bit(hybrid_folder):
    config = hybrid_config(hybrid_folder)
    del config["backbone_config"]["model_type"]  # DPTConfig defaults it to "bit"
    held = identify_folder_model(config)
    assert str(held) == "a DPT-Hybrid depth model (like dpt_hybrid)"
    assert held.model_types == ("dpt_hybrid", "dpt_hybrid_kitti", "dpt_hybrid_nyu")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"is_hybrid": False, "backbone_config": None},
            "a DPT-Large depth model that dpt_ros cannot load: hidden_size is 768, expected 1024",
        ),
        (
            {"readout_type": "ignore"},
            'DPT-Hybrid depth model that dpt_ros cannot load: readout_type is "ignore", '
            'expected "project"',
        ),
        ({"model_type": "bert"}, "describes a 'bert' model; dpt_ros reads transformers folders"),
    ],
)
def test_configs_dpt_ros_has_no_type_for_are_named(hybrid_folder, changes, message):
    config = {**hybrid_config(hybrid_folder), **changes}
    with pytest.raises(CheckpointError, match=re.escape(message)):
        identify_folder_model(config)


def test_a_metric_config_without_a_numeric_ceiling_is_named(dav2_folder):
    config = json.loads((dav2_folder[0] / "config.json").read_text())
    config.update(depth_estimation_type="metric", max_depth=None)
    with pytest.raises(CheckpointError, match="max_depth null m: the metric types are for 20 m"):
        identify_folder_model(config)


@pytest.mark.parametrize(
    "changes",
    [
        {"backbone_config": ["dinov2"]},  # a list where a dict belongs
        {"backbone_config": {"model_type": "dinov2", "hidden_size": "384"}},
        {"backbone_config": {"model_type": "dinov2", "out_indices": 5}},
        {"depth_estimation_type": ["metric"]},
    ],
)
def test_config_fields_of_the_wrong_type_are_one_error(dav2_folder, tmp_path, changes):
    """Wrong JSON types escaped as AttributeError or TypeError tracebacks."""
    folder = edited_copy(dav2_folder[0], tmp_path, **changes)
    with pytest.raises(CheckpointError) as caught:
        load_model("depth_anything_v2_vits", weights=folder)
    assert str(folder) in str(caught.value) and "\n" not in str(caught.value)


def test_a_deeply_nested_config_is_one_error(dav2_folder, tmp_path):
    folder = edited_copy(dav2_folder[0], tmp_path)
    (folder / "config.json").write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_model("depth_anything_v2_vits", weights=folder)


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool])
def test_tensors_that_are_not_floating_point_are_refused(dav2_folder, tmp_path, dtype):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "quantised"
    folder.mkdir()
    (folder / "config.json").write_bytes((dav2_folder[0] / "config.json").read_bytes())
    tensors = load_file(dav2_folder[0] / "model.safetensors")
    name = next(k for k in tensors if k.endswith("query.weight"))
    tensors[name] = tensors[name].to(dtype)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"not floating point, e.g. {re.escape(name)}"):
        load_model("depth_anything_v2_vits", weights=folder)


def test_safetensors_headers_are_bounded_before_parsing(tmp_path):
    """A header of tens of megabytes of empty tensors took 89 s and 1.2 GB to parse;
    its length and tensor count are checked first (the attack is in the attack tier)."""
    import struct

    from dpt_ros.models.weights.checkpoint import read_safetensors_file
    from dpt_ros.models.weights.safetensors_header import (
        MAX_HEADER_BYTES,
        MAX_TENSORS,
        header_problem,
    )

    def write(name: str, entries: int, claimed: int | None = None):
        header = json.dumps(
            {
                f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                for i in range(entries)
            }
        ).encode()
        path = tmp_path / name
        path.write_bytes(struct.pack("<Q", claimed or len(header)) + header)
        return path

    assert header_problem(write("official.safetensors", 643)) is None
    many = header_problem(write("many.safetensors", MAX_TENSORS + 1))
    assert f"lists {MAX_TENSORS + 1} tensors" in many
    long = header_problem(write("long.safetensors", 1, claimed=MAX_HEADER_BYTES + 1))
    assert f"header is {MAX_HEADER_BYTES + 1} bytes" in long
    with pytest.raises(CheckpointError, match="long.safetensors: its safetensors header is"):
        read_safetensors_file(tmp_path / "long.safetensors")
