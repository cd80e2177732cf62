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
import torch.nn.functional as F

from dpt_ros.models import Predictor
from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.network.std_conv import OriginalStdConv2d
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.models.weights.transformers_format import identify_folder_model

transformers = pytest.importorskip("transformers")

# The published config.json values that define each network. Depth-Anything-V2-Small-hf:
# as published (revision 5426e4f). The Intel DPT repositories: the values their
# conversion scripts (transformers' convert_dpt_hybrid_to_pytorch.py and
# convert_dpt_to_pytorch.py) set on DPTConfig; the config.json files themselves were
# not available to copy.
BIT_HYBRID = {
    "global_padding": "same",
    "layer_type": "bottleneck",
    "depths": [3, 4, 9],
    "out_features": ["stage1", "stage2", "stage3"],
    "embedding_dynamic_padding": True,
}
DPT_HYBRID_MIDAS = {
    "is_hybrid": True,
    "backbone_config": BIT_HYBRID,
    "backbone_featmap_shape": [1, 1024, 24, 24],
    "hidden_size": 768,
    "reassemble_factors": [1, 1, 1, 0.5],
    "neck_hidden_sizes": [256, 512, 768, 768],
    "readout_type": "project",
    "use_batch_norm_in_fusion_residual": False,
}
DPT_LARGE = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "backbone_out_indices": [5, 11, 17, 23],
    "neck_hidden_sizes": [256, 512, 1024, 1024],
}
DPT_LARGE_ADE = {**DPT_LARGE, "use_batch_norm_in_fusion_residual": True, "num_labels": 150}
DAV2_SMALL_HF = {
    "backbone_config": {
        "architectures": ["Dinov2Model"],
        "hidden_size": 384,
        "image_size": 518,
        "model_type": "dinov2",
        "num_attention_heads": 6,
        "out_features": ["stage3", "stage6", "stage9", "stage12"],
        "out_indices": [3, 6, 9, 12],
        "patch_size": 14,
        "reshape_hidden_states": False,
    },
    "fusion_hidden_size": 64,
    "head_hidden_size": 32,
    "head_in_index": -1,
    "neck_hidden_sizes": [48, 96, 192, 384],
    "patch_size": 14,
    "reassemble_factors": [4, 2, 1, 0.5],
    "reassemble_hidden_size": 384,
}
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


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Seeded random values in every entry: noise on weights, norms and biases, positive
    batch-norm variances."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:
                t.add_(0.05 * torch.randn(t.shape, generator=gen))


def save_transformers_model(folder: Path, cls_name: str, config_cls: str, config: dict, seed: int):
    """Builds a transformers model from ``config``, randomises it, saves it; returns it."""
    cfg = getattr(transformers, config_cls)(**config)
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(cfg).eval()
    randomise(model, seed)
    model.save_pretrained(folder)
    return model


def relative_max_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Largest absolute difference over the largest magnitude of transformers' output."""
    return float((ours - theirs).abs().max() / theirs.abs().max())


def normalised_input(size: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand((1, 3, size, size), generator=gen) - 0.5) / 0.25


def saved_depth_model(
    folder: Path, cls_name: str, config_cls: str, config: dict, seed: int, size: int
):
    """(folder, input, transformers' predicted depth) of a saved random depth model."""
    model = save_transformers_model(folder, cls_name, config_cls, config, seed)
    x = normalised_input(size)
    with torch.no_grad():
        return folder, x, model(pixel_values=x).predicted_depth


@pytest.fixture(scope="module")
def hybrid_folder(module_tmp):
    folder = module_tmp("dpt_hybrid_hf")
    return saved_depth_model(
        folder, "DPTForDepthEstimation", "DPTConfig", DPT_HYBRID_MIDAS, seed=11, size=384
    )


@pytest.fixture(scope="module")
def dav2_folder(module_tmp):
    folder = module_tmp("dav2_small_hf")
    cls_name, config_cls = "DepthAnythingForDepthEstimation", "DepthAnythingConfig"
    return saved_depth_model(folder, cls_name, config_cls, DAV2_SMALL_HF, seed=13, size=518)


def transformers_standardisation(model: torch.nn.Module) -> int:
    """Makes our hybrid standardise its convolution weights with transformers' BiT formula,
    ``(w - mean) / sqrt(var + 1e-8)``, instead of the original's ``(w - mean) / (std + 1e-5)``."""
    convs = [m for m in model.modules() if isinstance(m, OriginalStdConv2d)]
    for conv in convs:

        def weight(conv=conv) -> torch.Tensor:
            w = conv.weight
            flat = F.batch_norm(
                w.reshape(1, w.shape[0], -1), None, None, training=True, momentum=0.0, eps=1e-8
            )
            return flat.reshape_as(w)

        conv.standardized_weight = weight  # type: ignore[method-assign]
    return len(convs)


