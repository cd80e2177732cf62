"""``dpt-ros reconstruct`` end to end against Depth Anything 3's window goldens (the
reference ``depth-anything-3`` 0.1.1 on several views; see
``test_da3_window_goldens.py`` and ``scripts/make_da3_goldens.py --windows``).

Each golden without known cameras becomes a folder of its views (PNG, lossless, named
so that sorting keeps their order); the command runs in-process on the deterministic
weights with one window of all the views, no overlap, the network grid and the golden's
``process_res`` and reference-view strategy; ``windows/0000.npz`` must hold the
golden's outputs to 1e-3 of each output's maximum magnitude (the issue's bound).
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_cases import run, write_rgb
from da3_cases import hub_file, whole_error, window_model_type, window_views
from goldens import FIXTURES, Golden

#: windows/<k>.npz against the reference, relative to each output's maximum magnitude.
RTOL = 1e-3

#: The goldens without known cameras, smallest first (the tool gives no known cameras).
CASES = (
    "window_small_n2_168",
    "window_small_n3_first_196",
    "window_base_n3_saddle_224",
    "window_small_n4_sim_range_140",
)


def _golden(case: str) -> Golden:
    return Golden.load(FIXTURES / "compact" / "da3" / f"{case}.compact.npz")


@pytest.fixture(scope="module")
def weights(module_tmp, detweights, fixtures_dir):
    made: dict[str, str] = {}

    def get(model_type: str) -> str:
        if model_type not in made:
            made[model_type] = hub_file(
                detweights, fixtures_dir, model_type, module_tmp(model_type)
            )
        return made[model_type]

    return get


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.removeprefix("window_"))
def test_reconstruct_window_matches_the_reference(capsys, tmp_path, weights, case):
    golden = _golden(case)
    assert "known_extrinsics" not in golden.compact
    views = window_views(golden)
    folder = tmp_path / "images"
    folder.mkdir()
    names = [f"view_{i:02d}.png" for i in range(len(views))]
    for name, view in zip(names, views):
        write_rgb(folder / name, view)
    res = int(golden.raw("process_res"))
    out = tmp_path / "out"
    rc, stdout, stderr = run(
        capsys,
        "reconstruct",
        folder,
        "-o",
        out,
        "--model-type",
        window_model_type(case),
        "--weights",
        weights(window_model_type(case)),
        "--window",
        len(views),
        "--overlap",
        0,
        "--output-size",
        "network",
        "--network-size",
        f"{res}x{res}",
        "--reference-view",
        str(golden.raw("strategy")),
        "--device",
        "cpu",
        "--backend",
        "torch",
        "--precision",
        "fp32",
    )
    assert rc == 0, stderr
    assert sorted(p.name for p in (out / "windows").iterdir()) == ["0000.npz"]
    with np.load(out / "windows" / "0000.npz") as found:
        assert [str(n) for n in found["names"]] == names
        assert int(found["reference_view"]) == int(golden.raw("reference_view"))
        got = {
            "depth": golden.relative_error("depth", found["depth"]),
            "confidence": golden.relative_error("confidence", found["confidence"]),
            "camera_from_world": whole_error(found["camera_from_world"], golden.raw("extrinsics")),
            "intrinsics": whole_error(found["intrinsics"], golden.raw("intrinsics")),
        }
        assert found["depth"].shape == golden.shape("depth")
        assert found["confidence"].shape == golden.shape("confidence")
    print(case, {k: f"{v:.2e}" for k, v in got.items()})
    assert all(v <= RTOL for v in got.values()), got
