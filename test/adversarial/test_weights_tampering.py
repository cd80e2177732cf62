"""Weights files whose tensors are not floating point: an int8, uint8 or bool tensor in
a DPT ``.pt``, a Depth Anything V2 ``.pth`` or a Depth Anything 3 ``.safetensors`` file
gave a RuntimeError of hundreds of lines; a complex64 tensor loaded and crashed at
inference. Each is refused with one line naming the key, its dtype and what was
expected (docs/models.md, "Checks on every weights file")."""

from __future__ import annotations

import pytest
import torch
from attack import DPT_ROS, attack
from helpers import small_image

#: The refused file is read whole (up to 0.5 GB here) before its dtypes are checked,
#: and torch's libraries are about 1.1 GB; nothing is built or run.
PEAK_MB = 2500


def _tampered(det_checkpoint, tmp_path, model_type: str, suffix: str, dtype: torch.dtype):
    """The deterministic checkpoint of ``model_type`` with one weight cast to ``dtype``,
    saved as ``suffix`` (.pt, .pth or .safetensors); returns (path, key)."""
    state = torch.load(det_checkpoint(model_type), map_location="cpu", weights_only=True)
    key = next(k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4)
    state[key] = state[key].to(dtype)
    path = tmp_path / f"tampered{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path, key


@pytest.mark.parametrize(
    ("model_type", "suffix", "dtype"),
    [
        ("dpt_hybrid", ".pt", torch.uint8),
        ("depth_anything_v2_vits", ".pth", torch.int8),
        ("depth_anything_v2_vits", ".pth", torch.complex64),
        ("depth_anything_3_small", ".safetensors", torch.bool),
    ],
)
def test_a_non_float_weight_is_refused_in_one_line(
    det_checkpoint, tmp_path, model_type, suffix, dtype
):
    import cv2

    path, key = _tampered(det_checkpoint, tmp_path, model_type, suffix, dtype)
    cv2.imwrite(str(tmp_path / "in.png"), small_image())
    done = attack(
        [*DPT_ROS, "predict", "--model-type", model_type, "--weights", str(path)]
        + [
            "--network-size",
            "64x64" if model_type.startswith("dpt") else "70x70",
            "--backend",
            "torch",
            "--device",
            "cpu",
        ]
        + ["--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out")],
        timeout=120,
    )
    name = str(dtype).removeprefix("torch.")
    assert done.rc == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.error_lines()
    assert len(lines) <= 3, lines  # the error, and at most a warning or two before it
    error = lines[-1]
    assert error.startswith("dpt-ros: error:"), error
    assert f"{key} is {name}" in error and "expected floating point" in error, error
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.npy"))
