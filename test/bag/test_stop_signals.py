"""``dpt-ros bag`` stopped by SIGTERM or SIGHUP (``timeout``, ``docker stop``, systemd,
a closed terminal) leaves the same valid partial bag as Ctrl-C, with exit status
128 + the signal number. The tool runs in a child process that signals itself while the
third frame is on its way to the model, so the test does not depend on timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import NET, PERIOD, T0, default_signals, read_bag, write_bag

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import os, signal, sys
from dpt_ros.cli.main import main
from dpt_ros.pipeline.frames import FramePipeline

original = FramePipeline.process_batch
calls = []

def signal_on_third(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), int(sys.argv[1]))
    return original(self, *args, **kwargs)

FramePipeline.process_batch = signal_on_third
sys.exit(main(sys.argv[2:]))
"""


def _run_child(child: str, *argv: str) -> subprocess.CompletedProcess:
    """``python -c child argv...`` with this checkout first on the path and the default
    signal handlers (as a shell starts it)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", child, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
        preexec_fn=default_signals,
    )


@pytest.mark.parametrize(
    ("signum", "storage"), [(signal.SIGTERM, "sqlite3"), (signal.SIGHUP, "mcap")]
)
def test_stop_signal_leaves_a_valid_partial_bag(tmp_path, signum, storage):
    inp = tmp_path / "in"
    topic = write_bag(inp, storage=storage)
    outp = tmp_path / "out"
    argv = ["bag", str(inp), "-o", str(outp), "--image-topic", topic, *NET]
    done = _run_child(_CHILD, str(int(signum)), *argv)
    assert done.returncode == 128 + signum, done.stderr
    assert "Traceback" not in done.stderr
    assert "valid bag holding the 2 frame(s)" in done.stderr
    assert (outp / "metadata.yaml").is_file()
    assert not list(outp.glob("*-journal"))
    out = read_bag(outp)
    assert [t for t, _, _ in out["/cam/depth/relative"]] == [T0, T0 + PERIOD]


_CHILD_TWICE = """
import os, signal, sys
from rosbags.rosbag2.storage_mcap import McapWriter
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from dpt_ros.cli.main import main
from dpt_ros.pipeline.frames import FramePipeline

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
first, second = int(sys.argv[1]), int(sys.argv[2])
original = FramePipeline.process_batch
calls = []

def signal_on_third(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 3 and first:
        os.kill(os.getpid(), first)
    return original(self, *args, **kwargs)

def close_then_signal(close):
    # The storage is closed, metadata.yaml not yet written: the middle of the close.
    def wrapper(self, *args, **kwargs):
        close(self, *args, **kwargs)
        print("storage closed", file=sys.stderr, flush=True)
        os.kill(os.getpid(), second)
    return wrapper

FramePipeline.process_batch = signal_on_third
for writer in (McapWriter, Sqlite3Writer):
    writer.close = close_then_signal(writer.close)
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize(
    ("first", "second", "storage", "frames"),
    [
        (signal.SIGTERM, signal.SIGTERM, "sqlite3", 2),
        (signal.SIGINT, signal.SIGINT, "mcap", 2),
        (0, signal.SIGTERM, "sqlite3", 4),  # the run was done: it stops after the close
    ],
)
def test_a_signal_during_the_close_waits_for_it(tmp_path, first, second, storage, frames):
    """A second Ctrl-C or SIGTERM while the output closes (the first one stopped the
    run) no longer cuts the close short: metadata.yaml is written, and the "valid bag"
    line comes after the close. The signal arrives from inside the close itself."""
    inp = tmp_path / "in"
    topic = write_bag(inp, storage=storage)
    outp = tmp_path / "out"
    argv = ["bag", str(inp), "-o", str(outp), "--image-topic", topic, *NET]
    done = _run_child(_CHILD_TWICE, str(int(first)), str(int(second)), *argv)
    assert done.returncode == 128 + (first or second), done.stderr
    assert "Traceback" not in done.stderr
    valid = f"valid bag holding the {frames} frame(s)"
    assert valid in done.stderr
    assert done.stderr.index("storage closed") < done.stderr.index(valid)
    assert (outp / "metadata.yaml").is_file()
    assert not list(outp.glob("*-journal"))
    out = read_bag(outp)
    assert [t for t, _, _ in out["/cam/depth/relative"]] == [T0 + i * PERIOD for i in range(frames)]


_CHILD_IN_DECODE = """
import os, sys
from sensor_msgs.msg import Image
from dpt_ros.cli.main import main
from dpt_ros.ros import messages

# The signal lands while rclpy's binding turns the image with header stamp argv[2] (ns) into Python
# objects (it sets each field through its property, the header first): the binding
# reports the KeyboardInterrupt raised there as a TypeError, which the tool once took
# for an undecodable frame.
original, height = messages.deserialize_message, Image.__dict__["height"]
decoding, sent = [False], []

def decoding_flagged(data, kind):
    decoding[0] = True
    try:
        return original(data, kind)
    finally:
        decoding[0] = False

def set_height(self, value):
    stamp = self.header.stamp.sec * 10**9 + self.header.stamp.nanosec
    if decoding[0] and stamp == int(sys.argv[2]) and not sent:
        sent.append(1)
        os.kill(os.getpid(), int(sys.argv[1]))
    height.fset(self, value)

messages.deserialize_message = decoding_flagged
Image.height = property(height.fget, set_height)
sys.exit(main(sys.argv[3:]))
"""


def test_a_stop_inside_a_frames_decoding_stops_the_run(tmp_path):
    """The stop is not taken for a corrupt frame: the run stops with 143, and the bag
    holds the two frames done before the third one's, not three of four."""
    inp = tmp_path / "in"
    topic = write_bag(inp)
    outp = tmp_path / "out"
    argv = ["bag", str(inp), "-o", str(outp), "--image-topic", topic, *NET]
    done = _run_child(
        _CHILD_IN_DECODE, str(int(signal.SIGTERM)), str(502 * 10**9 + 2000), *argv
    )  # frame 2's header
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "Traceback" not in done.stderr
    assert "undecodable" not in done.stderr
    assert "stopped by SIGTERM" in done.stderr
    assert "valid bag holding the 2 frame(s)" in done.stderr
    assert [t for t, _, _ in read_bag(outp)["/cam/depth/relative"]] == [T0, T0 + PERIOD]


def test_a_fleet_stopped_inside_a_frames_decoding_finishes_no_bag(tmp_path):
    """In a fleet the same stop once left the bag under its own name, short of the
    frame, and went on to the next bag (CI, test_fleet_signals)."""
    inputs = []
    for name in ("run_a", "run_b"):
        topic = write_bag(tmp_path / name)
        inputs.append(str(tmp_path / name))
    out = tmp_path / "out"
    argv = ["bag", *inputs, "-o", str(out), "--image-topic", topic, *NET]
    done = _run_child(
        _CHILD_IN_DECODE, str(int(signal.SIGTERM)), str(502 * 10**9 + 2000), *argv
    )  # frame 2's header
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == []


def test_an_ignored_sighup_stays_ignored_under_nohup():
    """``nohup dpt-ros bag ...`` ignores SIGHUP so that the run outlives its terminal:
    the tool must not turn it back into a stop (it did)."""
    from dpt_ros.cli.stop_signals import stop_signals_raise

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_raise():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            os.kill(os.getpid(), signal.SIGHUP)  # ignored: nothing raised
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
