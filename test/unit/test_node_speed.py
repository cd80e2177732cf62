"""The cloud's timing for Nav2's freshness checks: the documented figures (each one in
the documentation's own tables), the ranges they give, and a running node's
/diagnostics values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dpt_ros.models.registry import MODEL_SPECS
from dpt_ros.node.params import PARAMS
from dpt_ros.ros.node_speed import SPEED_FIGURES, Range, estimate, figure_problem, measured

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = {p.name: p.default for p in PARAMS}


def documentation_lines() -> list[str]:
    """Every line of the README and docs/ (where the README's sections may move)."""
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [line for f in files for line in f.read_text().splitlines()]


def test_every_figure_is_in_a_documented_table_row():
    lines = documentation_lines()
    for figure in SPEED_FIGURES:
        rows = [
            line for line in lines if line.startswith(f"| {figure.row} |") and figure.cell in line
        ]
        assert len(rows) == 1, (figure, rows)
        number = re.match(r"(\d+(?:\.\d+)?) ms", figure.cell)
        assert number and float(number.group(1)) == figure.pipeline_ms, figure
        assert figure.model in MODEL_SPECS and figure.backend in ("torch", "onnxruntime")


def test_figures_give_a_range_and_never_a_guess():
    da3 = {**DEFAULTS, "depth.model_type": "depth_anything_3_small", "device": "cpu"}
    torch = estimate({**da3, "backend": "torch"})
    assert torch.interval == Range(0.52, 0.52) and torch.age.low == pytest.approx(1.04)
    auto = estimate({**da3, "backend": "auto"})
    assert auto.interval == Range(0.451, 0.52)
    assert "onnxruntime 451 ms, torch 520 ms" in auto.source
    # dpt_hybrid has a torch figure only: auto is at most that, its low bound unknown.
    hybrid = estimate({**da3, "depth.model_type": "dpt_hybrid", "backend": "auto"})
    assert hybrid.interval == Range(None, 1.484)
    # Segmentation or several cameras: at least the figure.
    both = estimate({**da3, "backend": "torch", "segmentation.model_type": "dpt_hybrid_ade20k"})
    assert both.interval == Range(0.52, None) and "segmentation model adds" in both.source
    for change, why in (
        ({"device": "auto"}, "device auto"),
        ({"device": "cuda:0"}, "device cuda:0"),
        ({"depth.model_type": "depth_anything_3_metric_large"}, "no documented speed figure"),
        ({"precision": "bf16"}, "fp32"),
        ({"compile": "default"}, "torch.compile"),
        ({"network_width": 280}, "network size"),
        ({"warmup_width": 0, "warmup_height": 0}, "640x480 camera"),
    ):
        timing = estimate({**da3, **change})
        assert timing.interval == Range(None, None) and timing.age == Range(None, None), change
        assert why in figure_problem({**da3, **change}) and why in timing.source, change
        assert timing.interval.against(0.001) == "unknown"
    # max_rate spaces the frames whatever the device.
    capped = estimate({**da3, "device": "cuda", "max_rate": 2.0})
    assert capped.interval == Range(0.5, None) and capped.interval.against(0.4) == "over"


def test_range_verdicts():
    assert Range(0.9, 1.04).against(1.0) == "unknown"
    assert Range(0.9, 0.95).against(1.0) == "within"
    assert Range(1.01, None).against(1.0) == "over"
    assert Range(None, None).text() == "unknown" and Range(0.5, 0.5).text() == "0.50 s"


#: /diagnostics values as dpt_node publishes them (dpt_ros.node.diagnostics).
VALUES = {
    "input_rate_hz": "30.00",
    "processed_rate_hz": "2.00",
    "processed": "40",
    "latency_ms_median": "612.0",
    "processing_ms_median": "455.0",
    "device": "cpu float32",
    "camera_info": "ok (/camera/camera_info)",
}


def test_measured_from_diagnostics():
    timing = measured([(0.0, VALUES)], "/camera/dpt_node")
    assert timing.interval == Range(0.5, 0.5)  # 1 / 2 Hz, one sample: its window's rate
    assert timing.age.low == pytest.approx(1.112) and timing.age.high == pytest.approx(1.112)
    assert timing.source.startswith("measured by the running /camera/dpt_node (latency 612 ms")
    # Several samples: the frame counter over their span (8 frames in 4 s), not the
    # last window's rate (a slow node's window often holds none).
    samples = [
        (10.0, {**VALUES, "processed": "32"}),
        (14.0, {**VALUES, "processed_rate_hz": "0.00"}),
    ]
    assert measured(samples, "n").interval == Range(0.5, 0.5)
    # Two cameras share each pass: each one's clouds come 2 / rate apart.
    two = {**VALUES, "front.camera_info": "ok", "rear.camera_info": "ok"}
    del two["camera_info"]
    assert measured([(0.0, two)], "n").interval == Range(1.0, 1.0)
    # Idle input (no frame while listening): at least the processing time.
    idle = measured([(0.0, VALUES), (3.0, {**VALUES, "processed_rate_hz": "0.00"})], "n")
    assert idle.interval == Range(0.455, None) and idle.interval.against(10.0) == "unknown"
    # use_sim_time: no latency from stamps; arrival to publish stands for it.
    sim = measured([(0.0, {**VALUES, "latency_ms_median": "unavailable (use_sim_time)"})], "n")
    assert sim.age.low == pytest.approx(0.455 + 0.5)
    with pytest.raises(ValueError, match="processed no frame yet"):
        measured([(0.0, {**VALUES, "processing_ms_median": "nan"})], "/dpt_node")
