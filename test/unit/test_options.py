"""Options declared once (:mod:`dpt_ros.options`): a node parameter and its bag-tool
flag take default, range and help from one field, one ``problems()`` checks them, and a
new field becomes both a parameter and a flag by its declaration alone."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from dpt_ros.alignment.online import AlignmentOptions
from dpt_ros.alignment.temporal import TemporalOptions
from dpt_ros.cli.bag.job import pipeline_options
from dpt_ros.cli.main import build_parser
from dpt_ros.models.options import PredictorOptions
from dpt_ros.node.options import NodeOptions
from dpt_ros.node.params import (
    OPTIONS_GROUPS,
    PARAM_DEFS,
    PARAMS,
    NodeConfig,
    config_from_values,
    params_of,
    validate,
)
from dpt_ros.options import add_flags, declared, flag_help, from_flags, option
from dpt_ros.pipeline import frames
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.runtime.export import ExportOptions

OPTIONS = (PipelineOptions, AlignmentOptions, TemporalOptions)
BAG = ["bag", "in.bag", "-o", "out", "--image-topic", "/cam/image_raw"]


def _actions(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag: a for a in sub.choices[command]._actions for flag in a.option_strings}


@pytest.mark.parametrize(
    "options, command",
    [(o, "bag") for o in OPTIONS]
    + [(PredictorOptions, "predict"), (NodeOptions, "predict"), (NodeOptions, "bag")],
)
def test_a_flag_and_its_parameter_share_default_range_and_help(options, command):
    actions = _actions(command)
    shared = 0
    for name, (field, spec) in declared(options).items():
        if not (spec.param and spec.flag):
            continue
        p, action = PARAM_DEFS[spec.param], actions[spec.flag]
        assert p.default == field.default, name
        assert p.description == spec.help and p.summary == spec.summary, name
        bounds = p.int_range[:2] if p.int_range else p.float_range
        assert bounds == spec.range, name
        assert p.choices == spec.choices and action.choices == spec.choices, name
        assert action.help == flag_help(spec, field.default), name
        assert (spec.summary or spec.help).rstrip(".").replace("%", "%%") in action.help
        if isinstance(field.default, bool):
            # A switch: its flag turns the default over.
            assert action.default is False and action.const is True
        else:
            assert action.default == field.default, name
        shared += 1
    if options is PredictorOptions:
        assert shared == 4  # device, precision, backend, compile
    elif options is NodeOptions:
        assert shared == 1  # max_input_pixels
    else:
        assert shared >= 4


def test_every_declared_parameter_is_a_node_parameter():
    for options in (*OPTIONS, PredictorOptions, NodeOptions):
        for _, spec in declared(options).values():
            if spec.param:
                assert spec.param in PARAM_DEFS


def test_every_node_parameter_is_declared_on_an_options_field():
    """No parameter written by hand: each one fills the options field it comes from."""
    assert [p.name for p in PARAMS if not p.fills] == []
    for p in PARAMS:
        group, name = p.fills[0].split(".")
        assert declared(OPTIONS_GROUPS[group])[name][1].param == p.name


def test_max_input_pixels_flag_refuses_what_the_parameter_refuses(capsys):
    field, spec = declared(NodeOptions)["max_input_pixels"]
    assert spec.range is not None
    assert PARAM_DEFS["max_input_pixels"].int_range == (0, int(spec.range[1]), 1)
    predict = ["predict", "--model-type", "dpt_hybrid", "--input", "x.png"]
    args = build_parser().parse_args(predict)
    assert args.max_input_pixels == field.default
    assert build_parser().parse_args([*predict, "--max-input-pixels", "0"]).max_input_pixels == 0
    for bad, words in (("-5", "at least 0"), (str(2**31), f"at most {2**31 - 1}")):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*predict, "--max-input-pixels", bad])
        assert words in capsys.readouterr().err


def test_export_precision_is_its_own_declaration():
    """The engine's precision: its own choices and help, not the Predictor's."""
    actions = _actions("export")
    _, spec = declared(ExportOptions)["precision"]
    assert actions["--precision"].choices == ("fp32", "fp16") == spec.choices
    assert actions["--precision"].help == flag_help(spec, None)
    assert "ONNX model itself is always fp32" in actions["--precision"].help
    assert not actions["--precision"].help.endswith(")")  # no default: the format decides
    assert actions["--precision"].default is None
    assert actions["--format"].help == "onnx, or tensorrt (needs TensorRT and a GPU) (default onnx)"
    assert ExportOptions().engine_precision == "fp32"
    assert ExportOptions(format="tensorrt").engine_precision == "fp16"
    assert ExportOptions(precision="fp16").problems() == [
        "--precision fp16 applies to TensorRT engines; the ONNX model is exported in fp32 "
        "(use --format tensorrt, or leave --precision out)"
    ]
    assert ExportOptions(precision="fp64").problems() == [
        "--precision='fp64' is not one of fp32, fp16"
    ]


def test_demo_device_and_backend_come_from_the_declarations():
    actions = _actions("demo")
    for name in ("device", "backend"):
        field, spec = declared(PredictorOptions)[name]
        action = actions[spec.flag]
        assert action.default == field.default and action.choices == spec.choices, name
    assert actions["--device"].help == flag_help(*_spec_and_default("device"))
    assert "the demo builds none" in actions["--backend"].help
    assert actions["--backend"].help.endswith("(default auto)")


def _spec_and_default(name: str):
    field, spec = declared(PredictorOptions)[name]
    return spec, field.default


def test_the_node_decides_model_validity_once(monkeypatch):
    """The parameters' check is the one between the launch parameter and the network:
    the Predictor (validated()) and the pipeline (validated(task)) do not decide again."""
    config = config_from_values({p.name: p.default for p in PARAMS})
    assert config.depth is not None
    calls: list[str | None] = []

    def counting(self, task=None, **kwargs):
        calls.append(task)
        return []

    monkeypatch.setattr(PredictorOptions, "problems", counting)
    assert config.depth.validated() is config.depth  # what a Predictor does
    frames._check_models(SimpleNamespace(options=config.depth), None)  # the pipeline
    assert calls == []


def test_the_pipeline_checks_a_model_in_the_wrong_place():
    """A Predictor made through the Python API (checked for no task) in the wrong slot
    of a FramePipeline: refused in the words of the parameters' check."""
    depth = SimpleNamespace(options=PredictorOptions("dpt_hybrid", device="cpu").validated())
    with pytest.raises(ValueError, match=r"^dpt_hybrid is a depth model, not a segmentation"):
        frames._check_models(None, depth)
    frames._check_models(depth, None)


