#!/usr/bin/env python3
"""Key layout and compact goldens of VGGT, from the reference implementation.

The reference (facebookresearch/vggt at 44b3afb; not on PyPI) is a tool for making these
fixtures, never a dependency of dpt_ros. Put its ``vggt`` package on the path of a
virtual environment of its own, e.g.

    python3 -m venv /work/vggtref
    echo <main venv>/lib/python3.11/site-packages > /work/vggtref/lib/python3.11/site-packages/main.pth
    mkdir /work/vggtref/src && echo /work/vggtref/src > /work/vggtref/lib/python3.11/site-packages/src.pth
    git -C <vggt clone> archive 44b3afb vggt pyproject.toml | tar -x -C /work/vggtref/src
    /work/vggtref/bin/pip install --no-deps einops

and run from the repository root:

    /work/vggtref/bin/python scripts/make_vggt_goldens.py --keys --goldens

``--keys`` writes ``test/fixtures/keys/keys_vggt_1b.json``: the state_dict of
``VGGT(enable_track=False)`` (the official files add ``track_head.*``, which dpt_ros
skips by name).

``--goldens`` writes ``test/fixtures/compact/vggt/vggt_1b_<case>.compact.npz`` for the
cases of ``test/support/vggt_cases.py`` (views cut from scene_a). Each network case:
deterministic weights from ``test/support/deterministic_weights.py``, the views through
the reference's preprocessing rule with its 518 replaced by the case's size N (PIL
bicubic resize to width N and height ``round(h * N / w / 14) * 14``, then ``crop``: the
height centre-cropped to N where larger; ``pad``: the longer side to N, the other
padded with white to N; views of different sizes padded with white to the largest),
then ``VGGT`` in float32 on the CPU. The two ``pre_518_*`` cases run the reference's
own ``load_and_preprocess_images`` (on the views saved as PNG) and prove the rule.
Entries (compact form of ``test/support/goldens.py``): ``net_input`` (S, 3, H, W),
``depth`` (S, H, W), ``depth_conf``, ``world_points`` (S, H, W, 3),
``world_points_conf``, and stored as they are: ``pose_enc`` (S, 9), ``extrinsics``
(S, 3, 4) and ``intrinsics`` (S, 3, 3) from the reference's
``pose_encoding_to_extri_intri``, ``size``.

``--reconstruct`` writes ``test/fixtures/compact/vggt/vggt_1b_reconstruct_<case>.compact.npz``
for the cases of ``vggt_cases.RECONSTRUCT_CASES``: what the reference gives for the frames
of each window that ``dpt-ros reconstruct --window N --overlap K`` makes of a folder of
the case's views (windows of N frames sharing K, the last one holding what is left),
each window prepared by the rule above and run as one forward. Entries per window k,
prefixed ``w<k>_``: ``frames`` (indices into the case's views), compact ``depth``
(S, H, W), ``depth_conf``, ``world_points`` (S, H, W, 3), and whole ``extrinsics``
(S, 3, 4) and ``intrinsics`` (S, 3, 3); plus ``windows`` (their number) and ``size``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "test" / "fixtures"
sys.path.insert(0, str(ROOT / "test" / "support"))

import deterministic_weights  # noqa: E402
import vggt_cases  # noqa: E402

KEYS = FIXTURES / "keys" / "keys_vggt_1b.json"
SAMPLES = 4000
#: Samples per array of the reconstruct goldens (several windows per file).
RECONSTRUCT_SAMPLES = 2000


def build_reference() -> torch.nn.Module:
    from vggt.models.vggt import VGGT

    return VGGT(enable_track=False).eval()


def write_keys() -> None:
    state = build_reference().state_dict()
    keys = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()]
    doc = {
        "model": "vggt_1b (reference facebookresearch/vggt 44b3afb, VGGT(enable_track=False); "
        "the official files add track_head.*)",
        "keys": keys,
    }
    KEYS.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    total = sum(int(np.prod(s)) for _, s, _ in keys)
    print(f"{KEYS.relative_to(ROOT)}: {len(keys)} keys, {total} parameters")


def preprocess_rule(views: list[np.ndarray], size: int, mode: str) -> torch.Tensor:
    """The reference's preprocessing with 518 replaced by ``size``: (S, 3, H, W) in [0, 1]."""
    out = []
    for rgb in views:
        height, width = rgb.shape[:2]
        if mode == "pad" and height > width:
            new_h, new_w = size, round(width * (size / height) / 14) * 14
        else:
            new_w, new_h = size, round(height * (size / width) / 14) * 14
        resized = Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float() / 255.0
        if mode == "crop" and new_h > size:
            top = (new_h - size) // 2
            x = x[:, top : top + size]
        if mode == "pad":
            x = _pad_white(x, size, size)
        out.append(x)
    height = max(x.shape[1] for x in out)
    width = max(x.shape[2] for x in out)
    return torch.stack([_pad_white(x, height, width) for x in out])


