"""Whether a one-shot command builds an engine: the decision from the job's frames,
PyTorch's measured time a frame and the build's expected time (dpt_ros.runtime.build_choice)."""

from __future__ import annotations

import pytest

from dpt_ros.runtime.build_choice import (
    ASSUMED_SAVED_SHARE,
    BUILD_FORWARDS,
    BUILD_SECONDS_PER_MPARAM,
    choose_build,
    estimate_build,
)


def _record(shape, build_s, torch_ms, engine_ms, model="dpt_large", backend="onnxruntime"):
    return {
        "model_type": model,
        "backend": backend,
        "input_shape": list(shape),
        "build_s": build_s,
        "torch_ms": torch_ms,
        f"{backend}_ms": engine_ms,
    }


def test_one_image_never_builds():
    """The defect: one 720x1280 dpt_large image waited for a build of minutes."""
    choice = choose_build(frames=0, torch_s=3.1, build_s=95.0, saved_share=0.5)
    assert not choice.build and choice.saved_s == 0.0
    assert choice.reason("onnxruntime") == (
        "building the onnxruntime engine would take ~95 s (estimated), more than the ~0 s "
        "it would save (50% of 0 more frames x 3.10 s)"
    )


def test_a_long_job_builds_when_the_saving_exceeds_the_build():
    choice = choose_build(frames=500, torch_s=3.1, build_s=95.0, saved_share=0.1, measured=True)
    assert choice.build and choice.saved_s == pytest.approx(155.0)
    assert choice.reason("tensorrt").startswith(
        "building the tensorrt engine takes ~95 s, less than the ~155 s it saves"
    )
    # 300 frames save 93 s: less than the build.
    assert not choose_build(frames=300, torch_s=3.1, build_s=95.0, saved_share=0.1).build


def test_an_engine_measured_slower_never_pays_off():
    assert not choose_build(frames=10**6, torch_s=1.0, build_s=1.0, saved_share=-0.06).build


def test_estimate_without_records_scales_with_parameters_and_frame_time():
    build_s, share, measured = estimate_build("dpt_large", "onnxruntime", 343.0, 3.0, 720 * 1280)
    assert not measured and share == ASSUMED_SAVED_SHARE["onnxruntime"]
    want = BUILD_SECONDS_PER_MPARAM["onnxruntime"] * 343.0 + BUILD_FORWARDS * 3.0
    assert build_s == pytest.approx(want)
    trt_s, _, _ = estimate_build("dpt_large", "tensorrt", 343.0, 3.0, 720 * 1280)
    assert trt_s > build_s


def test_estimate_uses_the_nearest_record_of_the_same_model_and_backend():
    records = [
        _record((1, 3, 384, 384), build_s=60.0, torch_ms=1000.0, engine_ms=940.0),
        _record((1, 3, 736, 1280), build_s=200.0, torch_ms=5000.0, engine_ms=4000.0),
        _record((1, 3, 736, 1280), 1.0, 1.0, 0.5, model="dpt_hybrid"),  # another model
        _record((1, 3, 736, 1280), 1.0, 1.0, 0.5, backend="tensorrt"),  # another backend
        {"model_type": "dpt_large", "backend": "onnxruntime", "input_shape": [1, 3, 64, 64]},
    ]
    build_s, share, measured = estimate_build(
        "dpt_large", "onnxruntime", 343.0, 3.0, 416 * 416, records
    )
    assert measured
    # The 384x384 record: its fixed part (60 s less its runs) plus this shape's runs.
    assert build_s == pytest.approx(60.0 - BUILD_FORWARDS * 1.0 + BUILD_FORWARDS * 3.0)
    assert share == pytest.approx(0.06)
    build_s, share, _ = estimate_build("dpt_large", "onnxruntime", 343.0, 5.0, 736 * 1280, records)
    assert build_s == pytest.approx(200.0 - BUILD_FORWARDS * 5.0 + BUILD_FORWARDS * 5.0)
    assert share == pytest.approx(0.2)