def transformers_layer_norm_eps(model: torch.nn.Module) -> int:
    """Gives our ViT's LayerNorms transformers' DPT epsilon, 1e-12, instead of timm's 1e-6."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    for norm in norms:
        norm.eps = 1e-12
    return len(norms)


def test_dpt_hybrid_matches_transformers(hybrid_folder):
    folder, x, expected = hybrid_folder
    ours = load_model("dpt_hybrid", weights=folder)
    with torch.no_grad():
        faithful = ours(x)
        assert transformers_standardisation(ours) == 52
        assert transformers_layer_norm_eps(ours) == 2 * 12 + 1
        swapped = ours(x)
    assert expected.shape == swapped.shape == (1, 384, 384)
    assert expected.abs().max() > 0 and expected.std() > 0
    # The key conversion, with transformers' standardisation and epsilon swapped in:
    assert relative_max_diff(swapped, expected) < 1e-4
    # With the original's standardisation (what dpt_ros runs) the outputs differ visibly
    # (1.3e-3 of the maximum with these weights).
    assert 1e-4 < relative_max_diff(faithful, expected) < 1e-2


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


@pytest.mark.parametrize(
    ("model_type", "cls_name", "config", "output"),
    [
        ("dpt_large", "DPTForDepthEstimation", DPT_LARGE, "predicted_depth"),
        ("dpt_large_ade20k", "DPTForSemanticSegmentation", DPT_LARGE_ADE, "logits"),
    ],
)
def test_dpt_large_matches_transformers(tmp_path, model_type, cls_name, config, output):
    model = save_transformers_model(tmp_path, cls_name, "DPTConfig", config, seed=12)
    x = normalised_input(384)
    with torch.no_grad():
        expected = getattr(model(pixel_values=x), output)
    del model
    ours = load_model(model_type, weights=tmp_path)
    with torch.no_grad():
        faithful = ours(x)
        assert transformers_layer_norm_eps(ours) == 2 * 24 + 1
        got = ours(x)
    assert got.shape == expected.shape
    assert expected.abs().max() > 0 and expected.std() > 0
    # The key conversion, with transformers' LayerNorm epsilon:
    assert relative_max_diff(got, expected) < 1e-4
    # timm's epsilon (what dpt_ros runs): 9e-5 of the maximum with these random weights,
    # whose activations are far smaller than trained ones.
    assert relative_max_diff(faithful, expected) < 1e-3


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


def test_a_hybrid_segmentation_folder_without_auxiliary_head(tmp_path):
    """dpt_hybrid_ade20k has no transformers release; its layout is a hybrid
    DPTForSemanticSegmentation. Saved without the training-only auxiliary head, ours is
    filled with zeros (variances one)."""
    config = {**DPT_HYBRID_MIDAS, "use_batch_norm_in_fusion_residual": True, "num_labels": 150}
    config["use_auxiliary_head"] = False
    model = save_transformers_model(tmp_path, "DPTForSemanticSegmentation", "DPTConfig", config, 14)
    x = normalised_input(384)
    with torch.no_grad():
        expected = model(pixel_values=x).logits
    del model
    ours = load_model("dpt_hybrid_ade20k", weights=tmp_path)
    transformers_standardisation(ours)
    transformers_layer_norm_eps(ours)
    with torch.no_grad():
        got = ours(x)
    assert got.shape == expected.shape == (1, 150, 384, 384)
    assert relative_max_diff(got, expected) < 1e-4
    aux = ours.get_submodule("auxlayer")
    assert not aux[0].weight.any() and not aux[4].weight.any() and not aux[4].bias.any()
    assert torch.equal(aux[1].running_var, torch.ones(256))


def test_a_metric_config_without_a_numeric_ceiling_is_named(dav2_folder):
    config = json.loads((dav2_folder[0] / "config.json").read_text())
    config.update(depth_estimation_type="metric", max_depth=None)
    with pytest.raises(CheckpointError, match="max_depth null m: the metric types are for 20 m"):
        identify_folder_model(config)


def test_the_node_takes_a_folder(dav2_folder, ros):
    """depth.weights: DIR loads the folder; the node's output equals our Predictor on
    the same folder, over real rclpy."""
    from rclpy.parameter import Parameter
    from test_node import Probe, rgb_msg, small_image, spin_until, wait_for_subscribers

    from dpt_ros.models import Predictor
    from dpt_ros.node.node import DptNode
    from dpt_ros.ros.image_codec import image_msg_to_array

    executor, add = ros
    overrides = [
        Parameter("device", value="cpu"),
        Parameter("backend", value="torch"),
        Parameter("precision", value="fp32"),
        Parameter("network_width", value=56),
        Parameter("network_height", value=56),
        Parameter("depth.model_type", value="depth_anything_v2_vits"),
        Parameter("depth.weights", value=str(dav2_folder[0])),
    ]
    add(DptNode(parameter_overrides=overrides))
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    rgb = small_image()
    probe.image_pub.publish(rgb_msg(rgb, 4))
    assert spin_until(executor, lambda: probe.got["depth/relative"])
    got = image_msg_to_array(probe.got["depth/relative"][0])
    want = Predictor(
        "depth_anything_v2_vits",
        weights=str(dav2_folder[0]),
        device="cpu",
        backend="torch",
        network_size=(56, 56),
    ).predict(rgb)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


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
