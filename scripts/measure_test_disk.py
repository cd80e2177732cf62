#!/usr/bin/env python3
"""Prints the most disk the tests held at once, the test running then, and what was
left at the end.

    python scripts/measure_test_disk.py test/unit/test_models.py test/export/test_export.py
    python scripts/measure_test_disk.py -m "not slow" test

The arguments go to ``python -m pytest`` unchanged. pytest runs from the repository
root with ``--basetemp`` and ``$TMPDIR`` in a fresh folder of this script's (so the
test session's engine cache, made with ``tempfile``, lands there too); every 2 s a
thread adds up the bytes on disk under it and under ``$DPT_ROS_CACHE`` where that is
set elsewhere. This file is also the pytest plugin (``-p measure_test_disk``) that
writes the id of the running test to a file the thread reads. The exit status is
pytest's. The folder is removed at the end, unless pytest failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INTERVAL_S = 2.0
#: Where the plugin writes the running test's id (set by main for the pytest process).
CURRENT_ENV = "DPT_ROS_MEASURE_CURRENT"


def pytest_runtest_logstart(nodeid, location):
    """Plugin hook: the test about to run (its fixtures' setup counts as its own)."""
    Path(os.environ[CURRENT_ENV]).write_text(nodeid, encoding="utf-8")


def disk_bytes(folders: list[Path]) -> dict[str, int]:
    """Bytes on disk under ``folders`` (blocks, each hard-linked file once) by the folder
    two levels down (basetemp/checkpoints0, tmp/dpt_ros_test_...); files removed while it
    walks are skipped."""
    seen: set[tuple[int, int]] = set()
    sizes: dict[str, int] = {}
    for folder in folders:
        for parent, dirs, files in os.walk(folder):
            where = "/".join(Path(parent).relative_to(folder).parts[:2]) or "."
            for name in files + dirs:
                try:
                    st = os.lstat(os.path.join(parent, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    sizes[where] = sizes.get(where, 0) + st.st_blocks * 512
    return sizes


def main() -> int:
    own = Path(tempfile.mkdtemp(prefix="dpt_ros_disk_"))
    (own / "tmp").mkdir()
    current = own / "current"
    current.write_text("(collecting)", encoding="utf-8")
    folders = [own]
    cache = os.environ.get("DPT_ROS_CACHE")
    if cache and not Path(cache).resolve().is_relative_to(own):
        folders.append(Path(cache))
    env = {**os.environ, "TMPDIR": str(own / "tmp"), CURRENT_ENV: str(current)}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "scripts"), env.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "pytest", "-p", "measure_test_disk"]
    command += ["--basetemp", str(own / "basetemp"), *sys.argv[1:]]
    peak: tuple[int, str, float, dict[str, int]] = (0, "", 0.0, {})
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(INTERVAL_S):
            sizes = disk_bytes(folders)
            if sum(sizes.values()) > peak[0]:
                test = current.read_text(encoding="utf-8")
                peak = (sum(sizes.values()), test, time.monotonic() - start, sizes)

    start = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = subprocess.call(command, cwd=ROOT, env=env)
    done.set()
    sampler.join()
    final = sum(disk_bytes(folders).values())
    print(f"peak disk: {peak[0] / 1e9:.2f} GB at {peak[2]:.0f} s, during {peak[1]}")
    for where, size in sorted(peak[3].items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {size / 1e9:6.2f} GB  {where}")
    print(f"left at the end: {final / 1e9:.2f} GB ({', '.join(map(str, folders))})")
    print(f"wall time: {time.monotonic() - start:.0f} s")
    if rc == 0:
        shutil.rmtree(own, ignore_errors=True)
    else:
        print(f"pytest failed: its files are kept in {own}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