def _pad_white(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    dh, dw = height - x.shape[1], width - x.shape[2]
    pad = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)
    return torch.nn.functional.pad(x, pad, value=1.0)


def compact_entries(
    name: str, array: np.ndarray, rng: np.random.Generator, samples: int = SAMPLES
) -> dict:
    """The compact form of one array (see test/support/goldens.py)."""
    index = np.stack([rng.integers(0, n, samples) for n in array.shape], axis=1)
    return {
        f"{name}__index": index.astype(np.int32),
        f"{name}__value": array[tuple(index.T)].astype(np.float32),
        f"{name}__shape": np.asarray(array.shape, dtype=np.int64),
        f"{name}__mean": np.float64(array.mean(dtype=np.float64)),
        f"{name}__std": np.float64(array.std(dtype=np.float64)),
    }


def scene_views(case: vggt_cases.VggtCase) -> list[np.ndarray]:
    scene = np.asarray(Image.open(FIXTURES / "scene_a.png").convert("RGB"))
    return [vggt_cases.view(scene, name) for name in case.views]


def run_preprocessing(case: vggt_cases.VggtCase) -> dict[str, np.ndarray]:
    from vggt.utils.load_fn import load_and_preprocess_images

    views = scene_views(case)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, rgb in enumerate(views):
            path = Path(folder) / f"view_{i}.png"
            Image.fromarray(rgb).save(path)
            paths.append(str(path))
        images = load_and_preprocess_images(paths, mode=case.mode)
    rule = preprocess_rule(views, case.size, case.mode)
    if not torch.equal(rule, images):
        raise SystemExit(f"{case.name}: the generalised rule differs from the reference")
    return {"net_input": images.numpy()}


def run_network(case: vggt_cases.VggtCase, model: torch.nn.Module) -> dict[str, np.ndarray]:
    from vggt.utils.pose_enc import pose_encoding_to_extri_intri

    images = preprocess_rule(scene_views(case), case.size, case.mode)
    out = model(images[None])
    extrinsics, intrinsics = pose_encoding_to_extri_intri(out["pose_enc"], images.shape[-2:])
    return {
        "net_input": images.numpy(),
        "depth": out["depth"][0, ..., 0].numpy(),
        "depth_conf": out["depth_conf"][0].numpy(),
        "world_points": out["world_points"][0].numpy(),
        "world_points_conf": out["world_points_conf"][0].numpy(),
        "pose_enc": out["pose_enc"][0].numpy(),
        "extrinsics": extrinsics[0].numpy(),
        "intrinsics": intrinsics[0].numpy(),
    }


