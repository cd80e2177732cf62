"""Depth Anything 3 as a model family of dpt_ros: the registry, weights through the
checkpoint machinery, the predictor and ``dpt-ros predict``, against the goldens of
``test_depth_anything3.py`` (the reference run by ``scripts/make_da3_goldens.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from goldens import FIXTURES, Golden

from dpt_ros.models import CheckpointError, Predictor, get_spec
from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX
from dpt_ros.models.registry import DEPTH_ANYTHING_3, model_names
from dpt_ros.models.weights.checkpoint import check_state_dict, load_model, resolve_weights

SMALL = "depth_anything_3_small"
METRIC = "depth_anything_3_metric_large"
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


def da3_golden(model_type: str, process_res: int) -> Golden:
    return Golden.load(
        FIXTURES / "compact" / "da3" / f"{model_type}_{process_res}_scene_a.compact.npz"
    )


@pytest.fixture(scope="module")
def small_file(module_tmp, detweights, fixtures_dir):
    """da3-small's deterministic weights as the hub's model.safetensors (``model.`` keys)."""
    from safetensors.torch import save_file

    layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{SMALL}.json")
    state = detweights.deterministic_state_dict(layout)
    path = module_tmp("da3") / "model.safetensors"
    save_file({HUB_PREFIX + k: v.contiguous() for k, v in state.items()}, str(path))
    return path


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

#: dpt-ros predict against the goldens, relative to the golden's maximum (the network
#: grid; measured: about 3e-6).
PREDICT_RTOL = 1e-3

CAMERA_YAML = """\
image_width: 640
image_height: 480
camera_name: scene_a
camera_matrix:
  rows: 3
  cols: 3
  data: [600.0, 0.0, 319.5, 0.0, 580.0, 239.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.0, 0.0, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [600.0, 0.0, 319.5, 0.0, 0.0, 580.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def _predict(capsys, *argv):
    from dpt_ros.cli.main import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("res", (280, 350))
def test_predict_small_matches_the_goldens(capsys, small_file, tmp_path, res):
    image = FIXTURES / "scene_a.png"
    rc, out, err = _predict(
        capsys,
        "predict",
        "--model-type",
        SMALL,
        "--weights",
        small_file,
        "--input",
        image,
        "--output",
        tmp_path,
        "--network-size",
        f"{res}x{res}",
        "--backend",
        "torch",
        "--output-size",
        "network",
    )
    assert rc == 0, err
    golden = da3_golden(SMALL, res)
    inverse = np.load(tmp_path / "scene_a_depth.npy")
    confidence = np.load(tmp_path / "scene_a_confidence.npy")
    assert inverse.shape == confidence.shape == golden.shape("depth")
    # depth/relative stays relative INVERSE depth: DA3's depth inverted.
    assert golden.relative_error("depth", 1.0 / inverse) <= PREDICT_RTOL
    assert golden.relative_error("confidence", confidence) <= PREDICT_RTOL
    assert confidence.min() >= 1.0
    assert (tmp_path / "scene_a_depth.png").is_file()
    # At the image's size (the default): resized from the same grid as the geometry resizes.
    rc, _, err = _predict(
        capsys, "predict", "--model-type", SMALL, "--weights", small_file, "--input", image,
        "--output", tmp_path / "full", "--network-size", f"{res}x{res}", "--backend", "torch",
    )  # fmt: skip
    assert rc == 0, err
    assert np.load(tmp_path / "full" / "scene_a_depth.npy").shape == (480, 640)


def test_predict_metric_without_camera_info_is_one_error_line(capsys, tmp_path):
    rc, out, err = _predict(
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


def test_predict_metric_matches_the_golden(capsys, detweights, fixtures_dir, tmp_path):
    """The full ViT-L: its deterministic weights take about a minute."""
    from safetensors.torch import save_file

    layout = detweights.read_layout(fixtures_dir / "keys" / f"keys_{METRIC}.json")
    state = detweights.deterministic_state_dict(layout)
    weights = tmp_path / "model.safetensors"
    save_file({HUB_PREFIX + k: v.contiguous() for k, v in state.items()}, str(weights))
    del state
    camera = tmp_path / "camera.yaml"
    camera.write_text(CAMERA_YAML)
    rc, out, err = _predict(
        capsys, "predict", "--model-type", METRIC, "--weights", weights, "--input",
        FIXTURES / "scene_a.png", "--output", tmp_path / "out", "--network-size", "280x280",
        "--backend", "torch", "--output-size", "network", "--camera-info", camera,
    )  # fmt: skip
    assert rc == 0, err
    golden = da3_golden(METRIC, 280)
    metres = np.load(tmp_path / "out" / "scene_a_depth.npy")
    sky = np.load(tmp_path / "out" / "scene_a_sky.npy")
    assert golden.relative_error("metric_depth", metres) <= PREDICT_RTOL
    assert golden.relative_error("sky", sky) <= PREDICT_RTOL
    assert 0.2 < float((sky >= 0.3).mean()) < 0.8


# --------------------------------------------------------------------------- engines


@pytest.mark.export
@pytest.mark.slow
def test_backend_auto_builds_an_onnx_engine_within_1e4_of_torch(small_file, scene_a_rgb, tmp_path):
    """The engine cache exports the (B, 2, h, w) stacked network like any other (one
    output: depth and the second map as channels); onnxruntime on the CPU within 1e-4 of
    PyTorch (measured 2e-6 and 3e-6 at 140x112, the export taking ~45 s)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import cv2

    rgb = cv2.resize(scene_a_rgb, (160, 120), interpolation=cv2.INTER_AREA)
    kwargs = {"weights": str(small_file), "network_size": (140, 140)}
    torch_predictor = Predictor(SMALL, backend="torch", **kwargs)
    # The engine path by name, built at prepare (auto keeps PyTorch where the build
    # measured it faster, and builds in the background by default).
    auto = Predictor(
        SMALL, backend="onnxruntime", engine_build="eager", cache_dir=tmp_path, **kwargs
    )
    auto.prepare(rgb.shape[:2])
    assert auto.backend == "onnxruntime" and auto.engine_cached is False
    grid = torch_predictor.input_size(rgb.shape[:2])
    assert grid == (112, 140)
    want = torch_predictor.infer(rgb[None], output_hw=grid, fill_sky=True).arrays()
    got = auto.infer(rgb[None], output_hw=grid, fill_sky=True).arrays()
    assert set(got) == {"inverse_depth", "confidence"}
    for name in got:
        assert np.abs(got[name] - want[name]).max() / np.abs(want[name]).max() <= 1e-4, name
