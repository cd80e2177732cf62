#!/usr/bin/env python3
"""Prints how far dpt_ros's Depth Anything 3 is from the reference's goldens.

For each golden (``test/fixtures/compact/da3``, made by ``scripts/make_da3_goldens.py``
from ``depth-anything-3==0.1.1``): ``Predictor.infer`` on the network's grid (what
``dpt-ros predict --output-size network`` writes), and the frame pipeline that the node
and ``dpt-ros bag`` run (``output_size: network``), each as the largest difference
relative to the golden's largest magnitude; the sky as the share of sampled pixels whose
mask agrees.

    python scripts/da3_fidelity.py [--goldens depth_anything_3_small_280 ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

TEST_DIR = Path(__file__).resolve().parents[1] / "test" / "support"
sys.path.insert(0, str(TEST_DIR))

import deterministic_weights  # noqa: E402  (test helpers: generator and goldens)
from goldens import FIXTURES, Golden  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dpt_ros.models import Predictor  # noqa: E402
from dpt_ros.models.families.depth_anything_3 import HUB_PREFIX  # noqa: E402
from dpt_ros.pipeline.frames import FramePipeline  # noqa: E402
from dpt_ros.pipeline.options import PipelineOptions  # noqa: E402
from dpt_ros.ros.image_codec import image_msg_to_array  # noqa: E402

GOLDEN_DIR = FIXTURES / "compact" / "da3"


def _weights(model_type: str, folder: Path) -> str:
    from safetensors.torch import save_file

    layout = deterministic_weights.read_layout(FIXTURES / "keys" / f"keys_{model_type}.json")
    state = deterministic_weights.deterministic_state_dict(layout)
    path = folder / "model.safetensors"
    save_file({HUB_PREFIX + k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


def _camera_info(k: np.ndarray, height: int, width: int) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = [float(v) for v in k.reshape(9)]
    fx, fy, cx, cy = (float(v) for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2]))
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _sampled_error(golden: Golden, name: str, got: np.ndarray, keep=None) -> float:
    index, want = golden.samples(name)
    mask = np.ones(want.shape, bool) if keep is None else keep(index)
    diff = np.abs(got[index][mask].astype(np.float64) - want[mask])
    return float(diff.max() / np.abs(want).max())


def report(stem: str, rgb: np.ndarray, folder: Path) -> list[str]:
    golden = Golden.load(GOLDEN_DIR / f"{stem}_scene_a.compact.npz")
    model_type, res = stem.rsplit("_", 1)
    predictor = Predictor(
        model_type,
        device="cpu",
        weights=_weights(model_type, folder),
        backend="torch",
        network_size=(int(res), int(res)),
    )
    grid = predictor.input_size(rgb.shape[:2])
    rows = []
    k = golden.raw("intrinsics_image") if predictor.is_metric else None
    found = predictor.infer(rgb[None], k, output_hw=grid, fill_sky=True)
    (second,) = predictor.spec.maps
    if predictor.is_metric:
        depth_err = golden.relative_error("metric_depth", found.depth[0])
    elif second == "sky":
        depth_err = golden.relative_error("depth_sky_filled", 1.0 / found.inverse_depth[0])
    else:
        depth_err = golden.relative_error("depth", 1.0 / found.inverse_depth[0])
    second_err = golden.relative_error(second, getattr(found, second)[0])
    rows.append(("predict", depth_err, second_err))

    info = _camera_info(k, *rgb.shape[:2]) if k is not None else None
    pipeline = FramePipeline(predictor, None, PipelineOptions(output_size="network"))
    out = pipeline.process(rgb, Header(), info)
    if predictor.is_metric:
        metres = image_msg_to_array(out.messages["depth/image"])
        sky = image_msg_to_array(out.messages["depth/sky"])
        depth_err = _sampled_error(golden, "metric_depth", metres, lambda i: sky[i] == 0)
        index, want = golden.samples("sky")
        second_err = float(np.mean((sky[index] == 255) == (want >= 0.3)))
    else:
        inverse = image_msg_to_array(out.messages["depth/relative"])
        depth_err = golden.relative_error("depth", 1.0 / inverse)
        second_err = golden.relative_error(
            second, image_msg_to_array(out.messages["depth/confidence"])
        )
    rows.append(("node / bag pipeline", depth_err, second_err))
    h, w = grid
    return [
        f"| `{model_type}` | {res} ({h}x{w}) | {what} | {d:.1e} | "
        + (f"{s:.1e}" if what == "predict" or second == "confidence" else f"{100 * s:.2f} % equal")
        + " |"
        for what, d, s in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stems = sorted(p.name.split("_scene_a")[0] for p in GOLDEN_DIR.glob("*.compact.npz"))
    parser.add_argument("--goldens", nargs="*", default=stems, help=f"of {', '.join(stems)}")
    args = parser.parse_args()
    bgr = cv2.imread(str(FIXTURES / "scene_a.png"), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    print("| model type | process_res (grid) | path | depth | confidence or sky |")
    print("|---|---|---|---|---|")
    for stem in args.goldens:
        with tempfile.TemporaryDirectory() as folder:
            for line in report(stem, rgb, Path(folder)):
                print(line, flush=True)


if __name__ == "__main__":
    main()
