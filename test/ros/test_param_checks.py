"""Parameter errors at start and at run time: every problem listed at once, integers for
float parameters, and overrides that name no parameter."""

from __future__ import annotations

import pytest
from helpers import FAST, scaled
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from dpt_ros.node.node import DptNode

RANDOM = [
    Parameter("depth.random_weights", value=True),
    Parameter("warmup_width", value=0),
    Parameter("warmup_height", value=0),
]


def test_every_invalid_parameter_is_listed(ros):
    bad = [
        Parameter("cloud.stride", value=65),  # above 0..64: refused by rclpy itself
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


def test_ground_normal_can_be_set_at_run_time(ros):
    """``ros2 param set`` goes through the set_parameters service, where a double array
    arrives as ``array('d', ...)``, not a list: it must be accepted like a list."""
    executor, add = ros
    node = add(DptNode(parameter_overrides=FAST + RANDOM))
    client_node = add(Node("param_client"))
    client = client_node.create_client(SetParameters, "/dpt_node/set_parameters")
    assert client.wait_for_service(timeout_sec=scaled(10))

    def set_remotely(value: list[float]) -> SetParametersResult:
        param = Parameter("relative_depth.ground_normal", Parameter.Type.DOUBLE_ARRAY, value)
        future = client.call_async(SetParameters.Request(parameters=[param.to_parameter_msg()]))
        executor.spin_until_future_complete(future, timeout_sec=scaled(10))
        (result,) = future.result().results
        return result

    result = set_remotely([0.0, -0.8, -0.6])
    assert result.successful, result.reason
    assert node.config.alignment.ground_normal == (0.0, -0.8, -0.6)
    result = set_remotely([0.0, 0.0])  # a value with a real problem is still refused
    assert not result.successful and "ground_normal" in result.reason
    assert node.config.alignment.ground_normal == (0.0, -0.8, -0.6)


def test_every_problem_is_listed_in_one_fatal_line(ros):
    """Problems of single values, of combinations and of the cameras' topics come in one
    line, not in stages (each stage used to hide the next)."""
    bad = [
        Parameter("output_size", value="huge"),  # a value: not a choice
        Parameter("qos.output.depth", value=0),  # a value refused by rclpy
        Parameter("network_width", value=100),  # the model's size rule
        Parameter("warmup_width", value=0),  # a pair: warmup_height is 480
        Parameter("relative_depth.alignment", value="ground_plane"),  # needs camera_height
        Parameter("cloud.min_depth", value=5.0),  # a pair: above cloud.max_depth
        Parameter("cloud.max_depth", value=2.0),
        Parameter("cameras", value=["front", "/front"]),  # one camera, twice
    ]
    with pytest.raises(ValueError) as info:
        DptNode(parameter_overrides=FAST + [Parameter("depth.random_weights", value=True)] + bad)
    text = str(info.value)
    assert text.startswith("invalid parameters: ") and "\n" not in text
    for needle in (
        "output_size='huge'",
        "qos.output.depth",
        "network_width=100: dpt_hybrid needs positive multiples of 32",
        "warmup_width and warmup_height",
        "needs relative_depth.camera_height",
        "cloud.min_depth=5.0 must be below",
        "'front' and '/front' are the same camera",
    ):
        assert needle in text, (needle, text)


def test_the_device_and_the_network_size_join_the_one_line_by_their_names(ros):
    """The issue's command line: ``device:=tpu`` was missing from the line (found only
    when the model loaded, after the others were fixed), and the size's problem named
    no parameter ("network size ... got 33x384"); rclpy's refusal of cloud.stride read
    "cloud.stride: Invalid parameter value (65) for parameter. Reason: ...: cloud.stride"."""
    bad = [
        Parameter("output_size", value="huge"),
        Parameter("network_width", value=33),
        Parameter("device", value="tpu"),
        Parameter("cloud.stride", value=65),
    ]
    overrides = [p for p in FAST if p.name not in ("device", "network_width")]
    with pytest.raises(ValueError) as info:
        DptNode(parameter_overrides=overrides + RANDOM + bad)
    text = str(info.value)
    assert text == (
        "invalid parameters: cloud.stride=65 is outside 0..64; output_size='huge' is not one "
        "of input, network; unknown device 'tpu'; valid: auto, cpu, cuda, cuda:N; "
        "network_width=33: dpt_hybrid needs positive multiples of 32"
    )


def test_a_bad_value_is_not_reported_again_through_its_combinations(ros):
    """A value refused on its own stands in as its default for the checks of
    combinations, and combinations that involve it are not reported (they would name a
    value the user did not give)."""
    bad = [
        Parameter("backend", value="tensorrtx"),  # not a choice
        Parameter("depth.engine", value="x.onnx"),  # fine with tensorrt, not with auto
        Parameter("network_width", value=100),
    ]
    with pytest.raises(ValueError) as info:
        DptNode(parameter_overrides=FAST + RANDOM + bad)
    text = str(info.value)
    assert "backend='tensorrtx' is not one of" in text
    assert "not auto" not in text
    assert "network_width=100: dpt_hybrid needs positive multiples of 32" in text
