"""Hostile or careless parameters for ``dpt_node``: every problem in one FATAL line,
each by the parameter given, exit status 1, no traceback; a ``-p`` override rcl
cannot parse (a newline in it) is one clear line too.

Before: ``device:=tpu`` / ``device:=banana`` was not among the problems (it failed
alone, at the model load, after the others had been fixed); the network size's problem
did not name ``network_width``; a newline in a ``-p`` override gave rcl's error line
and an RCLError traceback.
"""

from __future__ import annotations

import sys

import pytest
from attack import attack

NODE = (sys.executable, "-m", "dpt_ros.node.main")
#: Bounds: a hang is a defect; refusing parameters loads torch, never a model.
WALL_S = 120.0
PEAK_MB = 2000.0


def _node(*overrides: str):
    args = ["--ros-args"]
    for override in overrides:
        args += ["-p", override]
    return attack([*NODE, *args], timeout=WALL_S)


def _fatal_line(done) -> str:
    assert done.rc == 1, done.stderr
    assert "Traceback" not in done.stderr and "RCLError" not in done.stderr, done.stderr
    lines = done.error_lines()
    assert len(lines) == 1 and "[FATAL]" in lines[0], done.stderr
    assert done.peak_rss_mb < PEAK_MB
    return lines[0]


def test_every_problem_of_the_issue_in_one_line():
    line = _fatal_line(
        _node("output_size:=huge", "network_width:=33", "device:=tpu", "cloud.stride:=65")
    )
    for named in ("output_size='huge'", "network_width=33", "device 'tpu'", "cloud.stride=65"):
        assert named in line, (named, line)


def test_a_storm_of_overrides_is_one_line():
    """Every kind of problem at once, among hundreds of overrides that name nothing."""
    unknown = [f"storm_{i}:={i}" for i in range(500)]
    bad = [
        "device:=banana",
        "network_height:=-7",
        "precision:=fp8",
        "backend:=tensorrtx",
        "qos.output.depth:=0",
        "frame_id:=cam\tera",
        "warmup_width:=0",
        "cameras:=[front, /front]",
    ]
    line = _fatal_line(_node(*unknown, *bad))
    for named in (
        "device 'banana'",
        "network_height",
        "precision",
        "backend='tensorrtx'",
        "qos.output.depth=0",
        "frame_id=",
        "warmup_width and warmup_height",
        "'front' and '/front'",
    ):
        assert named in line, (named, line)
    assert "storm_" not in line  # unknown names are warnings, given once the rest is valid


@pytest.mark.parametrize(
    "override",
    ["frame_id:=[a\nb", "a\nb:=1", 'frame_id:="a\nb', "device:=cpu\n\n\n[FATAL] forged"],
    ids=["list", "name", "quote", "forged"],
)
def test_an_override_with_a_newline_is_one_clear_line(override):
    done = _node(override, "depth.random_weights:=true")
    if done.rc == 0:  # rcl took it as a value: then it is checked as one
        pytest.fail(done.stderr)
    line = _fatal_line(done)
    assert "\\n" in line or "control characters" in line or "device" in line, line
