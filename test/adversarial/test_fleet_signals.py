"""Signals at every stage of a sequential fleet (``dpt-ros bag IN1 IN2 IN3 -o OUTDIR``),
in a real process: before the first bag, with a bag half written, and a storm of them.
The contract (docs/failure_behaviour.md): the run stops with the signal's exit status
and no traceback; every finished output is a complete bag, a half-written one is never
left in a finished output's place; and a rerun finishes the rest and skips the done."""

from __future__ import annotations

import os
import signal
import time

import pytest
from attack import DPT_ROS, attack
from helpers import NET, read_bag, write_bag

#: A fleet on a tiny random network peaks near 1.3 GB.
PEAK_MB = 2000


def _fleet(tmp_path):
    inputs = []
    for name in ("run_a", "run_b", "run_c"):
        write_bag(tmp_path / name)
        inputs.append(str(tmp_path / name))
    out = tmp_path / "out"
    return [*DPT_ROS, "bag", *inputs, "-o", str(out), "--image-topic", "/cam/image_raw", *NET], out


def _wait_for(predicate, deadline_s: float = 240.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _finished(out) -> list[str]:
    return (
        sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []
    )


STAGES = {
    # the output directory exists: the fleet has started, no bag is done yet
    "start": lambda out: out.is_dir(),
    # the second bag is being written
    "mid-bag": lambda out: (out / ".run_b.partial").is_dir(),
}


#: (signal, stage, a storm of 20 or one): each signal at each stage, each once as a storm.
CASES = [
    (signal.SIGINT, "start", False),
    (signal.SIGTERM, "start", True),
    (signal.SIGINT, "mid-bag", True),
    (signal.SIGTERM, "mid-bag", False),
]


@pytest.mark.parametrize(
    "signum,stage,storm",
    CASES,
    ids=[f"{s.name}-{stage}-{'storm' if storm else 'one'}" for s, stage, storm in CASES],
)
def test_a_stopped_fleet_leaves_only_finished_bags_and_resumes(tmp_path, signum, stage, storm):
    argv, out = _fleet(tmp_path)

    def stop(proc) -> None:
        assert _wait_for(lambda: proc.poll() is not None or STAGES[stage](out)), stage
        for _ in range(20 if storm else 1):
            if proc.poll() is not None:
                break
            os.kill(proc.pid, signum)
            time.sleep(0.005)

    done = attack(argv, during=stop, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.rc in (128 + signum, 0), (done.rc, done.stderr)  # 0: it had just finished
    for name in _finished(out):  # whatever stands under its own name is a whole bag
        assert len(read_bag(out / name)["/cam/depth/relative"]) == 4, name
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb

    again = attack(argv, timeout=600)
    assert again.rc == 0, again.stderr
    assert _finished(out) == ["run_a", "run_b", "run_c"]
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "partial" in p.name]
    for name in _finished(out):
        assert len(read_bag(out / name)["/cam/depth/relative"]) == 4, name
