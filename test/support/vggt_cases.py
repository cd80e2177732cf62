"""VGGT's golden cases, shared by ``scripts/make_vggt_goldens.py`` and the tests: which
views each case sees (cut from scene_a, so that they differ in size and content), at
which network size and in which preprocessing mode."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODEL_TYPE = "vggt_1b"
#: The folder of VGGT's compact goldens.
GOLDEN_DIR = FIXTURES / "compact" / "vggt"

#: Views as (top, left, height, width) windows of the 480x640 scene, optionally mirrored.
_VIEWS = {
    "full": (0, 0, 480, 640, False),
    "mirrored": (0, 0, 480, 640, True),
    "small": (60, 80, 360, 480, False),
    "portrait_a": (30, 40, 420, 300, False),
    "portrait_b": (50, 300, 420, 300, True),
    "portrait_c": (0, 170, 420, 300, False),
    "wide_a": (0, 0, 360, 640, False),
    "wide_b": (120, 0, 360, 640, True),
    "wide_c": (60, 0, 360, 640, False),
    "wide_d": (90, 0, 360, 640, True),
    "wide_e": (30, 0, 360, 640, False),
    "land_a": (0, 0, 400, 560, False),
    "land_b": (40, 40, 400, 560, False),
    "land_c": (80, 80, 400, 560, True),
    "portrait_d": (60, 200, 420, 300, False),
}


@dataclass(frozen=True)
class VggtCase:
    """One golden: views through the preprocessing at ``size``, then the network (or,
    with ``network`` False, the preprocessing only)."""

    name: str
    views: tuple[str, ...]
    size: int
    mode: str
    network: bool = True


CASES = (
    VggtCase("s2_112_crop", ("full", "mirrored"), 112, "crop"),
    VggtCase("s3_126_crop", ("small", "full", "mirrored"), 126, "crop"),
    VggtCase("s3_140_crop", ("portrait_a", "portrait_b", "portrait_c"), 140, "crop"),
    VggtCase("s3_168_pad", ("wide_a", "wide_b", "wide_c"), 168, "pad"),
    VggtCase("pre_518_crop", ("full", "portrait_a"), 518, "crop", network=False),
    VggtCase("pre_518_pad", ("wide_a", "portrait_b"), 518, "pad", network=False),
)


@dataclass(frozen=True)
class ReconstructCase:
    """One golden of ``dpt-ros reconstruct``: a folder of ``views`` (one size), cut into
    windows of ``window`` frames sharing ``overlap``, each window through the
    preprocessing at ``size`` in ``mode`` and the network."""

    name: str
    views: tuple[str, ...]
    size: int
    mode: str
    window: int
    overlap: int


#: Frames of three sizes (400x560, 420x300, 360x640), windows of 3 and 2 views (the
#: shorter last window included), chained and not, both preprocessing modes.
RECONSTRUCT_CASES = (
    ReconstructCase("s2_112_crop", ("land_a", "land_b", "land_c"), 112, "crop", 2, 1),
    ReconstructCase(
        "s3_140_crop", ("portrait_a", "portrait_b", "portrait_c", "portrait_d"), 140, "crop", 3, 1
    ),
    # not chained: on deterministic weights the windows need not agree on their scene
    ReconstructCase(
        "s3_168_pad", ("wide_a", "wide_b", "wide_c", "wide_d", "wide_e"), 168, "pad", 3, 0
    ),
)


def window_frames(frames: int, window: int, overlap: int) -> list[list[int]]:
    """The frame indices of each window: consecutive windows of ``window`` frames that
    share ``overlap``; the last holds what is left (the rule of ``dpt-ros reconstruct``,
    written out here for the goldens)."""
    step = window - overlap
    out = [list(range(s, s + window)) for s in range(0, frames - window + 1, step)]
    last = out[-1][-1] + 1 if out else 0
    if last < frames:
        start = out[-1][0] + step if out else 0
        out.append(list(range(start, frames)))
    return out


def frame_name(i: int) -> str:
    """The file name of the i-th frame of a reconstruct case's folder (PNG, sorted)."""
    return f"frame_{i:02d}.png"


def reconstruct_golden_path(case: ReconstructCase) -> Path:
    return GOLDEN_DIR / f"{MODEL_TYPE}_reconstruct_{case.name}.compact.npz"


def reconstruct_views(case: ReconstructCase) -> list[np.ndarray]:
    scene = scene_rgb()
    return [view(scene, name) for name in case.views]


