"""FramePipeline's device path: torch geometry against the numpy reference, batching,
per-stream colour ranges, and the channels_last / compile options of Predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from reference_geometry import backproject
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from dpt_ros.models import Predictor
from dpt_ros.models.geometry import backproject as torch_backproject
from dpt_ros.models.geometry import relative_to_metric
from dpt_ros.pipeline.frames import FramePipeline
from dpt_ros.pipeline.intake import NetworkInputs, take
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.ros.image_codec import image_msg_to_array, rgb_to_image_msg
from dpt_ros.ros.pointcloud import pointcloud2_to_arrays

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights")


def odd_depth() -> np.ndarray:
    """A (9, 13) depth map with every kind of invalid value somewhere."""
    rng = np.random.default_rng(1)
    d = rng.uniform(0.3, 12.0, (9, 13)).astype(np.float32)
    d[0, 0], d[1, 2], d[2, 4], d[3, 6], d[4, 8] = np.nan, np.inf, -np.inf, 0.0, -1.0
    return d


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
@pytest.mark.parametrize("max_depth", [0.0, 7.5])
def test_torch_backproject_equals_numpy(stride, max_depth):
    depth = odd_depth()
    intr = Intrinsics(fx=7.0, fy=6.5, cx=6.25, cy=3.75, width=13, height=9)
    want = backproject(depth, intr, stride, max_depth)
    got = torch_backproject(
        torch.from_numpy(depth), intr.fx, intr.fy, intr.cx, intr.cy, stride, max_depth
    ).numpy()
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
    if max_depth:
        assert np.isnan(got[..., 2][depth[::stride, ::stride] > max_depth]).all()


def test_torch_backproject_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        torch_backproject(torch.ones(1, 4, 4), 1.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="stride"):
        torch_backproject(torch.ones(4, 4), 1.0, 1.0, 0.0, 0.0, stride=0)


def test_relative_to_metric_formula_and_invalid():
    x = torch.tensor([[0.0, 1.0, 4.0, -2.0, float("nan")]])
    got = relative_to_metric(x, 0.5, 0.25).numpy()
    np.testing.assert_allclose(got[0, :3], [4.0, 1.0 / 0.75, 1.0 / 2.25], rtol=1e-6)
    # 0.5 * -2 + 0.25 < 0: beyond infinity, too far (REP-118 +Inf); NaN input: invalid.
    assert np.isposinf(got[0, 3]) and np.isnan(got[0, 4])


@pytest.fixture(scope="module")
def hybrid():
    """A small random-weight hybrid (network 96x64) on the CPU."""
    return Predictor(
        "dpt_hybrid",
        device="cpu",
        backend="torch",
        random_weights=True,
        progress=False,
        network_size=(96, 64),
    )


def frame(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))


def info(fx: float, h: int = 48, w: int = 64) -> CameraInfo:
    return Intrinsics(
        fx=fx, fy=fx, cx=w / 2 - 0.5, cy=h / 2 - 0.5, width=w, height=h
    ).to_camera_info()


def header(sec: int, frame_id: str) -> Header:
    return Header(stamp=Time(sec=sec, nanosec=7), frame_id=frame_id)


def test_batch_matches_single_frames_and_cloud_matches_depth(hybrid):
    options = PipelineOptions(
        relative_depth_scale=2.0,
        relative_depth_shift=0.2,
        cloud_stride=2,
        cloud_max_depth=4.0,
        cloud_edge_filter=False,
    )
    batched = FramePipeline(hybrid, None, options)
    single = FramePipeline(hybrid, None, options)
    rgbs = [frame(1), frame(2)]
    headers = [header(1, "front_optical"), header(2, "rear_optical")]
    infos = [info(40.0), info(55.0)]
    out_b = batched.process_batch(rgbs, headers, infos, streams=["front", "rear"])
    for i in range(2):
        out_s = single.process(rgbs[i], headers[i], infos[i])
        for topic in ("depth/image", "depth/relative", "points", "depth/camera_info"):
            assert out_b[i].messages[topic].header == headers[i], topic
        d_b = image_msg_to_array(out_b[i].messages["depth/image"])
        d_s = image_msg_to_array(out_s.messages["depth/image"])
        np.testing.assert_allclose(d_b, d_s, rtol=1e-4, equal_nan=True)
        # The cloud built on the device is the numpy back-projection of the published depth.
        intr = Intrinsics.from_camera_info(infos[i])
        want = backproject(d_b, intr, stride=2, max_depth=4.0)
        fields = pointcloud2_to_arrays(out_b[i].messages["points"])
        xyz = np.stack([fields["x"], fields["y"], fields["z"]], axis=-1)
        assert xyz.shape == want.shape
        np.testing.assert_allclose(xyz, want, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert set(out_b[0].timings_ms) >= {
        "upload",
        "preprocess",
        "depth_model",
        "download",
        "messages",
        "pointcloud",
    }


def test_streams_keep_their_own_colour_range(hybrid):
    """A dark and a bright camera in one pipeline: each colour map uses its own range,
    so each matches a pipeline that only ever saw that camera."""
    options = PipelineOptions()
    shared = FramePipeline(hybrid, None, options)
    alone = FramePipeline(hybrid, None, options)
    dark, bright = frame(3) // 8, frame(4)
    h1, h2 = header(1, "a"), header(1, "b")
    shared.process(bright, h2, None, stream="b")
    got = shared.process(dark, h1, None, stream="a").messages["depth/colored"]
    want = alone.process(dark, h1, None).messages["depth/colored"]
    assert bytes(got.data) == bytes(want.data)


def test_process_batch_argument_errors(hybrid):
    p = FramePipeline(hybrid, None)
    with pytest.raises(ValueError, match="as many headers"):
        p.process_batch([frame(1)], [], [None])
    with pytest.raises(ValueError, match="stream key"):
        p.process_batch([frame(1)], [header(1, "a")], [None], streams=["a", "b"])


def test_sizes_from_take_are_not_computed_again(hybrid, monkeypatch):
    """The node's and the bag tool's path: intake.take finds each model's network input
    while it checks the image, process_batch takes it, and Predictor.input_size runs
    once for the frame; the messages equal those of a frame sized in the pipeline."""
    options = PipelineOptions(
        output_size="network", relative_depth_scale=2.0, relative_depth_shift=0.2
    )
    rgb, h, camera = frame(5), header(1, "a"), info(40.0)
    want = FramePipeline(hybrid, None, options).process(rgb, h, camera)
    network_hw = hybrid.input_size((48, 64))
    calls: list[tuple[int, int]] = []
    real = Predictor.input_size

    def counted(self, image_hw):
        calls.append(tuple(image_hw))
        return real(self, image_hw)

    monkeypatch.setattr(Predictor, "input_size", counted)
    pipeline = FramePipeline(hybrid, None, options)
    taken, inputs = take(rgb_to_image_msg(rgb, h), 0, pipeline.models)
    assert inputs == NetworkInputs((48, 64), (network_hw, None))
    got = pipeline.process_batch([taken], [h], [camera], inputs=[inputs])[0]
    assert calls == [(48, 64)]
    assert got.messages == want.messages
    # Inputs found for another image size are not used: the frame is sized again.
    calls.clear()
    other = NetworkInputs((96, 128), ((32, 32), None))
    again = FramePipeline(hybrid, None, options).process_batch([rgb], [h], [camera], inputs=[other])
    assert calls == [(48, 64)] and again[0].messages["depth/image"].width == network_hw[1]
    with pytest.raises(ValueError, match="one set of network inputs per image"):
        pipeline.process_batch([rgb], [h], [camera], inputs=[inputs, inputs])


def test_channels_last_agrees_with_contiguous(hybrid):
    plain = Predictor(hybrid.options.with_(channels_last=False), progress=False)
    plain.model.load_state_dict(hybrid.model.state_dict())
    assert hybrid.options.channels_last and not plain.options.channels_last
    conv = hybrid.model.scratch.layer1_rn.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    rgb = frame(5)
    a, b = hybrid.predict(rgb), plain.predict(rgb)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


def test_predictor_option_errors():
    with pytest.raises(ValueError, match="compile mode"):
        Predictor("dpt_hybrid", device="cpu", backend="torch", random_weights=True, compile="fast")
    with pytest.raises(ValueError, match="backend"):
        Predictor("dpt_hybrid", device="cpu", random_weights=True, backend="tvm")
    with pytest.raises(ValueError, match="needs backend onnxruntime or tensorrt, not auto"):
        Predictor("dpt_hybrid", device="cpu", random_weights=True, engine="hybrid.onnx")
    with pytest.raises(ValueError, match="unknown engine_build 'later'"):
        Predictor("dpt_hybrid", device="cpu", random_weights=True, engine_build="later")


def test_warm_up_runs_the_camera_shape(hybrid):
    """Warm-up runs the network on the input size a camera image of that size gets."""
    shapes = []
    hook = hybrid.model.register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0].shape))
    )
    try:
        hybrid.warm_up((60, 200), batch=2)
    finally:
        hook.remove()
    h, w = hybrid.input_size((60, 200))
    assert shapes == [(2, 3, h, w)] and (h, w) != hybrid.net_hw


def test_bf16_keeps_normalisation_in_float32_and_attention_fused(hybrid):
    """Under reduced precision the matrix products run in bf16 while every LayerNorm /
    GroupNorm computes in float32; attention is PyTorch's fused SDPA; the result stays
    close to float32."""
    low = Predictor(
        "dpt_hybrid",
        device="cpu",
        backend="torch",
        precision="bf16",
        random_weights=True,
        progress=False,
        network_size=(96, 64),
    )
    low.model.load_state_dict(hybrid.model.state_dict())
    seen = {}

    def record(kind):
        def hook(module, args, out):
            seen.setdefault(kind, set()).add((args[0].dtype, out.dtype))

        return hook

    for m in low.model.modules():
        if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
            m.register_forward_hook(record("norm"))
        elif isinstance(m, torch.nn.Linear):
            m.register_forward_hook(record("linear"))
    rgb = frame(6)
    got = low.predict(rgb)
    want = hybrid.predict(rgb)
    assert seen["norm"] == {(torch.float32, torch.float32)}
    assert {out for _, out in seen["linear"]} == {torch.bfloat16}
    attention = [m for m in low.model.modules() if hasattr(m, "fused_attn")]
    assert attention and all(m.fused_attn for m in attention)
    assert got.dtype == np.float32
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
