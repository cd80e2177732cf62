"""``dpt-ros bench --window``: each side's peak memory measured in a child process of
its own (Depth Anything 3 small at a 56-pixel network, the reference absent)."""

from __future__ import annotations

import json
import sys

from dpt_ros.cli.main import main


def test_the_child_process_measures_ours_alone_without_the_reference(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "depth_anything_3", None)  # not installed
    argv = ["bench", "--model-type", "depth_anything_3_small", "--window", "2", "--device", "cpu"]
    argv += ["--camera-size", "64x48", "--network-size", "56x56", "--iters", "1", "--json"]
    assert main(argv) == 0
    found = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert found["ours_process_peak_rss_mb"] > found["ours_forward_extra_mb"] > 0
    assert not any(key.startswith("reference_") for key in found)
