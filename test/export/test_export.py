"""``dpt-ros export`` and the ONNX Runtime / TensorRT backends.

Two real exports at a small fixed size, each done once per module: dpt_hybrid with the
fixtures' deterministic weights through the command line (96x128, batch 1), compared
with PyTorch on a real image through ``load_backend``; and dpt_hybrid_ade20k with random
weights through ``export_onnx`` (96x96, batch 2), compared by the export's own check.
ONNX Runtime runs on the CPU. TensorRT needs a GPU: here only its "not installed" errors are
tested.

Tolerance of ONNX Runtime vs PyTorch: 5e-4 of the output's largest magnitude. Both
compute in float32, but their kernels (fused LayerNorm, GEMM, convolutions) sum in other
orders. The deterministic-weights network amplifies rounding: at 128x96 PyTorch's own
float32 output differs from a float64 run by 1.6e-5 of its maximum, and ONNX Runtime
differs from PyTorch by 3e-5 (random weights: 2e-6). 5e-4 leaves room for other CPUs'
kernels; an export error (a wrong interpolation mode, a dropped op, a shape baked
wrongly) moves the output by more than 1e-2.

Under CI (``CI=true``) missing onnx / onnxscript / onnxruntime are an error, elsewhere
the tests that need them skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import json
import os
import re
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import one_error_line

from dpt_ros.cli import export as export_cli
from dpt_ros.cli.main import build_parser, main
from dpt_ros.models import Predictor, get_spec, load_model
from dpt_ros.models.network.encoder import get_backbone_config
from dpt_ros.models.options import ENGINE_BACKENDS
from dpt_ros.models.transforms import preprocess
from dpt_ros.runtime.export import DEFAULT_OPSET, default_output_name, export_onnx
from dpt_ros.runtime.runtimes import (
    OnnxRuntimeModel,
    load_backend,
    read_sidecar,
    sidecar_path,
)

#: ONNX Runtime vs PyTorch, relative to the output's largest magnitude (module docstring).
RTOL_OF_MAX = 5e-4


def _require(*modules: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            message = f"{name} is not installed (pip install -e '.[test]')"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)


@pytest.fixture(scope="module")
def exporter():
    _require("onnx", "onnxscript", "onnxruntime")


def _run_quiet(*argv):
    """main(argv) -> (rc, stdout, stderr), for module-scoped fixtures (no capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _expected_layer_norms(model_type: str) -> int:
    """LayerNorms that run: two per transformer block up to the last hooked one (the
    ViT's final norm is not used by DPT)."""
    hooks = get_backbone_config(get_spec(model_type).backbone).hooks
    return 2 * (hooks[-1] + 1)


def _relative_max_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


@pytest.fixture(scope="module")
def hybrid(exporter, module_tmp, det_checkpoint):
    """dpt_hybrid exported by the command line at 128x96 (width x height), batch 1.
    (Its weights: det_checkpoint("dpt_hybrid"), asked for again in each test.)"""
    weights = det_checkpoint("dpt_hybrid")
    path = module_tmp("export") / "hybrid.onnx"
    rc, out, err = _run_quiet(
        "export",
        "--model-type",
        "dpt_hybrid",
        "--weights",
        weights,
        "--network-size",
        "128x96",
        "--output",
        path,
        "--check",
    )
    assert rc == 0, err
    return {"path": path, "stdout": out, "stderr": err}


@pytest.fixture(scope="module")
def hybrid_backend(hybrid):
    return load_backend("onnxruntime", hybrid["path"], "dpt_hybrid", torch.device("cpu"))


@pytest.fixture(scope="module")
def segmentation(exporter, module_tmp):
    """dpt_hybrid_ade20k exported by ``export_onnx`` at 96x96, batch 2, random weights."""
    path = module_tmp("export") / "seg.onnx"
    with pytest.warns(UserWarning, match="RANDOM weights"):
        result = export_onnx(
            "dpt_hybrid_ade20k", path, random_weights=True, width=96, height=96, batch=2, check=True
        )
    return result


# --------------------------------------------------------------------------- command line


def test_help_describes_the_graph_and_options(capsys):
    assert main(["export", "--help"]) == 0
    out = capsys.readouterr().out
    for option in (
        "--model-type",
        "--format",
        "--network-size",
        "--batch",
        "--opset",
        "--precision",
        "--output",
        "--check",
        "--random-weights",
    ):
        assert option in out
    assert "B x 3 x H x W" in out and "fixed" in out and "OUTPUT.json" in out
    # The deprecated aliases are still listed, marked as such.
    assert re.search(r"--width W\s+deprecated: use --network-size WxH", out)
    assert re.search(r"--height H\s+deprecated: use --network-size WxH", out)


def test_default_output_name():
    assert default_output_name("dpt_hybrid", 384, 384, 1) == "dpt_hybrid_384x384_b1.onnx"
    assert (
        default_output_name("dpt_large", 640, 480, 2, "tensorrt") == "dpt_large_640x480_b2.engine"
    )


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--network-size", "100x96"], "multiples of 32, got 100x96"),
        (["--network-size", "96"], "WIDTHxHEIGHT"),
        (["--width", "100"], "multiples of 32, got 100x384"),
        (["--width", "0"], "at least 1"),
        (["--network-size", "96x96", "--width", "96"], "--width: not allowed with --network-size"),
        (
            ["--height", "96", "--network-size", "96x96"],
            "--network-size: not allowed with --height",
        ),
        (["--batch", "0"], "at least 1"),
        (["--format", "pytorch"], "invalid choice"),
    ],
)
def test_usage_errors(capsys, argv, fragment):
    rc = main(["export", "--model-type", "dpt_hybrid", *argv])
    assert rc == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, size",
    [
        (["--network-size", "128x96"], (128, 96)),
        ([], (384, 384)),
        (["--width", "128", "--height", "96"], (128, 96)),
        (["--width", "128"], (128, 384)),
        (["--height", "96"], (384, 96)),
    ],
)
def test_network_size_and_its_deprecated_aliases(capsys, argv, size):
    """--network-size WxH; --width/--height still work for one release, with a note."""
    args = build_parser().parse_args(["export", "--model-type", "dpt_hybrid", *argv])
    assert export_cli._network_size(args, get_spec("dpt_hybrid")) == size
    err = capsys.readouterr().err
    if "--width" in argv or "--height" in argv:
        assert err.splitlines() == [
            "dpt-ros: note: --width/--height are deprecated, use --network-size WxH"
        ]
    else:
        assert err == ""


