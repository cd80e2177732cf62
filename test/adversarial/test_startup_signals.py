"""Signals in the first seconds of a start: ``dpt_node`` imports torch and rclpy for
6-9 s on two cores, the CLI loads its modules for about one. Before: the stop handlers
came after those imports, so Ctrl-C then gave a KeyboardInterrupt traceback and SIGTERM
killed the process (exit by signal). Now the handlers come first: any stop in start-up
ends with one line and no traceback, the node with exit status 0, the CLI with
128 + the signal number as at any other time.

The signal is sent at a stage seen from outside (``/proc``): once the program catches
SIGTERM (its handlers are in, the imports begin), once numpy's C core is mapped (a stop
inside that import surfaces as numpy's ImportError: it was a traceback too), and once
libtorch is mapped (torch is loading); never after a fixed sleep.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from attack import DPT_ROS, attack, catches, has_loaded, program_pid, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NODE = (sys.executable, "-m", "dpt_ros.node.main")
NODE_ARGS = [
    "--ros-args",
    *("-p", "device:=cpu", "-p", "backend:=torch", "-p", "depth.random_weights:=true"),
    *("-p", "network_width:=64", "-p", "network_height:=64"),
]
#: Longest the program may live (s): a hang is a defect; start-up is seconds.
WALL_S = 120.0
#: Peak memory bound (MB): torch and a small model load, nothing more.
PEAK_MB = 3000.0

#: Stages of a start, in order, as seen from outside.
STAGES = {
    "handlers": lambda pid: catches(pid, signal.SIGTERM),  # the imports begin
    "numpy": lambda pid: has_loaded(pid, "_multiarray_umath"),  # numpy's C core loads
    "torch": lambda pid: has_loaded(pid, "libtorch"),  # torch loads
}


def _signal_at(stage: str, signum: int):
    def during(proc: subprocess.Popen) -> None:
        pid = program_pid(proc)
        wait_for(lambda: STAGES[stage](pid), 60, f"stage {stage} of pid {pid}")
        proc.send_signal(signum)  # the launcher forwards it

    return during


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_dpt_node_stopped_in_its_first_seconds(stage, signum):
    done = attack([*NODE, *NODE_ARGS], during=_signal_at(stage, signum), timeout=WALL_S)
    assert done.rc == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.error_lines() == [
        f"[dpt_node] {signal.Signals(signum).name}: stopped during start-up"
    ], done.stderr
    assert done.peak_rss_mb < PEAK_MB


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"]
)
def test_the_cli_stopped_in_its_first_second(tmp_path, stage, signum):
    argv = [
        *DPT_ROS,
        *("predict", "--model-type", "dpt_hybrid", "--random-weights"),
        *("--input", str(FIXTURES / "scene_a.png"), "--output", str(tmp_path / "out")),
        *("--device", "cpu", "--backend", "torch", "--network-size", "64x64"),
    ]
    done = attack(argv, during=_signal_at(stage, signum), timeout=WALL_S)
    assert done.rc == 128 + signum, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.error_lines()
    assert len(lines) == 1 and lines[0].startswith("dpt-ros: interrupted"), done.stderr
    assert done.peak_rss_mb < PEAK_MB
