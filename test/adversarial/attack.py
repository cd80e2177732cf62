"""Running an attack as an attacker would: a real child process, its exit status, its
output, its wall time and its peak memory measured from outside (the kernel's rusage
of the child, not the child's own word).

Every module of ``test/adversarial`` uses :func:`attack`; the tier is marked
``adversarial`` by ``test/conftest.py`` (every test under this folder) and runs after the
fast tier in CI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The command line as the user runs it, in the test's interpreter (the installed
#: ``dpt-ros`` script calls the same function).
DPT_ROS = (sys.executable, "-m", "dpt_ros.cli")
#: ``dpt_node`` as ``ros2 run dpt_ros dpt_node`` starts it.
DPT_NODE = (sys.executable, "-m", "dpt_ros.node.node")
#: dpt_node's parameters for a small random network on the CPU (starts in seconds).
SMALL_NODE = {
    "device": "cpu",
    "backend": "torch",
    "depth.random_weights": "true",
    "network_width": "64",
    "network_height": "64",
    "warmup_width": "0",
    "warmup_height": "0",
}


def node_argv(**more: str) -> list[str]:
    """``--ros-args`` with a ``-p`` for each of :data:`SMALL_NODE` and ``more`` (a dotted
    name is given with ``__`` for its dots: ``relative_depth__scale="1.0"``)."""
    params = {**SMALL_NODE, **{k.replace("__", "."): v for k, v in more.items()}}
    return ["--ros-args", *(x for k, v in params.items() for x in ("-p", f"{k}:={v}"))]


@dataclass(frozen=True)
class Outcome:
    """What an attacked process did."""

    rc: int  #: exit status; -N when killed by signal N
    stdout: str
    stderr: str
    wall_s: float  #: from start to exit
    peak_rss_mb: float  #: the program's own largest resident set (wait4 in the launcher)

    def error_lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def attack(
    argv: Sequence[str],
    *,
    timeout: float = 120.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    during: Callable[[subprocess.Popen], None] | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> Outcome:
    """Runs ``argv`` in a new session and returns its :class:`Outcome`.

    ``during(proc)`` runs while the child lives (to send signals at a stage: send them to
    ``proc.pid``, the launcher, which forwards them; not to the group). A child
    still running at ``timeout`` is killed with its whole process group and the test
    fails there: an attack that hangs is a defect.
    """
    child_env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="attack_") as tmp:
        peak_file = Path(tmp) / "peak_kib"
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(peak_file), *argv],
            cwd=cwd,
            env=child_env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        streams = [_Drain(proc.stdout), _Drain(proc.stderr)]
        if during is not None:
            during(proc)
        try:
            proc.wait(timeout=max(0.0, start + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(
                f"{' '.join(argv)} still ran after {timeout:.0f} s; "
                f"stderr ends: {streams[1].text()[-2000:]}"
            ) from None
        wall = time.monotonic() - start
        peak_kib = int(peak_file.read_text()) if peak_file.is_file() else -1
    out, err = (s.text() for s in streams)
    return Outcome(proc.returncode, out, err, wall, peak_kib / 1024.0)


#: A forked child's peak resident set starts at its parent's (the kernel carries the
#: copied address space's high-water mark over exec), so measuring the attacked program
#: from the test process would report the test process's size for a small program. A
#: small launcher in between starts it instead: the attacked program's peak is then its
#: own (at least the launcher's ~10 MB). The launcher sets default signal dispositions
#: (whatever the test runner inherited: nohup's ignored SIGHUP, an ignored SIGINT),
#: forwards SIGINT, SIGTERM and SIGHUP to it (and ignores those arriving after it
#: ended), writes its peak (KiB) to argv[1], and ends as it ended (the same exit status,
#: or killed by the same signal).
_LAUNCHER = """
import os, signal, sys
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
    signal.signal(sig, signal.SIG_DFL)
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
def forward(sig, frame):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # it has exited and waits to be reaped
        pass
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, forward)
while True:
    try:
        _, status, usage = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


class _Drain:
    """Reads a pipe to its end in a thread, so a chatty child never blocks on it."""

    def __init__(self, pipe) -> None:
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        with pipe:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                self._chunks.append(chunk)

    def text(self) -> str:
        self._thread.join(timeout=10)
        return b"".join(self._chunks).decode(errors="replace")


def program_pid(launcher: subprocess.Popen, timeout: float = 30.0) -> int:
    """The attacked program's pid: the launcher's child (signal the launcher, which
    forwards; read the program's state under /proc/<pid>)."""
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pids = children.read_text().split()
        except OSError:  # the launcher is gone
            pids = []
        if pids:
            return int(pids[0])
        if launcher.poll() is not None:
            break
        time.sleep(0.005)
    raise AssertionError(f"the launcher {launcher.pid} started no program")


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask): Python
    catches SIGINT from its start, other signals once a handler is installed."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (signum - 1) & 1)


def has_loaded(pid: int, library: str) -> bool:
    """Whether process ``pid`` has mapped a file whose name holds ``library``."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls ``predicate`` until it holds; AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout:.0f} s: {what}")
        time.sleep(0.002)