def test_deprecated_size_flags_note_before_errors(capsys):
    rc = main(
        [
            "export",
            "--model-type",
            "dpt_hybrid",
            "--random-weights",
            "--width",
            "128",
            "--height",
            "96",
            "--precision",
            "fp16",
        ]
    )
    err = capsys.readouterr().err
    one_error_line(rc, err, "fp16")
    assert "dpt-ros: note: --width/--height are deprecated, use --network-size WxH" in err


def test_fp16_onnx_is_refused_in_one_line(capsys):
    rc = main(["export", "--model-type", "dpt_hybrid", "--random-weights", "--precision", "fp16"])
    one_error_line(rc, capsys.readouterr().err, "fp16", "TensorRT", "fp32")


def test_low_opset_is_refused_before_loading_the_model(exporter, tmp_path, capsys):
    rc = main(
        [
            "export",
            "--model-type",
            "dpt_hybrid",
            "--random-weights",
            "--opset",
            "17",
            "--output",
            str(tmp_path / "x.onnx"),
        ]
    )
    one_error_line(rc, capsys.readouterr().err, "opset 17", str(DEFAULT_OPSET))
    assert not any(tmp_path.iterdir())


def test_unknown_model_type(capsys):
    rc = main(["export", "--model-type", "dpt_tiny", "--random-weights"])
    one_error_line(rc, capsys.readouterr().err, "dpt_tiny", "dpt_hybrid")


def test_tensorrt_format_without_tensorrt_fails_fast(tmp_path, capsys, monkeypatch):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed")
    monkeypatch.chdir(tmp_path)
    rc = main(["export", "--model-type", "dpt_hybrid", "--format", "tensorrt", "--random-weights"])
    one_error_line(
        rc, capsys.readouterr().err, "TensorRT is not installed", "JetPack", "pip install tensorrt"
    )
    assert not any(tmp_path.iterdir())  # failed before exporting anything


