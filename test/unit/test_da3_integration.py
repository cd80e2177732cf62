"""Depth Anything 3 as a model family of dpt_ros: the registry, weights through the
checkpoint machinery, the predictor and ``dpt-ros predict``, against the goldens of
``test_depth_anything3.py`` (the reference run by ``scripts/make_da3_goldens.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from da3_cases import CAMERA_YAML, METRIC, SMALL, da3_golden, predict
from goldens import FIXTURES

from dpt_ros.models import CheckpointError, get_spec
from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX
from dpt_ros.models.registry import DEPTH_ANYTHING_3, model_names
from dpt_ros.models.weights.checkpoint import check_state_dict, load_model, resolve_weights

#: (type, hub repository, second output, licence, config.json model_name).
OFFICIAL = (
    (SMALL, "depth-anything/DA3-SMALL", "confidence", "Apache-2.0", "da3-small"),
    ("depth_anything_3_base", "depth-anything/DA3-BASE", "confidence", "Apache-2.0", "da3-base"),
    (
        "depth_anything_3_large",
        "depth-anything/DA3-LARGE",
        "confidence",
        "CC-BY-NC-4.0",
        "da3-large",
    ),
    (
        "depth_anything_3_mono_large",
        "depth-anything/DA3MONO-LARGE",
        "sky",
        "Apache-2.0",
        "da3mono-large",
    ),
    (METRIC, "depth-anything/DA3METRIC-LARGE", "sky", "Apache-2.0", "da3metric-large"),
)


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name,repo,second,licence,hub_name", OFFICIAL)
def test_registry_entries(name, repo, second, licence, hub_name):
    spec = get_spec(name)
    assert spec.family.name == DEPTH_ANYTHING_3 and spec.task == "depth"
    assert (spec.hub_repo, spec.second_output, spec.licence) == (repo, second, licence)
    assert spec.hub_model_name == hub_name and spec.file_name == "model.safetensors"
    assert spec.url == f"https://huggingface.co/{repo}/resolve/main/model.safetensors"
    assert (spec.net_width, spec.net_height, spec.size_multiple) == (504, 504, 14)
    assert spec.resize_method == "upper_bound" and spec.cache_subdir == repo.split("/")[1]
    assert spec.is_metric == (name == METRIC)
    assert name in model_names("depth")


def test_the_cached_official_file_is_found_in_its_own_folder(small_file, tmp_path):
    """Every type's hub file is model.safetensors: each is kept in <cache>/<repo name>/."""
    folder = tmp_path / "DA3-SMALL"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(small_file)
    got = resolve_weights(get_spec(SMALL), cache_dir=tmp_path, progress=False)
    assert got == folder / "model.safetensors"


# --------------------------------------------------------------------------- weights


def test_the_hub_file_loads_and_runs_as_the_reference(small_file, scene_a_rgb):
    from dpt_ros.models.da3_transforms import preprocess

    model = load_model(SMALL, small_file)
    assert set(model.state_dict()) == set(load_model_keys(small_file))
    golden = da3_golden(SMALL, 280)
    x = torch.from_numpy(preprocess(scene_a_rgb, 280))[None]
    with torch.inference_mode():
        out = model(x)
    assert out.shape == (1, 2, *golden.shape("depth"))
    assert golden.relative_error("depth", out[0, 0].numpy()) <= 1e-4
    assert golden.relative_error("confidence", out[0, 1].numpy()) <= 1e-4


def load_model_keys(path) -> list[str]:
    from safetensors.torch import load_file

    return list(load_file(str(path)))


def test_a_bare_state_dict_and_a_hub_folder_load(small_file, tmp_path):
    from safetensors.torch import load_file

    bare = {k[len(HUB_PREFIX) :]: v for k, v in load_file(str(small_file)).items()}
    pt = tmp_path / "bare.pt"
    torch.save(bare, pt)
    assert load_model(SMALL, pt) is not None
    folder = tmp_path / "DA3-SMALL"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(small_file)
    (folder / "config.json").write_text(json.dumps({"model_name": "da3-small"}))
    assert load_model(SMALL, folder) is not None
    (folder / "config.json").write_text(json.dumps({"model_name": "da3-base"}))
    with pytest.raises(CheckpointError, match=r"names model 'da3-base', not 'da3-small'"):
        load_model(SMALL, folder)


def test_a_file_of_another_size_is_refused_naming_it(small_file):
    with pytest.raises(
        CheckpointError, match=f"is a {SMALL} checkpoint, not depth_anything_3_base"
    ):
        load_model("depth_anything_3_base", small_file)


def _meta(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def test_a_dav2_file_and_unsupported_da3_files_are_refused(detweights, fixtures_dir):
    layout = detweights.read_layout(fixtures_dir / "keys" / "keys_depth_anything_v2_vits.json")
    dav2 = _meta({k: tuple(s) for k, s, _ in layout})
    with pytest.raises(CheckpointError, match=r"is a depth_anything_v2_vits.* not " + SMALL):
        check_state_dict(dav2, get_spec(SMALL))
    small = detweights.read_layout(fixtures_dir / "keys" / f"keys_{SMALL}.json")
    nested = _meta(
        {f"model.{net}.{k}": tuple(s) for net in ("da3", "da3_metric") for k, s, _ in small}
    )
    with pytest.raises(CheckpointError, match=r"nested \(DA3NESTED-GIANT-LARGE\).*not " + METRIC):
        check_state_dict(nested, get_spec(METRIC))
    giant = _meta({"model.backbone.pretrained.cls_token": (1, 1, 1536), "model.head.x": (3,)})
    with pytest.raises(CheckpointError, match=r"giant \(DA3-GIANT\)"):
        check_state_dict(giant, get_spec("depth_anything_3_large"))
    # And a DA3 file given for a Depth Anything V2 type is named for what it is.
    da3 = _meta({HUB_PREFIX + k: tuple(s) for k, s, _ in small})
    with pytest.raises(CheckpointError, match=f"is a {SMALL} checkpoint, not depth_anything_v2"):
        check_state_dict(da3, get_spec("depth_anything_v2_vits"))


# --------------------------------------------------------------------------- predict


def test_predict_metric_without_camera_info_is_one_error_line(capsys, tmp_path):
    rc, out, err = predict(
        capsys,
        "predict",
        "--model-type",
        METRIC,
        "--random-weights",
        "--input",
        FIXTURES / "scene_a.png",
        "--output",
        tmp_path,
    )
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--camera-info FILE" in lines[0] and METRIC in lines[0]
    assert not list(tmp_path.iterdir())


def test_camera_info_yaml_is_read_and_checked(tmp_path):
    from dpt_ros.cli.predict import camera_matrix_for
    from dpt_ros.ros.camera_yaml import read_camera_info_yaml

    path = tmp_path / "camera.yaml"
    path.write_text(CAMERA_YAML)
    info = read_camera_info_yaml(path)
    assert (info.width, info.height) == (640, 480) and list(info.p)[5] == 580.0
    k = camera_matrix_for(info, (480, 640))
    np.testing.assert_array_equal(k, [[600, 0, 319.5], [0, 580, 239.5], [0, 0, 1]])
    with pytest.raises(ValueError, match="640x480"):
        camera_matrix_for(info, (240, 320))
    path.write_text(CAMERA_YAML.replace("image_width: 640", "image_width: -1"))
    with pytest.raises(ValueError, match="image_width must be a positive integer"):
        read_camera_info_yaml(path)


# --------------------------------------------------------------------------- engines
