"""``dpt-ros reconstruct --ray`` over several inputs on a real local Ray: one
reconstruction per input in its own folder, the model loaded once per worker, an input
that fails fails alone, and the outputs those of the run without Ray."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from cli_cases import run

#: A tiny run: Depth Anything 3 small, random (seeded) weights, a 56-pixel grid.
_MODEL = [
    "--model-type",
    "depth_anything_3_small",
    "--random-weights",
    "--network-size",
    "56x56",
    "--window",
    "2",
    "--overlap",
    "1",
    "--device",
    "cpu",
    "--backend",
    "torch",
    "--precision",
    "fp32",
]


def _folder(path, count, seed):
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(path / f"f{i}.png"), rng.integers(0, 255, (42, 56, 3), dtype=np.uint8))
    return path


def test_ray_reconstructs_each_input_into_its_folder(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    a = _folder(tmp_path / "in" / "a", 3, 0)
    b = _folder(tmp_path / "in" / "b", 2, 1)
    bad = _folder(tmp_path / "in" / "bad", 2, 2)
    cv2.imwrite(str(bad / "f9.png"), np.zeros((30, 30, 3), np.uint8))  # another size
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray_out"
        rc, stdout, stderr = run(
            capsys, "reconstruct", a, b, bad, "-o", out, *_MODEL, "--ray", "--workers", "1"
        )
    finally:
        ray.shutdown()
    assert rc == 1, stderr
    done = [line for line in stdout.splitlines() if "results in" in line]
    assert len(done) == 2
    assert len({line.rsplit("(worker ", 1)[1] for line in done}) == 1  # loaded once
    failed = [line for line in stderr.splitlines() if ": failed: " in line]
    assert len(failed) == 1, stderr
    assert "f9.png" in failed[0] and "ValueError" in failed[0] and "one size" in failed[0], failed
    sequential = tmp_path / "seq"
    rc, _, stderr = run(capsys, "reconstruct", a, b, "-o", sequential, *_MODEL)
    assert rc == 0, stderr
    for name, frames in (("a", 3), ("b", 2)):
        doc = json.loads((out / name / "cameras.json").read_text())
        assert len(doc["frames"]) == frames
        want = json.loads((sequential / name / "cameras.json").read_text())
        np.testing.assert_allclose(
            [f["camera_from_world"] for f in doc["frames"]],
            [f["camera_from_world"] for f in want["frames"]],
            rtol=1e-5,
            atol=1e-6,
        )
        for k in range(frames - 1):
            with np.load(out / name / "windows" / f"{k:04d}.npz") as got:
                with np.load(sequential / name / "windows" / f"{k:04d}.npz") as ref:
                    np.testing.assert_allclose(got["depth"], ref["depth"], rtol=1e-5)


def test_worker_flags_need_ray(tmp_path, capsys):
    a = _folder(tmp_path / "a", 2, 0)
    rc, _, stderr = run(capsys, "reconstruct", a, "-o", tmp_path / "o", *_MODEL, "--workers", 2)
    assert rc == 2 and "--workers and --gpus-per-worker need --ray" in stderr
