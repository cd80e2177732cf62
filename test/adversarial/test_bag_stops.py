"""``dpt-ros bag`` stopped by signals at every stage, as a user or a supervisor stops it:
SIGTERM while the output is being opened, SIGTERM and SIGINT together, a storm of
them, Ctrl-C mashed until the process is gone. Whatever arrives and whenever, the
output is a valid bag (metadata.yaml written, no sqlite journal) or absent, the exit
status is a signal's (128 + N), stderr has one ``interrupted`` line and no
traceback, and a rerun works."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from attack import DPT_ROS, attack
from helpers import read_bag, write_bag

ROOT = Path(__file__).resolve().parents[2]
#: Enough frames that the run is still going when the signals come.
FRAMES = 30
#: The smallest model, random weights: the program's start-up is most of its time.
FAST = [
    "--depth-model",
    "depth_anything_v2_vits",
    "--network-size",
    "56x56",
    "--random-weights",
    "--backend",
    "torch",
    "-q",
]
#: Peak memory of the program (torch, the small model, small frames).
MAX_RSS_MB = 2000


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def _argv(inp: Path, out: Path) -> list[str]:
    return [*DPT_ROS, "bag", str(inp), "-o", str(out), "--image-topic", "/cam/image_raw", *FAST]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    """Until ``path`` exists (the output is being opened), polled as fast as it goes."""
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0001)


def _valid_or_absent(out: Path) -> int:
    """The frames the output holds: -1 if it is absent; fails unless it is a valid bag."""
    if not out.exists():
        return -1
    names = sorted(p.name for p in out.iterdir())
    assert "metadata.yaml" in names, names
    assert not [n for n in names if n.endswith("-journal") or n.startswith(".")], names
    return len(read_bag(out).get("/cam/depth/relative", []))


def _check_stopped(done, signals: tuple[int, ...]) -> None:
    """Stopped by one of ``signals`` (signals pending together are handled in signal
    number order, not in the order sent: SIGINT before SIGTERM)."""
    assert done.rc in {128 + s for s in signals}, (done.rc, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    stops = [line for line in done.error_lines() if "interrupted" in line]
    assert len(stops) == 1, done.stderr[-3000:]
    assert done.peak_rss_mb < MAX_RSS_MB, done.peak_rss_mb
    assert done.wall_s < 240


def _rerun_works(inp: Path, out: Path) -> None:
    """A rerun into ``out`` if the stop left nothing there, else into a new path."""
    again = out if not out.exists() else out.with_name(out.name + "_again")
    done = attack(_argv(inp, again), env=_env(), timeout=300)
    assert done.rc == 0, done.stderr[-3000:]
    assert _valid_or_absent(again) == FRAMES


@pytest.mark.timeout(1200)
def test_sigterm_while_the_output_opens(tmp_path):
    """It left a directory without metadata.yaml (5 runs of 5), and every rerun was
    refused because the output existed."""
    inp, out = tmp_path / "in", tmp_path / "out"
    write_bag(inp, frames=FRAMES)

    def during(proc: subprocess.Popen) -> None:
        _wait_for(out, proc)
        os.kill(proc.pid, signal.SIGTERM)

    done = attack(_argv(inp, out), env=_env(), during=during, timeout=300)
    _check_stopped(done, (signal.SIGTERM,))
    _valid_or_absent(out)
    _rerun_works(inp, out)


@pytest.mark.parametrize(
    "signals",
    [
        (signal.SIGTERM, signal.SIGINT),  # a supervisor and a user together
        (signal.SIGINT,),  # Ctrl-C mashed until the process is gone
    ],
    ids=["sigterm_and_sigint", "ctrl_c_mashed"],
)
@pytest.mark.timeout(1200)
def test_a_storm_of_signals(tmp_path, signals):
    """From the moment the output exists until the process has exited (through the
    close and the interpreter's shutdown), a signal every millisecond. The close was
    cut short (1 run of 8 for two signals, 3 of 3 for a storm) and Ctrl-C mashing
    ended by SIGINT with an atexit traceback."""
    inp, out = tmp_path / "in", tmp_path / "out"
    write_bag(inp, frames=FRAMES)

    def during(proc: subprocess.Popen) -> None:
        _wait_for(out, proc)
        i = 0
        while proc.poll() is None:
            os.kill(proc.pid, signals[i % len(signals)])
            i += 1
            time.sleep(0.001)

    done = attack(_argv(inp, out), env=_env(), during=during, timeout=300)
    _check_stopped(done, signals)
    _valid_or_absent(out)
    _rerun_works(inp, out)
