#!/usr/bin/env python3
"""Key layouts and compact goldens of Depth Anything 3, from the reference implementation.

The reference (``depth-anything-3==0.1.1`` on PyPI, ByteDance-Seed/Depth-Anything-3 at
2c21ea8) is a tool for making these fixtures, never a dependency of dpt_ros: install it
in a virtual environment of its own, e.g.

    python3 -m venv /work/da3ref
    echo <main venv>/lib/python3.11/site-packages > /work/da3ref/lib/python3.11/site-packages/main.pth
    /work/da3ref/bin/pip install --no-deps depth-anything-3==0.1.1 einops omegaconf \\
        addict imageio antlr4-python3-runtime==4.9.3

and run from the repository root:

    PYTHONPATH=test /work/da3ref/bin/python scripts/make_da3_goldens.py --keys --goldens

``--keys`` writes ``test/fixtures/keys/keys_depth_anything_3_<type>.json``: the
reference network's state_dict (``DepthAnything3Net``), keys as the network names them.
The hub's ``model.safetensors`` files carry every key with a ``model.`` prefix (the hub
wrapper holds the network as ``model``); the files record it as ``hub_prefix``, and a
loader strips it. The deterministic weights are made from the names without the prefix
(with them, da3-small on scene_a at 280 gives depth 0.10 to 12.5 and confidence 1.1 to
34, the figures of issue 22).

``--goldens`` writes ``test/fixtures/compact/da3/<type>_<process_res>_scene_a.compact.npz``
(the compact format of ``test/support/goldens.py``; in a folder of their own because the checks
of ``test_fixtures.py`` expect every file directly in ``compact/`` to have a full golden
in ``../shared``). Each run: deterministic weights from ``test/support/deterministic_weights.py``
for those key names, ``scene_a.png`` through the reference's ``InputProcessor``
(``upper_bound_resize``), then ``DepthAnything3Net`` in float32 on the CPU (not the
``DepthAnything3`` wrapper, which autocasts to bf16/fp16), seeded first. Entries:

- ``net_input`` (3, h, w): after ``InputProcessor``;
- ``depth`` (h, w): the head's depth (through exp), before any sky filling;
- any-view types: ``confidence`` (h, w) (1 + exp) and ``pose_encoding`` (9,) from the
  camera decoder (translation, quaternion, field of view), stored as it is;
- mono / metric types: ``sky`` (h, w) (ReLU) and ``depth_sky_filled``: the network's
  output, sky pixels (sky >= 0.3) set to the 0.99 quantile of the others' depth;
- with intrinsics: ``intrinsics_image`` (3, 3) for the 640x480 image, ``intrinsics``
  (3, 3) as ``InputProcessor`` rescaled them to the network input (float32, fx and cx by
  w_net / w_image, fy and cy by h_net / h_image, once per resize), and ``metric_depth``:
  ``depth_sky_filled * ((fx + fy) / 2) / 300`` with those rescaled intrinsics (the
  reference's ``apply_metric_scaling``);
- ``image_shape``, ``process_res``, ``net_size`` (h, w).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "test" / "fixtures"
sys.path.insert(0, str(ROOT / "test" / "support"))

import deterministic_weights  # noqa: E402

#: dpt_ros type -> reference config name.
REFERENCE_NAMES = {
    "depth_anything_3_small": "da3-small",
    "depth_anything_3_base": "da3-base",
    "depth_anything_3_large": "da3-large",
    "depth_anything_3_mono_large": "da3mono-large",
    "depth_anything_3_metric_large": "da3metric-large",
}
#: The prefix of every key in the hub's model.safetensors.
HUB_PREFIX = "model."
#: Intrinsics of a 640x480 camera for the metric golden: distinct fx and fy, so that the
#: focal's mean and the per-axis rescaling both show.
SCENE_A_INTRINSICS = np.array(
    [[600.0, 0.0, 319.5], [0.0, 580.0, 239.5], [0.0, 0.0, 1.0]], dtype=np.float32
)
#: (type, process_res, with intrinsics). scene_a is 640x480: 280 -> 280x210 and 504 ->
#: 504x378 need one INTER_AREA resize; 350 -> 350x262 (round(262.5) rounds half to
#: even), then 262 -> 266 (nearest multiple of 14) with INTER_CUBIC: the two-stage path.
CASES = (
    ("depth_anything_3_small", 280, False),
    ("depth_anything_3_small", 504, False),
    ("depth_anything_3_small", 350, False),
    ("depth_anything_3_metric_large", 280, True),
)
SAMPLES = 4000


def build_reference(model_type: str) -> torch.nn.Module:
    from depth_anything_3.cfg import create_object, load_config
    from depth_anything_3.registry import MODEL_REGISTRY

    return create_object(load_config(MODEL_REGISTRY[REFERENCE_NAMES[model_type]])).eval()


def write_keys(model_type: str) -> list[tuple[str, list[int], str]]:
    state = build_reference(model_type).state_dict()
    keys = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()]
    name = REFERENCE_NAMES[model_type]
    doc = {
        "model": f"{model_type} (reference {name}, depth-anything-3 0.1.1; the hub's "
        f"model.safetensors has each key with the prefix '{HUB_PREFIX}')",
        "hub_prefix": HUB_PREFIX,
        "keys": keys,
    }
    path = FIXTURES / "keys" / f"keys_{model_type}.json"
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(keys)} keys")
    return keys


def compact_entries(name: str, array: np.ndarray, rng: np.random.Generator) -> dict:
    """The compact form of one array (see test/support/goldens.py)."""
    index = np.stack([rng.integers(0, n, SAMPLES) for n in array.shape], axis=1)
    return {
        f"{name}__index": index.astype(np.int32),
        f"{name}__value": array[tuple(index.T)].astype(np.float32),
        f"{name}__shape": np.asarray(array.shape, dtype=np.int64),
        f"{name}__mean": np.float64(array.mean(dtype=np.float64)),
        f"{name}__std": np.float64(array.std(dtype=np.float64)),
    }


def run_case(model_type: str, process_res: int, with_intrinsics: bool) -> dict[str, np.ndarray]:
    from depth_anything_3.utils.alignment import apply_metric_scaling
    from depth_anything_3.utils.io.input_processor import InputProcessor

    layout = deterministic_weights.read_layout(FIXTURES / "keys" / f"keys_{model_type}.json")
    state = deterministic_weights.deterministic_state_dict(layout)
    model = build_reference(model_type)
    model.load_state_dict(state, strict=True)

    image = str(FIXTURES / "scene_a.png")
    intrinsics = SCENE_A_INTRINSICS[None] if with_intrinsics else None
    images, _, net_intrinsics = InputProcessor()(
        image=[image],
        intrinsics=intrinsics,
        process_res=process_res,
        process_res_method="upper_bound_resize",
        num_workers=1,
    )
    x = images[None].float()  # (B=1, N=1, 3, h, w)

    captured: dict[str, torch.Tensor] = {}
    model.head.register_forward_hook(
        lambda _m, _i, out: captured.update(head={k: v.clone() for k, v in out.items()})
    )
    if model.cam_dec is not None:
        model.cam_dec.register_forward_hook(
            lambda _m, _i, out: captured.update(pose=out.detach().clone())
        )
    torch.manual_seed(0)  # sky filling samples pixels above 100,000 non-sky ones
    with torch.no_grad():
        out = model(x)

    head = captured["head"]
    arrays: dict[str, np.ndarray] = {
        "net_input": x[0, 0].numpy(),
        "depth": head["depth"][0, 0].numpy(),
    }
    if "depth_conf" in head:
        arrays["confidence"] = head["depth_conf"][0, 0].numpy()
    if "sky" in head:
        arrays["sky"] = head["sky"][0, 0].numpy()
        arrays["depth_sky_filled"] = out.depth[0, 0].numpy()
    raw: dict[str, np.ndarray] = {
        "image_shape": np.asarray([480, 640, 3], dtype=np.int64),
        "process_res": np.asarray(process_res, dtype=np.int64),
        "net_size": np.asarray(x.shape[-2:], dtype=np.int64),
    }
    if "pose" in captured:
        raw["pose_encoding"] = captured["pose"].reshape(-1).numpy().astype(np.float32)
    if with_intrinsics:
        assert net_intrinsics is not None
        raw["intrinsics_image"] = SCENE_A_INTRINSICS
        raw["intrinsics"] = net_intrinsics[0].numpy()
        metric = apply_metric_scaling(out.depth, net_intrinsics[None])  # (B, N, h, w)
        arrays["metric_depth"] = metric[0, 0].numpy()
    return {**arrays, **raw}


def write_golden(model_type: str, process_res: int, with_intrinsics: bool, full: Path | None):
    result = run_case(model_type, process_res, with_intrinsics)
    rng = np.random.default_rng([process_res, len(model_type)])  # reproducible files
    compact: dict[str, np.ndarray] = {}
    for name, array in result.items():
        if array.ndim >= 2 and name not in ("intrinsics", "intrinsics_image"):
            compact.update(compact_entries(name, array, rng))
        else:
            compact[name] = array
    stem = f"{model_type}_{process_res}_scene_a"
    out = FIXTURES / "compact" / "da3" / f"{stem}.compact.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **compact)
    if full is not None:
        full.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(full / f"golden_{stem}.npz", **result)
    summary = ", ".join(
        f"{k} {tuple(v.shape)} [{v.min():.4g}, {v.max():.4g}]"
        for k, v in result.items()
        if v.ndim >= 2
    )
    print(f"{out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB): {summary}")
    if "sky" in result:
        print(f"  sky share (sky >= 0.3): {float((result['sky'] >= 0.3).mean()):.3f}")
    for key in ("intrinsics", "pose_encoding"):
        if key in result:
            print(f"  {key}: {result[key].round(4).tolist()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", action="store_true", help="write the key layouts")
    parser.add_argument("--goldens", action="store_true", help="write the compact goldens")
    parser.add_argument("--full", type=Path, help="also write full goldens to this folder")
    parser.add_argument("--types", nargs="*", help="only these dpt_ros types")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    types = args.types or list(REFERENCE_NAMES)
    if args.keys:
        for model_type in types:
            write_keys(model_type)
    if args.goldens:
        for model_type, res, with_k in CASES:
            if model_type in types:
                write_golden(model_type, res, with_k, args.full)
    return 0


if __name__ == "__main__":
    sys.exit(main())