def test_check_without_onnxruntime_is_an_error(exporter, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    rc = main(
        [
            "export",
            "--model-type",
            "dpt_hybrid",
            "--random-weights",
            "--check",
            "--output",
            str(tmp_path / "x.onnx"),
        ]
    )
    one_error_line(rc, capsys.readouterr().err, "onnxruntime", "--no-check")
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- dpt_hybrid


def test_cli_prints_file_shapes_and_check(hybrid):
    lines = hybrid["stdout"].splitlines()
    assert len(lines) == 3, hybrid["stdout"]
    assert lines[0].startswith(
        f"{hybrid['path']}: dpt_hybrid, input 1x3x96x128 float32, "
        "output 1x96x128, opset 18, 24 LayerNormalization nodes, "
    )
    match = re.fullmatch(
        r"check: onnxruntime vs PyTorch on a random input: max abs diff "
        r"(\S+), max rel diff (\S+) \(of the output's largest magnitude\)",
        lines[1],
    )
    assert match, lines[1]
    assert float(match.group(2)) <= RTOL_OF_MAX
    assert lines[2] == f"sidecar: {sidecar_path(hybrid['path'])}"
    assert "Traceback" not in hybrid["stderr"] and "warning" not in hybrid["stderr"]


def test_onnx_graph_has_fixed_shapes_and_fused_layer_norm(hybrid):
    import onnx

    model = onnx.load(str(hybrid["path"]))

    def dims(value):
        return [
            d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value.type.tensor_type.shape.dim
        ]

    assert [(v.name, dims(v)) for v in model.graph.input] == [("input", [1, 3, 96, 128])]
    assert [(v.name, dims(v)) for v in model.graph.output] == [("output", [1, 96, 128])]
    assert {o.domain: o.version for o in model.opset_import}[""] == DEFAULT_OPSET
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["LayerNormalization"] == _expected_layer_norms("dpt_hybrid") == 24
    # Fixed shapes: no size arithmetic on the input left in the graph.
    assert ops["Shape"] == 0
    # One file with the weights in it, and the sidecar; no external data files.
    assert sorted(p.name for p in hybrid["path"].parent.iterdir()) == [
        "hybrid.onnx",
        "hybrid.onnx.json",
    ]


def test_sidecar_describes_the_export(hybrid, det_checkpoint):
    meta = read_sidecar(hybrid["path"])
    weights = det_checkpoint("dpt_hybrid")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta == {
        "sidecar_version": 1,
        "format": "onnx",
        "file": "hybrid.onnx",
        "model_type": "dpt_hybrid",
        "task": "depth",
        "output_kind": "relative_inverse_depth",
        "input_name": "input",
        "input_shape": [1, 3, 96, 128],
        "input_dtype": "float32",
        "input_layout": "NCHW, (rgb / 255 - mean) / std",
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "output_name": "output",
        "output_shape": [1, 96, 128],
        "output_dtype": "float32",
        "num_classes": 0,
        "opset": DEFAULT_OPSET,
        "layer_norm_nodes": 24,
        "precision": "fp32",
        "weights": {"file": weights.name, "sha256": digest},
        "torch": torch.__version__,
        "dpt_ros": meta["dpt_ros"],
    }
    assert json.loads(sidecar_path(hybrid["path"]).read_text()) == meta


def test_onnxruntime_backend_matches_torch_on_an_image(hybrid_backend, det_checkpoint, scene_a_rgb):
    import cv2

    rgb = cv2.resize(scene_a_rgb, (128, 96), interpolation=cv2.INTER_AREA)
    spec = get_spec("dpt_hybrid")
    x = preprocess(torch.from_numpy(rgb[None].copy()), (96, 128), spec.mean, spec.std)
    model = load_model("dpt_hybrid", det_checkpoint("dpt_hybrid"))
    with torch.inference_mode():
        want = model(x)
    assert isinstance(hybrid_backend, OnnxRuntimeModel)
    assert hybrid_backend.providers[0] == "CPUExecutionProvider"
    assert hybrid_backend.input_shape == (1, 3, 96, 128)
    got = hybrid_backend(x)
    assert got.shape == want.shape == (1, 96, 128)
    assert got.dtype == torch.float32 and got.device == torch.device("cpu")
    assert _relative_max_diff(got, want) <= RTOL_OF_MAX
    # A second call gets a new tensor: earlier results are not overwritten.
    again = hybrid_backend(x)
    assert again.data_ptr() != got.data_ptr()
    torch.testing.assert_close(again, got, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 3, 128, 128), (2, 3, 96, 128)])
def test_wrong_input_shape_names_both_shapes(hybrid_backend, shape):
    with pytest.raises(ValueError) as info:
        hybrid_backend(torch.zeros(shape))
    message = str(info.value)
    assert "1x3x96x128" in message and "x".join(map(str, shape)) in message
    assert "--network-size" in message
    assert f"--network-size {shape[3]}x{shape[2]} --batch {shape[0]}" in message