def test_one_check_names_what_the_user_set():
    bad = TemporalOptions(smoothing=0.0, reset_after=-1.0)
    assert bad.problems() == [
        "temporal.smoothing=0.0 is outside 0.01..1.0",
        "temporal.reset_after=-1.0 is outside 0.01..3600.0",
    ]
    assert bad.problems("flag") == [
        "--temporal-smoothing=0.0 is outside 0.01..1.0",
        "--temporal-reset-after=-1.0 is outside 0.01..3600.0",
    ]
    assert PipelineOptions(cloud_stride=65).problems() == ["cloud_stride=65 is outside 0..64"]
    assert validate({"temporal.smoothing": 0.0}) == ["temporal.smoothing=0.0 is outside 0.01..1.0"]
    assert TemporalOptions(smoothing=float("nan")).problems()  # NaN is outside too


def test_bag_flags_name_every_problem_at_once():
    args = build_parser().parse_args(
        BAG + ["--cloud-stride", "65", "--relative-depth-scale", "-1", "--output-size", "input"]
    )
    with pytest.raises(ValueError) as err:
        pipeline_options(args)
    assert str(err.value) == (
        "--relative-depth-scale=-1.0 is outside 0.0..1000000.0; --cloud-stride=65 is outside 0..64"
    )
    args = build_parser().parse_args(BAG + ["--no-cloud", "--alignment", "ground_plane"])
    options = pipeline_options(args)
    assert not options.cloud_enabled and options.relative_depth_alignment == "ground_plane"


@dataclass(frozen=True)
class _Extended(PipelineOptions):
    cloud_test_knob: float = option(
        1.0,
        "A knob added by one declaration.",
        range=(0.0, 2.0),
        param="cloud.test_knob",
        flag="--cloud-test-knob",
    )


def test_a_new_field_is_a_parameter_and_a_flag_by_one_declaration():
    added = params_of({"pipeline": _Extended}, {p.name for p in PARAMS})
    assert [(p.name, p.default, p.float_range, p.description, p.fills) for p in added] == [
        ("cloud.test_knob", 1.0, (0.0, 2.0), "A knob added by one declaration.",
         ("pipeline.cloud_test_knob",)),
    ]  # fmt: skip
    parser = argparse.ArgumentParser()
    add_flags(parser, _Extended)
    (action,) = (a for a in parser._actions if a.option_strings == ["--cloud-test-knob"])
    assert action.help == "A knob added by one declaration (default 1.0; 0.0..2.0)"
    assert from_flags(_Extended, parser.parse_args([])).cloud_test_knob == 1.0
    assert (
        from_flags(_Extended, parser.parse_args(["--cloud-test-knob", "1.5"])).cloud_test_knob
        == 1.5
    )
    with pytest.raises(ValueError, match=r"^--cloud-test-knob=3.0 is outside 0.0..2.0$"):
        from_flags(_Extended, parser.parse_args(["--cloud-test-knob", "3"]))
    assert _Extended(cloud_test_knob=3.0).problems("param") == [
        "cloud.test_knob=3.0 is outside 0.0..2.0"
    ]


def test_node_config_is_typed():
    """No raw {name: value} dict beside the typed fields: each parameter the node reads
    itself is a field of its own."""
    config = config_from_values({p.name: p.default for p in PARAMS})
    for field in dataclasses.fields(NodeConfig):
        assert not str(field.type).startswith(("dict", "Mapping")), field.name
    assert config.frame_id == "" and config.pipeline == PipelineOptions()
    assert config.temporal == TemporalOptions() and config.alignment == AlignmentOptions()
    changed = config_from_values({**{p.name: p.default for p in PARAMS}, "frame_id": "cam"})
    assert changed.frame_id == "cam"


def test_options_are_checked_once_at_the_boundary(monkeypatch):
    calls: list[str | None] = []
    original = PredictorOptions.problems

    def counting(self, task=None, **kwargs):
        calls.append(task)
        return original(self, task, **kwargs)

    monkeypatch.setattr(PredictorOptions, "problems", counting)
    options = PredictorOptions(model_type="dpt_hybrid", device="cpu")
    assert options.validated("depth") is options
    assert options.validated() is options  # what a Predictor does next: no second check
    assert options.validated("depth") is options
    assert calls == ["depth"]
    with pytest.raises(ValueError, match="not a segmentation model"):
        options.validated("segmentation")  # another task is still checked
    changed = options.with_(device="tpu")  # a copy with changes is checked anew
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        changed.validated()
    assert calls == ["depth", "segmentation", None]
