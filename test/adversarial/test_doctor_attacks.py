"""``dpt-ros doctor nav2`` on hostile parameter files: each is refused with one line
naming the file and exit status 2, quickly and in little memory (a params file is a
few KB; Nav2's own nav2_params.yaml is about 15 KB)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from attack import DPT_ROS, attack

#: Bounds for every attack: the interpreter and PyYAML are about 40 MB; a hang or a
#: blow-up is far above both.
PEAK_MB = 200.0
WALL_S = 60.0


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level an alias list of ten of the one below; ~1 KB of text
    that expands to 10**levels strings."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


ATTACKS = {
    "billion laughs": (billion_laughs(), "aliases expand to more than"),
    "deep nesting": ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than"),
    "deep mappings": ("a: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n", "nested deeper than"),
    "recursive alias": ("a: &a [*a]\n", "recursive alias"),
    "recursive merge": ("a: &a {b: *a}\n", "recursive alias"),
}


def doctor(path: Path, *more: str):
    return attack([*DPT_ROS, "doctor", "nav2", str(path), *more], timeout=WALL_S)


def assert_refused(done, path: Path, problem: str) -> None:
    assert done.rc == 2, (done.rc, done.stderr[-2000:])
    lines = done.error_lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("dpt-ros: error: ") and str(path) in lines[0], lines
    assert problem in lines[0], lines
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
    assert done.wall_s < WALL_S


@pytest.mark.parametrize("case", sorted(ATTACKS))
def test_yaml_bombs_are_refused_in_bounded_time_and_memory(tmp_path, case):
    text, problem = ATTACKS[case]
    path = tmp_path / "nav2.yaml"
    path.write_text(text)
    assert_refused(doctor(path), path, problem)
    # The same file as --node-params is refused in the same way.
    ok = tmp_path / "ok.yaml"
    ok.write_text("local_costmap: {}\n")
    assert_refused(doctor(ok, "--node-params", str(path)), path, problem)


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:  # 24 MB of valid YAML
        for i in range(400_000):
            f.write(f"key_{i:07d}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]\n")
    assert path.stat().st_size > 24e6
    assert_refused(doctor(path), path, "larger than")


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    path = tmp_path / "nav2.yaml"
    os.mkfifo(path)  # nobody ever writes: opening it to read would block for ever
    assert_refused(doctor(path), path, "not a regular file")


def test_a_directory_is_refused(tmp_path):
    assert_refused(doctor(tmp_path), tmp_path, "not a regular file")


def test_a_binary_file_is_named(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 4)
    assert_refused(doctor(path), path, "not a text file")
