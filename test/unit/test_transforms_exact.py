"""Pre-processing against OpenCV itself: the originals' ``cv2.resize(INTER_CUBIC)`` of a
float64 image, and their float64 normalisation, reproduced by ``dpt_ros.models``.

torch's bicubic resize, which dpt_ros used before, is 2e-5 away from OpenCV at factors
such as 1280 -> 672 (OpenCV computes coordinates and weights in float32); the random
test networks amplify that about 30 times. These tests compare with ``cv2.resize`` on
random images, on the test image, and at the sizes the two model families use.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpt_ros.models.opencv_cubic import cubic_taps, resize_cubic
from dpt_ros.models.transforms import network_input_size, preprocess

cv2 = pytest.importorskip("cv2")

#: Float64 rounding of the sums; on x86-64 the results are in fact equal bit for bit.
RESIZE_ATOL = 1e-12

DPT_MEAN_STD = ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
IMAGENET_MEAN_STD = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def dpt_size(image_hw):
    return network_input_size(image_hw, (384, 384), True, 32, "minimal")


def dav2_size(image_hw):
    return network_input_size(image_hw, (518, 518), True, 14, "lower_bound")


def opencv_resize(image: np.ndarray, size_hw) -> np.ndarray:
    """``cv2.resize`` of an (H, W, C) image to (h, w), INTER_CUBIC, shape kept 3-D."""
    h, w = size_hw
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, image.shape[2])


def ours(image: np.ndarray, size_hw) -> np.ndarray:
    return resize_cubic(torch.from_numpy(image)[None], size_hw)[0].numpy()


#: (image, output) sizes: the two families' sizes for a 720p camera, KITTI and VGA, then
#: odd ones (up in both axes, down in both, up in one and down in the other, one axis
#: kept, integer ratios, single pixels).
SIZES = [
    ((720, 1280), dpt_size((720, 1280))),
    ((720, 1280), dav2_size((720, 1280))),
    ((375, 1242), dpt_size((375, 1242))),
    ((375, 1242), dav2_size((375, 1242))),
    ((480, 640), dpt_size((480, 640))),
    ((480, 640), dav2_size((480, 640))),
    ((37, 53), (64, 96)),
    ((64, 96), (37, 53)),
    ((37, 53), (20, 96)),
    ((100, 100), (100, 37)),
    ((4, 6), (2, 3)),
    ((8, 6), (24, 18)),
    ((1, 1), (5, 7)),
    ((3, 2), (1, 1)),
]


def test_sizes_are_the_families_sizes():
    """The table above uses non-trivial factors (1280 -> 672 is not a short binary
    fraction), where torch and OpenCV differ."""
    assert SIZES[0][1] == (384, 672)
    assert SIZES[1][1] == (518, 924)
    assert SIZES[2][1] == (384, 1280)
    assert SIZES[3][1] == (518, 1722)


@pytest.mark.parametrize("image_hw,size_hw", SIZES, ids=lambda v: "x".join(map(str, v)))
def test_resize_is_opencv_inter_cubic_on_float64(image_hw, size_hw):
    rng = np.random.default_rng(sum(image_hw) * 1000 + sum(size_hw))
    image = rng.random((*image_hw, 3))
    got = ours(image, size_hw)
    assert got.dtype == np.float64 and got.shape == (*size_hw, 3)
    assert np.abs(got - opencv_resize(image, size_hw)).max() <= RESIZE_ATOL


def test_torch_bicubic_is_not_opencv_at_720p():
    """Why the tables exist: torch's bicubic, even in float64, misses OpenCV by far more
    than the tolerance above at DPT's 720p size (so the test above can tell them apart)."""
    image = np.random.default_rng(0).random((720, 1280, 3))
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    torch_out = torch.nn.functional.interpolate(
        x, size=(384, 672), mode="bicubic", align_corners=False
    )[0].permute(1, 2, 0)
    assert np.abs(torch_out.numpy() - opencv_resize(image, (384, 672))).max() > 1e-6


def test_resize_keeps_a_kept_size_and_the_dtype_and_device():
    x = torch.rand(2, 5, 7, 3, dtype=torch.float64)
    assert resize_cubic(x, (5, 7)) is x
    out = resize_cubic(x, (5, 3))
    assert out.shape == (2, 5, 3, 3) and out.dtype == torch.float64 and out.device == x.device
    for b in range(2):  # every image of a batch resized alike
        assert np.abs(out[b].numpy() - opencv_resize(x[b].numpy(), (5, 3))).max() <= RESIZE_ATOL


