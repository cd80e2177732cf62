"""``dpt-ros reconstruct --metric-model`` with the real networks (deterministic weights,
a 56-pixel network): the unit says metres, and depth and translations are the windows'
raw outputs times each window's recorded metric scale."""

from __future__ import annotations

import json

import numpy as np
from cli_cases import run, write_rgb
from da3_cases import CAMERA_YAML, METRIC, SMALL, hub_file


def test_metric_scale_reaches_depth_and_translations(
    capsys, tmp_path, detweights, fixtures_dir, scene_a_rgb
):
    folders = {name: tmp_path / name for name in ("small", "metric", "in")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(4):
        write_rgb(folders["in"] / f"frame_{i}.png", np.roll(scene_a_rgb, 8 * i, axis=1))
    (tmp_path / "cam.yaml").write_text(CAMERA_YAML)  # scene_a's 640x480 camera
    out = tmp_path / "out"
    rc, stdout, stderr = run(
        capsys,
        "reconstruct",
        folders["in"],
        "-o",
        out,
        "--model-type",
        SMALL,
        "--weights",
        hub_file(detweights, fixtures_dir, SMALL, folders["small"]),
        "--metric-model",
        METRIC,
        "--metric-weights",
        hub_file(detweights, fixtures_dir, METRIC, folders["metric"]),
        "--camera-info",
        tmp_path / "cam.yaml",
        "--window",
        3,
        "--overlap",
        1,
        "--network-size",
        "56x56",
        "--output-size",
        "network",
        "--device",
        "cpu",
        "--backend",
        "torch",
    )
    assert rc == 0, stderr
    assert "in metres" in stdout
    doc = json.loads((out / "cameras.json").read_text())
    assert doc["unit"] == "metres" and "least-squares" in doc["scale"]
    assert len(doc["windows"]) == 2
    first = doc["windows"][0]
    scale = first["metric_scale"]["scale"]
    assert scale > 0 and first["metric_scale"]["pixels"] > 0
    assert first["sim3_to_world"]["scale"] == 1.0  # the first window is the world
    with np.load(out / "windows" / "0000.npz") as raw:
        names = [str(n) for n in raw["names"]]
        frames = {f["name"]: f for f in doc["frames"]}
        for j, name in enumerate(names):
            got = np.array(frames[name]["camera_from_world"])
            np.testing.assert_allclose(got[:, :3], raw["camera_from_world"][j, :, :3], atol=1e-6)
            np.testing.assert_allclose(
                got[:, 3], scale * raw["camera_from_world"][j, :, 3], rtol=1e-5, atol=1e-6
            )
            depth = np.load(out / "depth" / f"{frames[name]['stem']}.npy")
            np.testing.assert_allclose(depth, scale * raw["depth"][j], rtol=1e-5)
    # a frame of the second window: its own fit, then its Sim(3) onto the first
    second = doc["windows"][1]
    total = second["metric_scale"]["scale"] * second["sim3_to_world"]["scale"]
    with np.load(out / "windows" / "0001.npz") as raw:
        last = str(raw["names"][-1])
        assert frames[last]["window"] == 1
        depth = np.load(out / "depth" / f"{frames[last]['stem']}.npy")
        np.testing.assert_allclose(depth, total * raw["depth"][-1], rtol=1e-4)