def write_reconstruct_golden(case: vggt_cases.ReconstructCase, model: torch.nn.Module) -> None:
    from vggt.utils.pose_enc import pose_encoding_to_extri_intri

    views = vggt_cases.reconstruct_views(case)
    windows = vggt_cases.window_frames(len(views), case.window, case.overlap)
    rng = np.random.default_rng([case.size, case.window, case.overlap, len(case.name)])
    compact: dict[str, np.ndarray] = {
        "size": np.asarray(case.size, dtype=np.int64),
        "windows": np.asarray(len(windows), dtype=np.int64),
    }
    for k, frames in enumerate(windows):
        torch.manual_seed(0)
        images = preprocess_rule([views[i] for i in frames], case.size, case.mode)
        out = model(images[None])
        extrinsics, intrinsics = pose_encoding_to_extri_intri(out["pose_enc"], images.shape[-2:])
        prefix = f"w{k}_"
        compact[prefix + "frames"] = np.asarray(frames, dtype=np.int64)
        compact[prefix + "extrinsics"] = extrinsics[0].numpy().astype(np.float32)
        compact[prefix + "intrinsics"] = intrinsics[0].numpy().astype(np.float32)
        for name, array in (
            ("depth", out["depth"][0, ..., 0].numpy()),
            ("depth_conf", out["depth_conf"][0].numpy()),
            ("world_points", out["world_points"][0].numpy()),
        ):
            compact.update(compact_entries(prefix + name, array, rng, RECONSTRUCT_SAMPLES))
        print(
            f"  {case.name} window {k} frames {frames} input {tuple(images.shape)}: depth "
            f"[{out['depth'].min():.4g}, {out['depth'].max():.4g}]"
        )
    path = vggt_cases.reconstruct_golden_path(case)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **compact)
    print(f"{path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB): {len(windows)} windows")


def write_golden(case: vggt_cases.VggtCase, result: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng([case.size, len(case.views), len(case.name)])
    compact: dict[str, np.ndarray] = {"size": np.asarray(case.size, dtype=np.int64)}
    for name, array in result.items():
        if name in ("pose_enc", "extrinsics", "intrinsics"):
            compact[name] = array.astype(np.float32)
        else:
            compact.update(compact_entries(name, array, rng))
    out = vggt_cases.golden_path(case)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **compact)
    summary = ", ".join(
        f"{k} {tuple(v.shape)} [{v.min():.4g}, {v.max():.4g}]" for k, v in result.items()
    )
    print(f"{out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB): {summary}")
    if "pose_enc" in result:
        print(f"  pose_enc: {result['pose_enc'].round(4).tolist()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", action="store_true", help="write the key layout")
    parser.add_argument("--goldens", action="store_true", help="write the compact goldens")
    parser.add_argument(
        "--reconstruct", action="store_true", help="write the reconstruct window goldens"
    )
    parser.add_argument("--cases", nargs="*", help="only these cases")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    if args.keys:
        write_keys()
    model: torch.nn.Module | None = None

    def loaded() -> torch.nn.Module:
        nonlocal model
        if model is None:
            start = time.perf_counter()
            model = build_reference()
            # tensor by tensor into the model's own: one copy of the 1.19 B parameters
            # (the same values as load_state_dict of deterministic_state_dict)
            state = model.state_dict()
            layout = deterministic_weights.read_layout(KEYS)
            if sorted(state) != sorted(k for k, _, _ in layout):
                raise SystemExit(f"{KEYS.relative_to(ROOT)} is not the reference's layout")
            for key, shape, dtype in layout:
                state[key].copy_(deterministic_weights.deterministic_tensor(key, shape, dtype))
            print(f"deterministic weights: {time.perf_counter() - start:.0f} s", flush=True)
        return model

    if args.goldens:
        cases = [c for c in vggt_cases.CASES if not args.cases or c.name in args.cases]
        for case in cases:
            if not case.network:
                write_golden(case, run_preprocessing(case))
                continue
            torch.manual_seed(0)
            write_golden(case, run_network(case, loaded()))
    if args.reconstruct:
        for recon in vggt_cases.RECONSTRUCT_CASES:
            if not args.cases or recon.name in args.cases:
                write_reconstruct_golden(recon, loaded())
    return 0


if __name__ == "__main__":
    sys.exit(main())
