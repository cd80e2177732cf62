"""One source per parameter: each node parameter that fills an options field takes its
default and range from the options class, so the node, the bag tool and the Python
API apply one rule."""

from __future__ import annotations

import dataclasses

import pytest

from dpt_ros.alignment.online import AlignmentOptions
from dpt_ros.alignment.temporal import TemporalOptions
from dpt_ros.cli.bag.alignment import options_from_args
from dpt_ros.cli.main import build_parser
from dpt_ros.node.params import OPTIONS_GROUPS, PARAMS, validate
from dpt_ros.pipeline.options import PipelineOptions


def _field(target: str) -> tuple[type, dataclasses.Field]:
    group, name = target.split(".")
    options = OPTIONS_GROUPS[group]
    return options, options.__dataclass_fields__[name]


def test_every_parameter_default_is_its_options_default():
    checked = 0
    for p in PARAMS:
        for target in p.fills:
            options, field = _field(target)
            if field.default is dataclasses.MISSING:
                continue
            assert p.default == field.default, (p.name, target)
            assert type(p.default) is type(field.default), (p.name, target)
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize("options", [PipelineOptions, AlignmentOptions, TemporalOptions])
def test_every_options_field_is_filled_by_one_parameter(options):
    group = next(g for g, cls in OPTIONS_GROUPS.items() if cls is options)
    filled = [t.split(".")[1] for p in PARAMS for t in p.fills if t.startswith(group + ".")]
    assert sorted(filled) == sorted(f.name for f in dataclasses.fields(options))


def test_parameter_ranges_are_the_options_ranges():
    for p in PARAMS:
        for target in p.fills:
            options, field = _field(target)
            bounds = getattr(options, "RANGES", {}).get(field.name)
            if bounds is None:
                continue
            declared = p.int_range[:2] if p.int_range else p.float_range
            assert declared == bounds, (p.name, declared, bounds)


def test_node_bag_tool_and_python_api_share_the_smoothing_rule():
    """Once three rules: the node's range, the bag tool's (0, 1] and none at all."""
    assert validate({"relative_depth.smoothing": 0.005})
    assert AlignmentOptions(method="ground_plane", camera_height=1.0, smoothing=0.005).problems()
    args = build_parser().parse_args(
        ["bag", "in", "-o", "out", "--image-topic", "/x", "--alignment", "ground_plane"]
        + ["--camera-height", "1"]
        + ["--fit-smoothing", "0.005"]
    )
    with pytest.raises(ValueError, match="smoothing"):
        options_from_args(args)
    assert not validate({"relative_depth.smoothing": 1.0})
    assert PipelineOptions(cloud_stride=-1).problems() and validate({"cloud.stride": 65})
