"""The fidelity fixtures that travel with the code: the project's deterministic-weights
generator gives the tensors the goldens were computed with, and the compact goldens are
complete and consistent."""

from __future__ import annotations

import deterministic_weights as dw
import numpy as np
import pytest
import torch
from checkpoint_store import CheckpointStore
from fixture_cases import shared_generator
from goldens import FIXTURES, shared_fixtures_dir


def test_rules_by_tensor_kind():
    assert dw.key_seed("a") == dw.key_seed("a") != dw.key_seed("b")
    assert dw.key_seed("x") < 2**63
    var = dw.deterministic_tensor("m.bn.running_var", (64,))
    assert var.min() >= 1.0
    counter = dw.deterministic_tensor("m.bn.num_batches_tracked", (), "int64")
    assert counter.dtype.is_floating_point is False and int(counter) == 0
    gamma = dw.deterministic_tensor("blocks.0.ls1.gamma", (384,))
    assert abs(float(gamma.mean()) - 0.1) < 0.01
    conv = dw.deterministic_tensor("conv.weight", (256, 128, 3, 3))
    assert abs(float(conv.std()) - (128 * 9) ** -0.5) < 1e-3


#: Camera heads (windows of views): keys and shapes as Depth Anything 3 and VGGT name them.
CAMERA_HEAD_KEYS = (
    ("model.cam_dec.fc_fov.0.bias", (1,)),
    ("camera_head.pose_branch.fc2.bias", (9,)),
    ("camera_head.pose_branch.fc2.weight", (9, 1024)),
)


def test_camera_head_rules():
    """The two rules for camera heads: the field of view stays inside (0, pi) whatever
    the random draw; bit-identical to the fixtures' generator where it is present."""
    fov_bias = dw.deterministic_tensor("model.cam_dec.fc_fov.0.bias", (64,))
    assert abs(float(fov_bias.mean()) - 1.0) < 0.01 and float(fov_bias.min()) > 0.9
    bias = dw.deterministic_tensor("camera_head.pose_branch.fc2.bias", (9,))
    assert (bias[-2:] > 0.15).all() and (bias[:-2].abs() < 0.1).all()
    weight = dw.deterministic_tensor("camera_head.pose_branch.fc2.weight", (9, 1024))
    assert float(weight[-2:].std()) == pytest.approx(0.01 / 32, rel=0.1)
    assert float(weight[:-2].std()) == pytest.approx(1 / 32, rel=0.1)
    reference = shared_generator()
    if reference is not None:
        for key, shape in CAMERA_HEAD_KEYS:
            want = reference.deterministic_tensor(key, list(shape), "float32")
            assert torch.equal(dw.deterministic_tensor(key, shape), want), key


@pytest.mark.parametrize(
    "path", sorted((FIXTURES / "compact").glob("*.npz")), ids=lambda p: p.name.split("_scene_a")[0]
)
def test_compact_goldens_are_consistent(path):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    names = {k.split("__")[0] for k in arrays if "__" in k}
    assert names, path
    for name in names:
        shape = tuple(arrays[f"{name}__shape"])
        index, value = arrays[f"{name}__index"], arrays[f"{name}__value"]
        assert index.shape == (4000, len(shape)) and value.shape == (4000,)
        assert (index >= 0).all() and (index < np.array(shape)).all()
        assert np.isfinite(arrays[f"{name}__mean"]) and arrays[f"{name}__std"] > 0
    assert tuple(arrays["image_shape"]) == (480, 640, 3)


def test_compact_goldens_agree_with_the_full_ones():
    """Where ../shared is present, every sampled value is the full golden's value there;
    elsewhere the compact files' own statistics must describe their samples."""
    shared = shared_fixtures_dir()
    for path in sorted((FIXTURES / "compact").glob("*.npz")):
        model_type = path.name.split("_scene_a")[0]
        with np.load(path) as compact:
            if shared is None:
                value = compact["final__value" if "final__value" in compact else "labels__value"]
                mean = compact["final__mean" if "final__mean" in compact else "labels__mean"]
                assert abs(value.astype(np.float64).mean() - mean) < 0.1 * abs(mean) + 0.1
                continue
            family = "dav2" if model_type.startswith("depth_anything") else "dpt"
            with np.load(shared / family / f"golden_{model_type}_scene_a.npz") as full:
                for key in compact.files:
                    if not key.endswith("__index"):
                        continue
                    name = key[: -len("__index")]
                    got = full[name][tuple(compact[key].T)]
                    np.testing.assert_array_equal(got, compact[f"{name}__value"], err_msg=name)
                    assert abs(full[name].mean(dtype=np.float64) - compact[f"{name}__mean"]) < 1e-6


def test_checkpoint_store_keeps_its_bound_and_the_running_tests_files(tmp_path):
    """The det_checkpoint store: over its bound, the least recently used file goes first,
    never one the running test asked for; a removed file is written again, the same."""
    sizes = {"a": 3000, "b": 2000, "c": 3000, "d": 9000}
    store = CheckpointStore(tmp_path, lambda t: [(t, (sizes[t] // 4,), "float32")], 10_000)

    def on_disk() -> list[str]:
        return sorted(p.name.removeprefix("det_").removesuffix(".pt") for p in tmp_path.iterdir())

    first = store("a").read_bytes()
    store("b")
    store.held.clear()  # the next test
    store("a")  # a is used again: b is now the least recent
    store.held.clear()
    store("c")
    assert on_disk() == ["a", "c"]
    store.held.clear()
    store("d")  # needs all the room: both go
    assert on_disk() == ["d"]
    assert store("a").read_bytes() == first  # held by this test with d: over the bound
    assert on_disk() == ["a", "d"]
    assert store.held == {"a", "d"}