def test_taps_are_opencvs_at_the_borders():
    """Upscaling's first output pixel lies left of the first source pixel: its taps are
    clamped to the image (replicated border) and its weights still sum to one."""
    index, weight = cubic_taps(3, 9)
    assert index.shape == weight.shape == (4, 9)
    assert weight.dtype == np.float32
    assert index[:, 0].tolist() == [0, 0, 0, 1]
    assert index[:, -1].tolist() == [1, 2, 2, 2]
    assert np.all(np.abs(weight.sum(axis=0, dtype=np.float64) - 1) < 1e-6)
    assert cubic_taps(3, 9) is cubic_taps(3, 9)  # built once per size pair


def test_resize_refuses_empty_sizes():
    with pytest.raises(ValueError, match="positive"):
        resize_cubic(torch.zeros(1, 4, 4, 3, dtype=torch.float64), (0, 4))
    with pytest.raises(ValueError, match="positive"):
        cubic_taps(0, 4)


def originals_preprocessing(rgb: np.ndarray, size_hw, mean, std) -> np.ndarray:
    """Both originals' input pipeline: /255, cv2 INTER_CUBIC, normalise, all float64,
    then (3, h, w) float32."""
    image = opencv_resize(rgb / 255.0, size_hw)
    image = (image - np.asarray(mean)) / np.asarray(std)
    return np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)


def _within_one_float32_step(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal, but for a float64 rounding that crossed a float32 rounding boundary."""
    return bool(np.all(np.abs(got - want) <= np.spacing(np.abs(want))))


@pytest.mark.parametrize("family", ["dpt", "dav2"])
@pytest.mark.parametrize(
    "image_hw",
    [(480, 640), (720, 1280), (375, 1242), (37, 53)],
    ids=lambda v: "x".join(map(str, v)),
)
def test_preprocess_is_the_originals_input(image_hw, family):
    rgb = np.random.default_rng(image_hw[0]).integers(0, 256, (*image_hw, 3), dtype=np.uint8)
    size = dpt_size(image_hw) if family == "dpt" else dav2_size(image_hw)
    mean, std = DPT_MEAN_STD if family == "dpt" else IMAGENET_MEAN_STD
    got = preprocess(torch.from_numpy(rgb)[None], size, mean, std)
    assert got.dtype == torch.float32 and got.shape == (1, 3, *size)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert _within_one_float32_step(got[0].numpy(), originals_preprocessing(rgb, size, mean, std))


def test_preprocess_of_the_test_image_is_the_originals(scene_a_rgb):
    """On the test image (the goldens' input), for both families' sizes, and in a batch
    of two whose images are processed alike."""
    batch = torch.from_numpy(np.stack([scene_a_rgb, scene_a_rgb[::-1].copy()]))
    for size, (mean, std) in [
        (dpt_size(scene_a_rgb.shape[:2]), DPT_MEAN_STD),
        (dav2_size(scene_a_rgb.shape[:2]), IMAGENET_MEAN_STD),
    ]:
        got = preprocess(batch, size, mean, std).numpy()
        for b in range(2):
            want = originals_preprocessing(batch[b].numpy(), size, mean, std)
            assert _within_one_float32_step(got[b], want), size


def test_preprocess_with_float32_statistics_is_one_step_away(scene_a_rgb):
    """Statistics as float32 tensors (how a caller keeps them on the device) are the
    float32 roundings of ImageNet's values: the input moves by at most a float32 step
    or two, far below what the network notices; float64 tensors are exact."""
    images = torch.from_numpy(scene_a_rgb)[None]
    size = dav2_size(scene_a_rgb.shape[:2])
    mean, std = IMAGENET_MEAN_STD
    exact = preprocess(images, size, mean, std)
    as64 = preprocess(
        images,
        size,
        torch.tensor(mean, dtype=torch.float64),
        torch.tensor(std, dtype=torch.float64),
    )
    as32 = preprocess(images, size, torch.tensor(mean), torch.tensor(std))
    assert torch.equal(as64, exact)
    assert (as32 - exact).abs().max().item() <= 5e-7
