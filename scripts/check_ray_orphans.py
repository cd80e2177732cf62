#!/usr/bin/env python3
"""What a local Ray leaves behind when its driver dies: starts a driver that calls
``ray.init`` as ``dpt-ros bag --ray`` does (no dashboard, no log forwarding), stops it
with a signal (default 9, ``kill -9``), and prints the driver's descendants that are
still alive, second by second until none is or ``--wait`` seconds pass. Whatever is
left at the end is killed by pid.

    python scripts/check_ray_orphans.py [--signal 9] [--wait 90]

Ray 2.60 on Linux (2-core VM): after ``kill -9`` every Ray process ends within 2 s
but DashboardAgent and RuntimeEnvAgent, which see the raylet die and then wait up to
60 s to report it to a GCS that is gone (``publish_error_to_driver(..., 60)``); they
exit 60 to 62 s after the driver. After Ctrl-C (``--signal 2``) nothing is left within
a second.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

_DRIVER = """
import sys, time
import ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
print("ready", flush=True)
time.sleep(600)
"""


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            out.setdefault(ppid, []).append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    children, out, todo = _children(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:100]
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--signal", type=int, default=int(signal.SIGKILL), help="default 9")
    p.add_argument("--wait", type=float, default=90.0, help="seconds to watch (default 90)")
    args = p.parse_args()
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER], stdout=subprocess.PIPE, text=True)
    assert driver.stdout is not None
    if driver.stdout.readline().strip() != "ready":
        print("the driver did not start Ray", file=sys.stderr)
        return 1
    time.sleep(8)  # the agents start after ray.init returns
    procs = descendants(driver.pid)
    print(f"driver {driver.pid}: {len(procs)} descendant(s)")
    for pid in procs:
        print(f"  {pid} {command(pid)}")
    os.kill(driver.pid, args.signal)
    driver.wait()
    start, shown = time.monotonic(), None
    while True:
        left = [pid for pid in procs if alive(pid)]
        if left != shown:  # each change: when, and which are left
            shown = left
            names = ", ".join(command(pid).split()[0].rsplit("/", 1)[-1] for pid in left)
            print(
                f"{time.monotonic() - start:5.1f} s after signal {args.signal}: {names or 'none'}"
            )
        if not left or time.monotonic() - start > args.wait:
            break
        time.sleep(0.5)
    for pid in left:
        print(f"  {pid} {command(pid)} (killed now)")
        os.kill(pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
