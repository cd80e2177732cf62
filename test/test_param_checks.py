"""Parameter errors at start and at run time: every problem listed at once, integers for
float parameters, and overrides that name no parameter."""

from __future__ import annotations

import pytest
from helpers import FAST
from rclpy.parameter import Parameter

from dpt_ros.node.node import DptNode

RANDOM = [
    Parameter("depth.random_weights", value=True),
    Parameter("warmup_width", value=0),
    Parameter("warmup_height", value=0),
]


def test_every_invalid_parameter_is_listed(ros):
    bad = [
        Parameter("cloud.stride", value=0),  # below 1..64: refused by rclpy itself
        Parameter("qos.input.depth", value=1000),  # above 1..100: rclpy too
        Parameter("max_rate", value=-1.0),  # below 0..1000
        Parameter("precision", value="fp8"),  # not a choice: found by validate()
    ]
    with pytest.raises(ValueError) as info:
        DptNode(parameter_overrides=FAST + RANDOM + bad)
    text = str(info.value)
    assert text.startswith("invalid parameters: ")
    for name in ("cloud.stride", "qos.input.depth", "max_rate", "precision='fp8'"):
        assert name in text, (name, text)


def test_integers_are_accepted_for_float_parameters(ros):
    _, add = ros
    node = add(
        DptNode(parameter_overrides=FAST + RANDOM + [Parameter("relative_depth.scale", value=2)])
    )
    assert node.config.pipeline.relative_depth_scale == 2.0
    assert isinstance(node.config.pipeline.relative_depth_scale, float)
    (result,) = node.set_parameters([Parameter("max_rate", value=5)])
    assert result.successful, result.reason
    assert node.config.max_rate == 5.0 and isinstance(node.config.max_rate, float)
    (result,) = node.set_parameters([Parameter("max_rate", value="fast")])
    assert not result.successful and "max_rate must be a float" in result.reason
    (result,) = node.set_parameters([Parameter("max_rate", value=5000)])
    assert not result.successful and "outside" in result.reason


def test_misspelt_overrides_are_warned_about(ros, capfd):
    _, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + RANDOM
            + [Parameter("cloud.strid", value=2), Parameter("use_sim_time", value=False)]
        )
    )
    assert len(node.unknown_parameters) == 1
    (text,) = node.unknown_parameters
    assert "'cloud.strid'" in text and "did you mean cloud.stride" in text
    assert "cloud.strid" in capfd.readouterr().err
