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

(``--windows`` and ``--aligned`` for the window goldens).

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

``--windows`` writes ``test/fixtures/compact/da3/window_<case>.compact.npz``: the
any-view forward on windows of N views (``DepthAnything3Net.forward(x, extrinsics,
intrinsics, ref_view_strategy=...)``, float32, CPU), each view a crop of ``scene_a.png``
(boxes in ``crops``: top, left, height, width), all crops of a window the same size and
then resized with OpenCV ``INTER_AREA`` to ``resize_hw`` where that is not (0, 0); the
cases differ in image size, process_res, N and strategy (:data:`WINDOW_CASES`). Entries:

- ``net_input`` (N, 3, h, w) from ``InputProcessor``; ``depth`` and ``confidence``
  (N, h, w): the head's outputs (compact);
- ``extrinsics`` (N, 3, 4) camera-from-world and ``intrinsics`` (N, 3, 3) as the
  forward returns them, ``pose_encoding`` (N, 9) from the camera decoder,
  ``reference_view`` (the view the backbone chose; 0 below 3 views), ``strategy``;
- with known cameras: ``known_extrinsics`` (N, 4, 4, already normalised as the
  reference's ``DepthAnything3.inference`` normalises them) and ``known_intrinsics``
  (N, 3, 3, network grid) as given to the forward, ``known_intrinsics_image`` (N, 3, 3)
  on the crops.

``--aligned`` writes ``test/fixtures/compact/da3/aligned_<case>.compact.npz``: the
reference API's conditioned path (``DepthAnything3.inference`` with ``extrinsics``,
``intrinsics`` and ``align_to_input_ext_scale=True``), run step by step with the API's
own functions but without its autocast (:func:`run_aligned_case`), for cameras given in
metres (:func:`metre_cameras`). Its alignment needs evo and scipy in the reference venv
(``/work/da3ref/bin/pip install --no-deps evo==1.38.1`` and ``pip install scipy``); the
API's exporters (moviepy ...) are not needed. Entries: ``depth``, ``confidence`` (N, h,
w, compact), ``extrinsics`` (N, 3, 4) and ``intrinsics`` (N, 3, 3) after the alignment,
``scale`` (the Umeyama scale the depth was divided by), ``predicted_extrinsics`` (the
network's cameras before it), ``given_extrinsics`` (N, 4, 4) and ``given_intrinsics``
(N, 3, 3, pixels of the crops) as passed to the API, and the crops as above.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class WindowCase:
    """One window golden: ``crops`` (top, left, height, width) of scene_a, resized to
    ``resize_hw`` ((0, 0): not resized)."""

    name: str
    model_type: str
    process_res: int
    strategy: str
    crops: tuple[tuple[int, int, int, int], ...]
    resize_hw: tuple[int, int] = (0, 0)
    known_cameras: bool = False


#: The window cases: different image sizes (landscape, portrait, resized), N = 2 to 4.
WINDOW_CASES = (
    WindowCase(
        "small_n2_168", "depth_anything_3_small", 168, "saddle_balanced",
        ((0, 0, 360, 480), (100, 140, 360, 480)),
    ),
    WindowCase(
        "small_n3_first_196", "depth_anything_3_small", 196, "first",
        ((0, 100, 420, 300), (40, 220, 420, 300), (60, 330, 420, 300)),
    ),
    WindowCase(
        "base_n3_saddle_224", "depth_anything_3_base", 224, "saddle_balanced",
        ((0, 0, 480, 560), (0, 40, 480, 560), (0, 80, 480, 560)),
        resize_hw=(240, 280),
    ),
    WindowCase(
        "small_n4_sim_range_140", "depth_anything_3_small", 140, "saddle_sim_range",
        ((0, 0, 300, 400), (60, 80, 300, 400), (120, 160, 300, 400), (180, 240, 300, 400)),
    ),
    WindowCase(
        "small_n3_known_168", "depth_anything_3_small", 168, "saddle_balanced",
        ((0, 0, 360, 480), (60, 80, 360, 480), (120, 160, 360, 480)),
        known_cameras=True,
    ),
)  # fmt: skip


def window_images(case: WindowCase) -> list[np.ndarray]:
    """The case's views: crops of scene_a (RGB uint8), resized where it says."""
    import cv2

    bgr = cv2.imread(str(FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    views = []
    for top, left, height, width in case.crops:
        view = np.ascontiguousarray(rgb[top : top + height, left : left + width])
        if case.resize_hw != (0, 0):
            view = cv2.resize(view, case.resize_hw[::-1], interpolation=cv2.INTER_AREA)
        views.append(view)
    return views


def known_cameras(views: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4, 4) camera-from-world of cameras on a gentle arc, and (N, 3, 3) intrinsics
    of the crops (pixels of the 360x480 crop).

    Already as the reference's ``DepthAnything3.inference`` normalises known cameras
    before its network (the first camera at the world's origin, the median camera
    distance 1), so the network's input equals what the API would give it."""
    extrinsics = np.tile(np.eye(4, dtype=np.float64), (views, 1, 1))
    for i in range(views):
        angle = 0.1 * i
        c, s = np.cos(angle), np.sin(angle)
        extrinsics[i, :3, :3] = [[c, 0, -s], [0, 1, 0], [s, 0, c]]
        extrinsics[i, :3, 3] = [-0.3 * i, 0.05 * i, 0.1 * i]
    centres = -np.einsum("nji,nj->ni", extrinsics[:, :3, :3], extrinsics[:, :3, 3])
    extrinsics[:, :3, 3] /= np.median(np.linalg.norm(centres, axis=-1))
    k = np.array([[450.0, 0, 240.0], [0, 440.0, 180.0], [0, 0, 1]], dtype=np.float32)
    return extrinsics.astype(np.float32), np.tile(k, (views, 1, 1))


def run_window_case(case: WindowCase) -> dict[str, np.ndarray]:
    from depth_anything_3.model.dinov2 import vision_transformer
    from depth_anything_3.utils.io.input_processor import InputProcessor

    layout = deterministic_weights.read_layout(FIXTURES / "keys" / f"keys_{case.model_type}.json")
    state = deterministic_weights.deterministic_state_dict(layout)
    model = build_reference(case.model_type)
    model.load_state_dict(state, strict=True)

    views = window_images(case)
    extrinsics = intrinsics = None
    if case.known_cameras:
        extrinsics, intrinsics = known_cameras(len(views))
    images, _, net_intrinsics = InputProcessor()(
        image=views,
        intrinsics=intrinsics,
        process_res=case.process_res,
        process_res_method="upper_bound_resize",
        num_workers=1,
    )
    x = images[None].float()  # (B=1, N, 3, h, w)

    chosen: list[int] = []
    select = vision_transformer.select_reference_view

    def recording_select(tokens, strategy="saddle_balanced"):
        found = select(tokens, strategy=strategy)
        chosen.append(int(found[0]))
        return found

    vision_transformer.select_reference_view = recording_select
    captured: dict[str, torch.Tensor] = {}
    model.cam_dec.register_forward_hook(
        lambda _m, _i, out: captured.update(pose=out.detach().clone())
    )
    known = {}
    if extrinsics is not None:
        known = {
            "extrinsics": torch.from_numpy(extrinsics)[None],
            "intrinsics": net_intrinsics[None],
        }
    try:
        torch.manual_seed(0)
        with torch.no_grad():
            out = model(x, ref_view_strategy=case.strategy, **known)
    finally:
        vision_transformer.select_reference_view = select
    result: dict[str, np.ndarray] = {
        "net_input": x[0].numpy(),
        "depth": out.depth[0].numpy(),
        "confidence": out.depth_conf[0].numpy(),
        "extrinsics": out.extrinsics[0].numpy(),
        "intrinsics": out.intrinsics[0].numpy(),
        "pose_encoding": captured["pose"][0].numpy(),
        "reference_view": np.asarray(chosen[0] if chosen else 0, dtype=np.int64),
        "strategy": np.asarray(case.strategy),
        "crops": np.asarray(case.crops, dtype=np.int64),
        "resize_hw": np.asarray(case.resize_hw, dtype=np.int64),
        "process_res": np.asarray(case.process_res, dtype=np.int64),
        "net_size": np.asarray(x.shape[-2:], dtype=np.int64),
    }
    if extrinsics is not None:
        result["known_extrinsics"] = extrinsics
        result["known_intrinsics"] = net_intrinsics.numpy()
        result["known_intrinsics_image"] = intrinsics
    return result


#: Arrays of a window golden stored whole (small); the others are compact.
_WHOLE = (
    "extrinsics", "intrinsics", "pose_encoding", "crops", "known_extrinsics",
    "known_intrinsics", "known_intrinsics_image", "predicted_extrinsics", "given_extrinsics",
    "given_intrinsics",
)  # fmt: skip


def write_window_golden(case: WindowCase) -> None:
    result = run_window_case(case)
    out = write_compact(case, result, "window")
    summary = ", ".join(
        f"{k} {tuple(result[k].shape)} [{result[k].min():.4g}, {result[k].max():.4g}]"
        for k in ("depth", "confidence")
    )
    print(f"{out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB): {summary}")
    print(f"  reference view {int(result['reference_view'])} ({case.strategy})")
    print(f"  extrinsics[-1]: {result['extrinsics'][-1].round(4).tolist()}")
    print(f"  intrinsics[0]: {result['intrinsics'][0].round(3).tolist()}")


def write_compact(case: WindowCase, result: dict[str, np.ndarray], prefix: str) -> Path:
    """``fixtures/compact/da3/<prefix>_<case>.compact.npz``: the maps compact, the
    rest whole."""
    rng = np.random.default_rng([case.process_res, len(case.crops), len(case.name)])
    compact: dict[str, np.ndarray] = {}
    for name, array in result.items():
        if array.ndim >= 3 and name not in _WHOLE:
            compact.update(compact_entries(name, array, rng))
        else:
            compact[name] = array
    out = FIXTURES / "compact" / "da3" / f"{prefix}_{case.name}.compact.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **compact)
    return out


#: Windows through the reference API's conditioned path, aligned to the given cameras.
ALIGNED_CASES = (
    WindowCase(
        "small_n3_168", "depth_anything_3_small", 168, "saddle_balanced",
        ((0, 0, 360, 480), (60, 80, 360, 480), (120, 160, 360, 480)),
        known_cameras=True,
    ),
    WindowCase(  # 10 views: the reference fits by RANSAC
        "small_n10_ransac_140", "depth_anything_3_small", 140, "saddle_balanced",
        tuple((20 * i, 30 * i, 240, 320) for i in range(10)),
        known_cameras=True,
    ),
)  # fmt: skip


def metre_cameras(views: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4, 4) float32 camera-from-world of a camera that moves about 0.3 m per view
    (a little sideways, up and turning, so the centres are not on one line) in an
    arbitrary world (tilted, the first camera far from the origin): odometry-like, in
    metres, not normalised; and (N, 3, 3) intrinsics of (height, width) crops."""

    def turn(angle: float, axis: int) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i] = r[j, j] = c
        r[i, j], r[j, i] = -s, s
        return r

    tilt = turn(0.2, 0) @ turn(0.4, 2)
    extrinsics = np.tile(np.eye(4), (views, 1, 1))
    for i in range(views):
        rotation = turn(0.08 * i, 1) @ tilt
        centre = np.array([1.5 + 0.3 * i, -0.8 + 0.04 * i * i, 0.9 + 0.05 * i])
        extrinsics[i, :3, :3] = rotation
        extrinsics[i, :3, 3] = -rotation @ centre
    fx, fy = 450 / 480 * width, 440 / 480 * width
    k = np.array([[fx, 0, width / 2], [0, fy, height / 2], [0, 0, 1]], dtype=np.float32)
    return extrinsics.astype(np.float32), np.tile(k, (views, 1, 1))


def run_aligned_case(case: WindowCase) -> dict[str, np.ndarray]:
    """The reference API's conditioned path (``DepthAnything3.inference`` with
    ``extrinsics``, ``intrinsics`` and ``align_to_input_ext_scale=True``), step by step
    with its own functions but without its autocast: ``InputProcessor``,
    ``_normalize_extrinsics``, the network in float32, ``OutputProcessor``,
    ``_align_to_input_extrinsics_intrinsics`` (the scale recorded from its
    ``align_poses_umeyama``)."""
    import types

    # api.py imports its exporters (moviepy, trimesh ...: not in this venv, not used
    # here): a stand-in module for them.
    exporters = types.ModuleType("depth_anything_3.utils.export")
    exporters.export = None  # type: ignore[attr-defined]
    sys.modules.setdefault("depth_anything_3.utils.export", exporters)
    from depth_anything_3 import api
    from depth_anything_3.utils.io.input_processor import InputProcessor
    from depth_anything_3.utils.io.output_processor import OutputProcessor

    layout = deterministic_weights.read_layout(FIXTURES / "keys" / f"keys_{case.model_type}.json")
    model = build_reference(case.model_type)
    model.load_state_dict(deterministic_weights.deterministic_state_dict(layout), strict=True)
    views = window_images(case)
    given_extrinsics, given_intrinsics = metre_cameras(len(views), *views[0].shape[:2])
    images, extrinsics, intrinsics = InputProcessor()(
        image=views,
        extrinsics=given_extrinsics.copy(),
        intrinsics=given_intrinsics.copy(),
        process_res=case.process_res,
        process_res_method="upper_bound_resize",
        num_workers=1,
    )
    x = images[None].float()
    # The API's methods use nothing of their instance: called on the class.
    normalised = api.DepthAnything3._normalize_extrinsics(None, extrinsics[None].float().clone())
    fits: list[tuple] = []
    align = api.align_poses_umeyama

    def recording_align(*args, **kwargs):
        fits.append(align(*args, **kwargs))
        return fits[-1]

    api.align_poses_umeyama = recording_align
    try:
        torch.manual_seed(0)
        with torch.no_grad():
            out = model(x, normalised, intrinsics[None].float(), ref_view_strategy=case.strategy)
        prediction = OutputProcessor()(out)
        predicted = prediction.extrinsics.copy()
        prediction = api.DepthAnything3._align_to_input_extrinsics_intrinsics(
            None, extrinsics, intrinsics, prediction, True
        )
    finally:
        api.align_poses_umeyama = align
    return {
        "net_input": x[0].numpy(),
        "depth": np.asarray(prediction.depth, dtype=np.float32),
        "confidence": np.asarray(prediction.conf, dtype=np.float32),
        "extrinsics": np.asarray(prediction.extrinsics, dtype=np.float32),
        "intrinsics": np.asarray(prediction.intrinsics, dtype=np.float32),
        "scale": np.float64(fits[0][2]),
        "predicted_extrinsics": np.asarray(predicted, dtype=np.float32),
        "given_extrinsics": given_extrinsics,
        "given_intrinsics": given_intrinsics,
        "strategy": np.asarray(case.strategy),
        "crops": np.asarray(case.crops, dtype=np.int64),
        "resize_hw": np.asarray(case.resize_hw, dtype=np.int64),
        "process_res": np.asarray(case.process_res, dtype=np.int64),
        "net_size": np.asarray(x.shape[-2:], dtype=np.int64),
    }


def write_aligned_golden(case: WindowCase) -> None:
    result = run_aligned_case(case)
    out = write_compact(case, result, "aligned")
    summary = ", ".join(
        f"{k} {tuple(result[k].shape)} [{result[k].min():.4g}, {result[k].max():.4g}]"
        for k in ("depth", "confidence")
    )
    print(f"{out.relative_to(ROOT)} ({out.stat().st_size // 1024} KB): {summary}")
    print(f"  scale {float(result['scale']):.6g} (network units per metre)")
    print(f"  predicted extrinsics[-1]: {result['predicted_extrinsics'][-1].round(4).tolist()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", action="store_true", help="write the key layouts")
    parser.add_argument("--goldens", action="store_true", help="write the compact goldens")
    parser.add_argument("--windows", action="store_true", help="write the window goldens")
    parser.add_argument(
        "--aligned", action="store_true", help="write the goldens aligned to given cameras"
    )
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
    if args.windows:
        for case in WINDOW_CASES:
            if case.model_type in types:
                write_window_golden(case)
    if args.aligned:
        for case in ALIGNED_CASES:
            if case.model_type in types:
                write_aligned_golden(case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
