"""``dpt-ros bag`` over many bags: here, and on a real local Ray. Nothing lost, nothing"""

from __future__ import annotations

import pytest
from fleet_cases import assert_same_outputs, run_fleet


def test_ray_pool_keeps_models_loaded_and_matches_sequential(tmp_path, capsys, inputs):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray_out"
        code, stdout, _ = run_fleet(capsys, *inputs, "-o", out, "--ray", "--workers", "1")
        assert code == 1
        lines = [line for line in stdout.splitlines() if line.startswith(str(inputs[0].parent))]
        workers = {line.split()[-1] for line in lines if " done " in line}
        assert len(workers) == 1  # one actor: the model was loaded once for both bags
        assert "3 bag(s): 2 done, 0 skipped, 1 failed" in stdout
        sequential = tmp_path / "seq"
        run_fleet(capsys, *inputs[:2], "-o", sequential)
        for name in ("run_a", "run_b"):
            assert_same_outputs(out / name, sequential / name, exact=False)
    finally:
        ray.shutdown()