def test_other_model_type_is_refused(hybrid):
    with pytest.raises(ValueError, match="exported from dpt_hybrid.*model type is dpt_large"):
        load_backend("onnxruntime", hybrid["path"], "dpt_large", torch.device("cpu"))


# --------------------------------------------------------------------------- segmentation


def test_segmentation_export_returns_logits(segmentation):
    meta = segmentation.metadata
    assert meta["input_shape"] == [2, 3, 96, 96]
    assert meta["output_shape"] == [2, 150, 96, 96]
    assert meta["task"] == "segmentation" and meta["output_kind"] == "labels"
    assert meta["num_classes"] == 150 and meta["weights"] == {"random": True}
    assert meta["layer_norm_nodes"] == _expected_layer_norms("dpt_hybrid_ade20k")
    assert segmentation.max_rel_diff is not None and segmentation.max_rel_diff <= RTOL_OF_MAX
    assert segmentation.path.stat().st_size > 100e6  # the weights are in the one file


# --------------------------------------------------------------------------- load errors


def test_missing_file(tmp_path):
    for backend in ENGINE_BACKENDS:
        with pytest.raises(FileNotFoundError, match="nope.onnx.*dpt-ros export"):
            load_backend(backend, tmp_path / "nope.onnx", "dpt_hybrid", "cpu")


def test_missing_or_bad_sidecar(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"model\.onnx\.json not found.*re-export"):
        load_backend("onnxruntime", path, "dpt_hybrid", "cpu")
    sidecar_path(path).write_text("{")
    with pytest.raises(ValueError, match="not a readable JSON sidecar"):
        load_backend("onnxruntime", path, "dpt_hybrid", "cpu")
    sidecar_path(path).write_text(json.dumps({"model_type": "dpt_hybrid"}))
    with pytest.raises(ValueError, match="lacks format, input_name"):
        load_backend("onnxruntime", path, "dpt_hybrid", "cpu")


def test_unknown_backend(hybrid):
    with pytest.raises(ValueError, match="unknown backend 'openvino'.*onnxruntime, tensorrt"):
        load_backend("openvino", hybrid["path"], "dpt_hybrid", "cpu")


def test_onnxruntime_not_installed(hybrid, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match="onnxruntime is not installed: pip install"):
        load_backend("onnxruntime", hybrid["path"], "dpt_hybrid", "cpu")


def test_tensorrt_needs_cuda_and_tensorrt(hybrid):
    with pytest.raises(ValueError, match="CUDA devices only"):
        load_backend("tensorrt", hybrid["path"], "dpt_hybrid", "cpu")
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed")
    # The sidecar is checked first, then TensorRT is imported: no GPU is touched.
    with pytest.raises(
        ValueError, match="TensorRT is not installed.*JetPack.*pip install tensorrt"
    ):
        load_backend("tensorrt", hybrid["path"], "dpt_hybrid", torch.device("cuda"))


# --------------------------------------------------------------------------- Predictor


def test_predictor_on_the_onnxruntime_backend_matches_torch(hybrid, det_checkpoint, scene_a_rgb):
    """Predictor(backend=onnxruntime): any camera size is resized to the engine's fixed
    input, batches of another size are split and padded, results match PyTorch."""
    engine = Predictor("dpt_hybrid", device="cpu", backend="onnxruntime", engine=hybrid["path"])
    torch_p = Predictor(
        "dpt_hybrid",
        weights=det_checkpoint("dpt_hybrid"),
        device="cpu",
        backend="torch",
        network_size=(128, 96),
        keep_aspect_ratio=False,
    )
    assert engine.net_hw == (96, 128) and engine.model is None
    assert engine.input_size(scene_a_rgb.shape[:2]) == (96, 128)
    frames = np.stack([scene_a_rgb, scene_a_rgb[::-1], scene_a_rgb[:, ::-1]])
    got = engine.infer(frames).inverse_depth  # engine batch 1: three chunks
    want = torch_p.infer(frames).inverse_depth
    assert got.shape == want.shape == frames.shape[:3]
    assert np.abs(got - want).max() <= RTOL_OF_MAX * np.abs(want).max()


def test_predictor_pads_a_short_batch(segmentation):
    """The segmentation engine takes batch 2: one frame is padded, three are 2 + 1."""
    p = Predictor(
        "dpt_hybrid_ade20k", device="cpu", backend="onnxruntime", engine=segmentation.path
    )
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    three = p.infer(frames).labels
    one = p.predict(frames[2])
    assert three.shape == (3, 40, 40) and three.dtype == np.uint8
    np.testing.assert_array_equal(three[2], one)
