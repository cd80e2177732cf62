"""``dpt-ros bag`` over many bags: here, and on a real local Ray. Nothing lost, nothing
done twice, outputs identical to single-bag runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_cases import assert_same_outputs, run_fleet
from helpers import NET, one_error_line, tree_hash, write_bag

from dpt_ros.cli.bag import fleet
from dpt_ros.cli.main import main


def test_sequential_fleet_isolates_failures_and_skips_finished(
    tmp_path, capsys, inputs, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # without --ray, Ray is never imported
    out = tmp_path / "out"
    code, stdout, _ = run_fleet(capsys, *inputs, "-o", out)
    assert code == 1  # the corrupt bag failed
    rows = {
        line.split()[0]: line
        for line in stdout.splitlines()
        if line.startswith(str(inputs[0].parent))
    }
    assert " done" in rows[str(inputs[0])] and " done" in rows[str(inputs[1])]
    assert "failed: cannot read" in rows[str(inputs[2])]
    assert "3 bag(s): 2 done, 0 skipped, 1 failed" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["run_a", "run_b"]  # no partial left

    # Identical to a single-bag run of the same bag.
    single = tmp_path / "single_a"
    assert (
        main(["bag", str(inputs[0]), "-o", str(single), "--image-topic", "/cam/image_raw", *NET])
        == 0
    )
    capsys.readouterr()
    assert_same_outputs(out / "run_a", single)
    assert_same_outputs(out / "run_b", single)  # after run_a in the same pipeline

    # A second run skips what is finished and redoes a killed run's partial output.
    (out / "run_b").rename(out / ".run_b.partial")
    code, stdout, _ = run_fleet(capsys, *inputs, "-o", out)
    assert code == 1
    assert "3 bag(s): 1 done, 1 skipped, 1 failed" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["run_a", "run_b"]
    assert_same_outputs(out / "run_b", single)  # same frames as run_a


def test_several_inputs_need_distinct_names(tmp_path, capsys, inputs):
    code, _, err = run_fleet(capsys, inputs[0], inputs[0], "-o", tmp_path / "o")
    assert code == 2 and "would both write" in err


def test_outputs_among_the_inputs_are_refused(tmp_path, capsys):
    """An output that would be an input (taken for its own finished output), lie inside
    an input bag (written into it), or hold an input (removed as a stale output) is
    refused before anything is written."""
    root = tmp_path / "in"
    write_bag(root / "a")
    write_bag(root / "b", storage="mcap")
    loose = tmp_path / "loose" / "c"  # a bare .mcap file, in a folder named as its output
    loose.mkdir(parents=True)
    (loose / "c.mcap").write_bytes(next((root / "b").glob("*.mcap")).read_bytes())
    before = {p: tree_hash(p) for p in (root, loose)}
    entries = sorted(tmp_path.rglob("*"))
    cases = [
        ([root / "a", root / "b"], root, "would be", "which is input"),
        ([root / "a", root / "b"], root / "a", "is inside input bag", str(root / "a")),
        ([root / "a", root / "b"], root / "a" / "deeper", "is inside input bag", ""),
        ([root / "a", loose / "c.mcap"], tmp_path / "loose", "which holds input", "c.mcap"),
    ]
    for inputs, out, *fragments in cases:
        code, _, err = run_fleet(capsys, *inputs, "-o", out)
        one_error_line(code, err, *fragments)
    assert {p: tree_hash(p) for p in (root, loose)} == before
    assert sorted(tmp_path.rglob("*")) == entries  # nothing written


ROOT = Path(__file__).resolve().parents[2]

_HOLD_LOCK = """
import sys, time
from pathlib import Path
from dpt_ros.cli.bag.fleet import output_lock

with output_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_one_run_at_a_time_per_output_directory(tmp_path, capsys):
    """A second run on an output directory is refused while the first holds it, before
    it touches any partial output; once the first is killed (SIGKILL: no clean-up) the
    next run goes ahead."""
    root = tmp_path / "in"
    write_bag(root / "a")
    write_bag(root / "b")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".a.partial").mkdir()  # the first run's bag in progress
    (out / ".a.partial" / "marker").write_text("first run")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert first.stdout.readline() == "locked\n"
        code, _, err = run_fleet(capsys, root / "a", root / "b", "-o", out)
        one_error_line(code, err, f"-o {out} is in use by another", f"(pid {first.pid})")
        assert (out / ".a.partial" / "marker").read_text() == "first run"
        assert sorted(p.name for p in out.iterdir()) == [".a.partial", ".dpt-ros-bag.lock"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    code, stdout, err = run_fleet(capsys, root / "a", root / "b", "-o", out)
    assert code == 0, err
    assert "2 bag(s): 2 done" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]  # the lock file removed


def test_a_single_run_honours_a_fleets_lock(tmp_path, capsys):
    """``dpt-ros bag IN -o OUTDIR/x`` while a fleet writes into OUTDIR is refused before
    it writes anything (it used to write beside the fleet's partial outputs); with the
    fleet gone it runs."""
    write_bag(tmp_path / "a")
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert first.stdout.readline() == "locked\n"
        code, _, err = run_fleet(capsys, tmp_path / "a", "-o", out / "a")
        one_error_line(code, err, f"{out} is in use by a dpt-ros bag run", f"(pid {first.pid})")
        assert sorted(p.name for p in out.iterdir()) == [".dpt-ros-bag.lock"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    code, _, err = run_fleet(capsys, tmp_path / "a", "-o", out / "a")
    assert code == 0, err
    assert (out / "a" / "metadata.yaml").is_file()


def test_ray_missing_is_a_clear_error(tmp_path, capsys, inputs, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = run_fleet(capsys, *inputs[:2], "-o", tmp_path / "o", "--ray")
    assert code == 2 and "pip install 'dpt_ros[fleet]'" in err


def test_output_names(tmp_path, monkeypatch):
    (tmp_path / "dir_bag" / "sub").mkdir(parents=True)
    (tmp_path / "file.mcap").write_bytes(b"")
    assert fleet.output_name(tmp_path / "dir_bag") == "dir_bag"
    assert fleet.output_name(tmp_path / "file.mcap") == "file"
    # "." and ".." are named after the directories they are: OUTDIR/dir_bag, not OUTDIR.
    monkeypatch.chdir(tmp_path / "dir_bag" / "sub")
    assert fleet.output_name(Path(".")) == "sub"
    assert fleet.output_name(Path("..")) == "dir_bag"
    specs = fleet.plan([".", "../../file.mcap"], tmp_path / "out")
    assert [s.output for s in specs] == [tmp_path / "out" / "sub", tmp_path / "out" / "file"]
    assert specs[0].partial == tmp_path / "out" / ".sub.partial"
    with pytest.raises(ValueError, match="input bag '/' has no name"):
        fleet.output_name(Path("/"))