def view(scene_rgb: np.ndarray, name: str) -> np.ndarray:
    """(h, w, 3) uint8 RGB view ``name`` of the (480, 640, 3) scene."""
    top, left, height, width, mirrored = _VIEWS[name]
    out = scene_rgb[top : top + height, left : left + width]
    return np.ascontiguousarray(out[:, ::-1] if mirrored else out)


def golden_path(case: VggtCase) -> Path:
    return GOLDEN_DIR / f"{MODEL_TYPE}_{case.name}.compact.npz"


def scene_rgb() -> np.ndarray:
    """scene_a as (480, 640, 3) uint8 RGB (Pillow, as the goldens script reads it)."""
    from PIL import Image

    with Image.open(FIXTURES / "scene_a.png") as image:
        return np.asarray(image.convert("RGB"))


def case_views(case: VggtCase) -> list[np.ndarray]:
    scene = scene_rgb()
    return [view(scene, name) for name in case.views]


#: What an official file adds: the track head, skipped by name when read.
TRACK_HEAD_KEY = "track_head.feature_extractor.norm.weight"


@pytest.fixture(scope="session")
def vggt_det_file(tmp_path_factory):
    """VGGT-1B's deterministic weights of ``keys_vggt_1b.json`` as a safetensors file
    with a track-head entry, as the official files have: made once per test run (1.19 B
    parameters, 4.8 GB: minutes on two cores)."""
    import deterministic_weights
    import torch
    from safetensors.torch import save_file

    layout = deterministic_weights.read_layout(FIXTURES / "keys" / f"keys_{MODEL_TYPE}.json")
    state = deterministic_weights.deterministic_state_dict(layout)
    state[TRACK_HEAD_KEY] = torch.ones(128)
    path = tmp_path_factory.mktemp("vggt") / "vggt_1b_det.safetensors"
    save_file(state, str(path))
    return path


@pytest.fixture(scope="session")
def vggt_det_predictor(vggt_det_file):
    """A Predictor of ``vggt_1b`` on that file, PyTorch on the CPU, network size 140
    (the s3_140_crop golden): the one copy of the 1.19 B parameters a run holds."""
    from dpt_ros.models import Predictor

    return Predictor(
        MODEL_TYPE,
        weights=str(vggt_det_file),
        device="cpu",
        backend="torch",
        network_size=(140, 140),
        progress=False,
    )


# --------------------------------------------------------------------------- reduced


def reduced_config():
    """VGGT's blocks, heads and camera decoding at a width and depth small enough to
    export in a minute or two on two cores (1.50 M parameters): 4 block pairs of
    width 64, 2 DINOv2 blocks, the heads reading all four pairs."""
    from dpt_ros.models.network.vggt import VggtConfig

    return VggtConfig(
        embed_dim=64,
        depth=4,
        num_heads=2,
        dino_depth=2,
        dino_heads=2,
        out_layers=(0, 1, 2, 3),
        features=32,
        channels=(32, 64, 64, 64),
        camera_depth=1,
        camera_iterations=2,
    )


def reduced_vggt():
    """The reduced network with deterministic weights: PyTorch's initialisation under
    seed 0 plus seeded noise of 0.05, the layer scales 0.5 (not VGGT's 0.01, so that
    every block counts) and the fields of view through ReLU kept positive (a bias of 1:
    finite focal lengths)."""
    import torch

    from dpt_ros.models.network.vggt import VggtSingleView

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VggtSingleView(reduced_config())
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.add_(0.05 * torch.randn_like(p))
                if name.endswith(".gamma"):
                    p.fill_(0.5)
            model.camera_head.pose_branch.fc2.bias[7:].fill_(1.0)
    return model.eval()


@contextmanager
def reduced_vggt_1b():
    """``vggt_1b`` with ``random_weights`` builds :func:`reduced_vggt` (not 1.19 B
    parameters), and the engine cache builds its engines in this process, where that
    replacement holds (its child process would build the full size)."""
    from dpt_ros.models.network import build as network_build
    from dpt_ros.models.weights import checkpoint
    from dpt_ros.runtime import engine_build, engine_cache

    real = network_build.build_network

    def build(spec):
        return reduced_vggt() if spec.name == MODEL_TYPE else real(spec)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint, "build_network", build)
        patch.setattr(engine_cache, "run_build", engine_build._build)
        yield
