#!/usr/bin/env python3
"""Prints how long each test tier takes on this machine: the fast tier (the command in
docs/development.md) and everything (what CI runs).

    python scripts/time_test_tiers.py            # both tiers
    python scripts/time_test_tiers.py --fast     # the fast tier only

Each tier runs in a fresh ``python -m pytest -q`` from the repository root; the times
are wall-clock seconds, so a busy machine makes them longer. The counts are pytest's
own summary line.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The fast tier: test/unit, and one representative of each slower tier (smoke).
FAST_MARKERS = "unit or smoke"
TIERS = {"fast": ["-m", FAST_MARKERS], "all": []}


def run_tier(name: str, extra: list[str]) -> tuple[float, str, int, list[str]]:
    """(seconds, pytest's summary line, exit status, its FAILED/ERROR lines) of one tier."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    summary = lines[-1].strip("= ") if lines else done.stdout[-500:] + done.stderr[-500:]
    failures = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return seconds, summary, done.returncode, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="time the fast tier only")
    args = parser.parse_args()
    status = 0
    for name, extra in TIERS.items():
        if args.fast and name != "fast":
            continue
        seconds, summary, code, failures = run_tier(name, extra)
        print(f"{name:>4}: {seconds:7.1f} s  ({summary})", flush=True)
        for line in failures:
            print(f"      {line}")
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
