"""``dpt-ros bench --window N``: a multi-view type's window forward timed beside its
reference (a stand-in here: the references are never installed with the package), what
the figures say where the reference does not import, the peak memory from a child
process, and the refusals. Toy sizes: Depth Anything 3 small at a 56-pixel network."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from da3_cases import stand_in_reference

from dpt_ros.cli import bench_window
from dpt_ros.cli.main import main
from dpt_ros.models.registry import get_spec, window_model_names

SMALL = "depth_anything_3_small"
TOY = ["--device", "cpu", "--camera-size", "64x48", "--network-size", "56x56"]
QUICK = ["--iters", "2", "--warmup", "0", "--json"]


def figures(capsys) -> dict:
    return json.loads(capsys.readouterr().out.splitlines()[-1])


@pytest.fixture
def no_children(monkeypatch) -> list[tuple[tuple[int, ...], bool]]:
    """The peak-memory children replaced by a record of what they were asked (they run
    in test_memory_child_reports_the_forward_s_peak and in the slow tier)."""
    asked: list[tuple[tuple[int, ...], bool]] = []

    def cpu_memory(model_type, x, reference_imports):
        asked.append((tuple(x.shape), reference_imports))
        return {}

    monkeypatch.setattr(bench_window, "_cpu_memory", cpu_memory)
    return asked


def test_without_the_reference_ours_is_timed_and_the_figures_say_it_is_missing(
    monkeypatch, capsys, no_children
):
    monkeypatch.setitem(sys.modules, "depth_anything_3", None)  # not installed
    assert main(["bench", "--model-type", SMALL, "--window", "2", *TOY, *QUICK]) == 0
    found = figures(capsys)
    assert found["reference"].startswith("not installed")
    assert "depth-anything-3==0.1.1" in found["reference"]
    assert (found["window"], found["network_input"], found["precision"]) == (2, "56x42", "float32")
    assert found["ours_float32_ms_median"] > 0
    assert found["ours_float32_ms_per_view"] == pytest.approx(found["ours_float32_ms_median"] / 2)
    assert not any(key.startswith(("reference_", "speedup")) for key in found)
    assert no_children == [((1, 2, 3, 42, 56), False)]  # ours alone


def test_memory_child_reports_the_forward_s_peak(monkeypatch, tmp_path, capsys):
    """One side's figures as a child process prints them (run here in-process); a
    reference that does not import ends the child with the reason."""
    path = tmp_path / "window.pt"
    torch.save(torch.randn(1, 2, 3, 42, 56), path)
    threads = str(torch.get_num_threads())  # the child's setting, here the same
    bench_window.memory_child(["ours", SMALL, str(path), threads])
    found = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert found["process_peak_rss_mb"] > found["forward_extra_mb"] >= 0
    monkeypatch.setitem(sys.modules, "depth_anything_3", None)
    with pytest.raises(SystemExit, match="does not import"):
        bench_window.memory_child(["reference", SMALL, str(path), threads])


@pytest.mark.parametrize("views", [2, 1])
def test_the_reference_runs_in_turns_on_the_same_window(monkeypatch, capsys, no_children, views):
    """The reference gets the same (1, N, 3, h, w) input as ours, one forward per turn;
    ``--window 1`` is a window of one view."""
    calls = stand_in_reference(monkeypatch)
    argv = ["bench", "--model-type", SMALL, "--window", str(views), *TOY, "--iters", "3"]
    assert main([*argv, "--warmup", "1", "--json"]) == 0
    found = figures(capsys)
    assert "da3-small" in found["reference"] and found["window"] == views
    assert calls == [(1, views, 3, 42, 56)] * 4  # one warm-up, then one per turn
    assert no_children == [((1, views, 3, 42, 56), True)]  # both sides' peak memory
    assert found["speedup_vs_reference_float32"] == pytest.approx(
        found["reference_float32_ms_median"] / found["ours_float32_ms_median"]
    )


def test_a_single_frame_type_is_refused_naming_the_window_types(capsys):
    assert main(["bench", "--model-type", "dpt_hybrid", "--window", "2", *TOY]) != 0
    err = capsys.readouterr().err
    assert "dpt_hybrid sees one image at a time" in err
    for name in window_model_names():
        assert name in err
    assert {"depth_anything_3_small", "vggt_1b"} <= set(window_model_names())


@pytest.mark.parametrize(
    "flags, problem",
    [
        (["--precision", "fp16"], "--precision"),
        (["--backend", "onnxruntime"], "--backend torch"),
        (["--batch", "2"], "--batch"),
        (["--compile", "default"], "--compile"),
    ],
)
def test_what_a_window_cannot_time_is_refused(capsys, flags, problem):
    assert main(["bench", "--model-type", SMALL, "--window", "2", *TOY, *flags]) != 0
    assert problem in capsys.readouterr().err


def test_a_window_of_no_views_is_a_usage_error(capsys):
    assert main(["bench", "--model-type", SMALL, "--window", "0", *TOY]) != 0
    assert "--window" in capsys.readouterr().err


def test_vggt_without_its_reference_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vggt", None)
    spec = get_spec("vggt_1b")
    said, network = spec.family.window_reference(spec)
    assert network is None
    assert said.startswith("not installed") and "vggt" in said
