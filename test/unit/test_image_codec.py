"""Tests for dpt_ros.ros.image_codec and dpt_ros.ros.messages (pure numpy, no rclpy.init needed)."""

from __future__ import annotations

import array
import sys

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from dpt_ros.ros.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    compressed_to_rgb,
    depth_to_image_msg,
    image_msg_to_array,
    image_to_rgb,
    labels_to_image_msg,
    rgb_to_image_msg,
)
from dpt_ros.ros.messages import array_to_msg_data, copy_header, message_bytes, new_message

HOST_BIG = int(sys.byteorder == "big")


def make_image(
    encoding: str,
    width: int,
    rows: list[list[int]],
    step: int | None = None,
    is_bigendian: int = 0,
) -> Image:
    """Image whose rows are the given byte lists, each padded to ``step``."""
    row_len = max(len(r) for r in rows)
    step = row_len if step is None else step
    data = bytearray()
    for r in rows:
        data += bytes(r) + bytes([0xEE] * (step - len(r)))  # 0xEE = padding junk
    msg = Image()
    msg.encoding = encoding
    msg.width = width
    msg.height = len(rows)
    msg.step = step
    msg.is_bigendian = is_bigendian
    msg.data = array.array("B", data)
    return msg


def make_header(sec: int = 12, nanosec: int = 345, frame: str = "cam_optical") -> Header:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame)


# ---------------------------------------------------------------- decoding


RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def test_rgb8_with_padded_step() -> None:
    msg = make_image("rgb8", 2, [[*RED, *GREEN], [*BLUE, *WHITE]], step=8)
    out = image_to_rgb(msg)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, [[RED, GREEN], [BLUE, WHITE]])


def test_rgb8_result_does_not_alias_message() -> None:
    msg = make_image("rgb8", 1, [[1, 2, 3]])
    out = image_to_rgb(msg)
    out[0, 0, 0] = 99
    assert msg.data[0] == 1


def test_bgr8() -> None:
    msg = make_image("bgr8", 2, [[0, 0, 255, 0, 255, 0], [255, 0, 0, 10, 20, 30]])
    np.testing.assert_array_equal(image_to_rgb(msg), [[RED, GREEN], [BLUE, (30, 20, 10)]])


def test_rgba8_and_bgra8_drop_alpha() -> None:
    rgba = make_image("rgba8", 2, [[10, 20, 30, 40, 50, 60, 70, 80]], step=9)
    np.testing.assert_array_equal(image_to_rgb(rgba), [[(10, 20, 30), (50, 60, 70)]])
    bgra = make_image("bgra8", 2, [[10, 20, 30, 40, 50, 60, 70, 80]])
    np.testing.assert_array_equal(image_to_rgb(bgra), [[(30, 20, 10), (70, 60, 50)]])


def test_mono8_with_padding() -> None:
    msg = make_image("mono8", 3, [[0, 128, 255], [1, 2, 3]], step=4)
    out = image_to_rgb(msg)
    np.testing.assert_array_equal(out[..., 0], [[0, 128, 255], [1, 2, 3]])
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_little_endian(encoding: str) -> None:
    # values 0x1234, 0xFF01, 0x00FF, 0x8000 -> high bytes 0x12, 0xFF, 0x00, 0x80
    msg = make_image(encoding, 2, [[0x34, 0x12, 0x01, 0xFF], [0xFF, 0x00, 0x00, 0x80]], step=5)
    out = image_to_rgb(msg)
    np.testing.assert_array_equal(out[..., 0], [[0x12, 0xFF], [0x00, 0x80]])
    np.testing.assert_array_equal(out[..., 2], out[..., 0])


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_big_endian(encoding: str) -> None:
    msg = make_image(
        encoding, 2, [[0x12, 0x34, 0xFF, 0x01], [0x00, 0xFF, 0x80, 0x00]], step=6, is_bigendian=1
    )
    np.testing.assert_array_equal(image_to_rgb(msg)[..., 1], [[0x12, 0xFF], [0x00, 0x80]])


# BT.601 limited range, hand-computed from
#   R = 1.164383 (Y-16) + 1.596027 (V-128)
#   G = 1.164383 (Y-16) - 0.391762 (U-128) - 0.812968 (V-128)
#   B = 1.164383 (Y-16) + 2.017232 (U-128)
# rounded to nearest, clipped to 0..255:
#   (Y, U, V) = (16, 128, 128) -> (0, 0, 0)          black
#               (235, 128, 128) -> (255, 255, 255)   white
#               (126, 128, 128) -> (128, 128, 128)   128.08 -> 128
#               (81, 90, 240)   -> (254, 0, 0)       254.44, -0.48, -0.97
#               (145, 54, 34)   -> (0, 255, 1)       0.18, 255.61 (clipped), 0.93
#               (41, 240, 110)  -> (0, 0, 255)       0.38, -0.13, 255.04
#               (255, 128, 128) -> (255, 255, 255)   278.3 clipped
#               (0, 128, 128)   -> (0, 0, 0)         -18.6 clipped
#               (100, 200, 60)  -> (0, 125, 243)     -10.7, 124.88, 243.05
YUV_ROW0 = [((16, 235), 128, 128), ((81, 81), 90, 240)]  # pairs sharing U, V
YUV_ROW1 = [((145, 126), 54, 34), ((41, 41), 240, 110)]
YUV_ROW2 = [((255, 0), 128, 128), ((100, 100), 200, 60)]
EXPECTED_ROW0 = [(0, 0, 0), (255, 255, 255), (254, 0, 0), (254, 0, 0)]
EXPECTED_ROW2 = [(255, 255, 255), (0, 0, 0), (0, 125, 243), (0, 125, 243)]
# Y=126 with the green pixel's chroma: R = 128.08 - 150.03 < 0 -> 0;
# G = 128.08 + 28.99 + 76.42 = 233.49 -> 233; B = 128.08 - 149.27 < 0 -> 0
EXPECTED_ROW1 = [(0, 255, 1), (0, 233, 0), (0, 0, 255), (0, 0, 255)]


def _pack_yuv(pairs: list, uyvy: bool) -> list[int]:
    out: list[int] = []
    for (y0, y1), u, v in pairs:
        out += [u, y0, v, y1] if uyvy else [y0, u, y1, v]
    return out


@pytest.mark.parametrize(
    "encoding, uyvy",
    [("yuv422", True), ("uyvy", True), ("yuv422_yuy2", False), ("yuyv", False)],
)
def test_yuv422_variants(encoding: str, uyvy: bool) -> None:
    rows = [_pack_yuv(r, uyvy) for r in (YUV_ROW0, YUV_ROW1, YUV_ROW2)]
    msg = make_image(encoding, 4, rows, step=10)  # 2 bytes of row padding
    out = image_to_rgb(msg)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, [EXPECTED_ROW0, EXPECTED_ROW1, EXPECTED_ROW2])


@pytest.mark.parametrize(
    "encoding, pixel, expected",
    [
        ("rgb8", [1, 2, 3], (1, 2, 3)),
        ("bgr8", [1, 2, 3], (3, 2, 1)),
        ("rgba8", [1, 2, 3, 4], (1, 2, 3)),
        ("bgra8", [1, 2, 3, 4], (3, 2, 1)),
        ("mono8", [9], (9, 9, 9)),
        ("mono16", [0xCD, 0xAB], (0xAB, 0xAB, 0xAB)),
    ],
)
def test_single_pixel_images(encoding: str, pixel: list[int], expected: tuple) -> None:
    out = image_to_rgb(make_image(encoding, 1, [pixel], step=len(pixel) + 3))
    assert out.shape == (1, 1, 3) and out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out[0, 0], expected)


def test_encoding_is_case_insensitive() -> None:
    msg = make_image("RGB8", 1, [[1, 2, 3]])
    np.testing.assert_array_equal(image_to_rgb(msg), [[(1, 2, 3)]])


def test_supported_list() -> None:
    for enc in (
        "rgb8",
        "bgr8",
        "rgba8",
        "bgra8",
        "mono8",
        "mono16",
        "16UC1",
        "yuv422",
        "uyvy",
        "yuv422_yuy2",
        "yuyv",
    ):
        assert enc in SUPPORTED_ENCODINGS


# ------------------------------------------------------------------ errors


def test_unknown_encoding_lists_supported() -> None:
    msg = make_image("bayer_rggb8", 2, [[1, 2]])
    with pytest.raises(ImageDecodeError) as err:
        image_to_rgb(msg)
    text = str(err.value)
    assert "bayer_rggb8" in text and "rgb8" in text and "yuv422_yuy2" in text


@pytest.mark.parametrize("width, height", [(0, 2), (2, 0), (0, 0)])
def test_zero_size(width: int, height: int) -> None:
    msg = Image(encoding="rgb8", width=width, height=height, step=3 * width)
    with pytest.raises(ImageDecodeError, match="zero size") as err:
        image_to_rgb(msg)
    assert f"width={width}" in str(err.value) and f"height={height}" in str(err.value)


def test_step_smaller_than_row() -> None:
    msg = make_image("rgb8", 2, [[1, 2, 3, 4, 5]], step=5)
    with pytest.raises(ImageDecodeError) as err:
        image_to_rgb(msg)
    assert "step=5" in str(err.value) and "6" in str(err.value)


def test_data_length_mismatch_names_both_numbers() -> None:
    msg = make_image("rgb8", 2, [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    msg.data = msg.data[:-1]  # 11 bytes instead of 12
    with pytest.raises(ImageDecodeError) as err:
        image_to_rgb(msg)
    assert "11" in str(err.value) and "12" in str(err.value)


def test_odd_width_yuv() -> None:
    msg = make_image("uyvy", 3, [[128, 16, 128, 16, 128, 16]])
    with pytest.raises(ImageDecodeError, match="odd width 3"):
        image_to_rgb(msg)


def test_decode_error_is_value_error() -> None:
    assert issubclass(ImageDecodeError, ValueError)


# -------------------------------------------------------------- compressed


def _compressed(data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage()
    msg.format = fmt
    msg.data = array.array("B", data)
    return msg


def _test_image() -> np.ndarray:
    rgb = np.zeros((16, 24, 3), dtype=np.uint8)
    rgb[:8, :12] = RED
    rgb[:8, 12:] = GREEN
    rgb[8:, :12] = BLUE
    rgb[8:, 12:] = (200, 150, 100)
    return rgb


def test_compressed_png_round_trip_exact() -> None:
    rgb = _test_image()
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    out = compressed_to_rgb(_compressed(buf.tobytes(), "png"))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8"])
def test_compressed_jpeg_round_trip_approx(fmt: str) -> None:
    rgb = _test_image()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = compressed_to_rgb(_compressed(buf.tobytes(), fmt))
    assert out.shape == rgb.shape
    # block centres, away from JPEG ringing at the colour edges
    centres = [((3, 5), RED), ((3, 18), GREEN), ((12, 5), BLUE), ((12, 18), (200, 150, 100))]
    for (r, c), colour in centres:
        assert np.abs(out[r, c].astype(int) - colour).max() <= 12, (r, c, out[r, c])


def test_compressed_grayscale_gives_three_channels() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    ok, buf = cv2.imencode(".png", gray)
    assert ok
    out = compressed_to_rgb(_compressed(buf.tobytes(), "mono8; png compressed mono8"))
    assert out.shape == (3, 4, 3)
    for ch in range(3):
        np.testing.assert_array_equal(out[..., ch], gray)


def test_compressed_corrupt_raises() -> None:
    ok, buf = cv2.imencode(".png", _test_image())
    assert ok
    corrupt = b"not an image at all" + buf.tobytes()[40:80]
    with pytest.raises(ImageDecodeError, match="corrupt"):
        compressed_to_rgb(_compressed(corrupt, "png"))


def test_compressed_empty_raises() -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        compressed_to_rgb(_compressed(b"", "jpeg"))


def test_compressed_depth_format_rejected() -> None:
    with pytest.raises(ImageDecodeError, match="compressedDepth"):
        compressed_to_rgb(_compressed(b"\x00" * 20, "16UC1; compressedDepth png"))


# ---------------------------------------------------------------- encoders


def test_depth_to_image_msg_round_trip() -> None:
    depth = np.array([[0.5, 1.25, np.nan], [2.0, np.inf, 10.0]], dtype=np.float32)
    header = make_header()
    msg = depth_to_image_msg(depth, header)
    assert msg.encoding == "32FC1"
    assert (msg.height, msg.width, msg.step) == (2, 3, 12)
    assert msg.is_bigendian == HOST_BIG
    assert isinstance(msg.data, array.array) and len(msg.data) == 24
    back = image_msg_to_array(msg)
    assert back.dtype == np.float32 and back.shape == (2, 3)
    np.testing.assert_array_equal(back, depth)  # NaN positions compare equal


def test_header_is_copied_not_shared() -> None:
    header = make_header(sec=7, nanosec=8, frame="a")
    msg = depth_to_image_msg(np.zeros((1, 1), np.float32), header)
    assert msg.header is not header and msg.header.stamp is not header.stamp
    header.frame_id = "changed"
    header.stamp.sec = 99
    assert msg.header.frame_id == "a"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (7, 8)


def test_depth_from_float64_and_noncontiguous() -> None:
    depth = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    back = image_msg_to_array(depth_to_image_msg(depth, make_header()))
    np.testing.assert_array_equal(back, depth.astype(np.float32))


def test_depth_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        depth_to_image_msg(np.zeros((2, 2, 1), np.float32), make_header())
    with pytest.raises(ValueError, match="floating point"):
        depth_to_image_msg(np.zeros((2, 2), np.uint16), make_header())


def test_big_endian_32fc1_read_back() -> None:
    depth = np.array([[1.5, -2.0], [3.25, 4.0]], dtype=">f4")
    rows = [list(depth[i].tobytes()) for i in range(2)]
    msg = make_image("32FC1", 2, rows, step=10, is_bigendian=1)
    back = image_msg_to_array(msg)
    assert back.dtype == np.float32 and back.dtype.isnative
    np.testing.assert_array_equal(back, [[1.5, -2.0], [3.25, 4.0]])


def test_labels_to_image_msg_round_trip() -> None:
    labels = np.array([[0, 1, 150], [255, 7, 3]], dtype=np.uint8)
    msg = labels_to_image_msg(labels, make_header())
    assert (msg.encoding, msg.step, msg.is_bigendian) == ("mono8", 3, HOST_BIG)
    np.testing.assert_array_equal(image_msg_to_array(msg), labels)
    # other integer dtypes are accepted when in range
    msg64 = labels_to_image_msg(labels.astype(np.int64), make_header())
    np.testing.assert_array_equal(image_msg_to_array(msg64), labels)
    with pytest.raises(ValueError, match="0..255"):
        labels_to_image_msg(np.array([[300]]), make_header())


def test_rgb_to_image_msg_round_trip() -> None:
    rgb = _test_image()
    msg = rgb_to_image_msg(rgb, make_header())
    assert (msg.encoding, msg.step, msg.width, msg.height) == ("rgb8", 72, 24, 16)
    np.testing.assert_array_equal(image_msg_to_array(msg), rgb)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_image_msg(rgb.astype(np.float32), make_header())


def test_image_msg_to_array_rejects_other_encodings() -> None:
    with pytest.raises(ImageDecodeError, match="32FC1"):
        image_msg_to_array(make_image("bgr8", 1, [[1, 2, 3]]))


def test_msg_data_accepted_with_field_checks() -> None:
    # The array.array we build passes rclpy's checked setter without copying.
    data = array_to_msg_data(np.arange(6, dtype=np.uint8).reshape(2, 3))
    msg = Image(check_fields=True)
    msg.data = data
    assert msg.data is data and list(msg.data) == [0, 1, 2, 3, 4, 5]


def test_new_message_keeps_array_data_without_copy() -> None:
    data = array_to_msg_data(np.arange(4, dtype=np.uint8))
    msg = new_message(Image)
    msg.data = data
    assert msg.data is data


def test_copy_header_is_independent() -> None:
    hdr = make_header()
    copy = copy_header(hdr)
    assert copy == hdr and copy is not hdr
    hdr.frame_id = "changed"
    hdr.stamp.sec = 99
    assert (copy.frame_id, copy.stamp.sec) == ("cam_optical", 12)
    with pytest.raises(TypeError, match="std_msgs.msg.Header"):
        copy_header(object())


@pytest.mark.parametrize(
    "payload",
    [
        b"\x01\x02\x03",
        bytearray(b"\x01\x02\x03"),
        [1, 2, 3],
        array.array("B", [1, 2, 3]),
        np.array([1, 2, 3], dtype=np.uint8),
    ],
    ids=["bytes", "bytearray", "list", "array", "ndarray"],
)
def test_message_bytes_accepts_payload_types(payload: object) -> None:
    out = message_bytes(payload)
    assert out.dtype == np.uint8 and out.shape == (3,)
    np.testing.assert_array_equal(out, [1, 2, 3])


def test_encoded_image_survives_rclpy_serialization() -> None:
    """The Image we build is publishable: rclpy serialises and restores it."""
    serialization = pytest.importorskip("rclpy.serialization")
    depth = np.linspace(0.1, 9.0, 12, dtype=np.float32).reshape(3, 4)
    msg = depth_to_image_msg(depth, make_header())
    back = serialization.deserialize_message(serialization.serialize_message(msg), Image)
    np.testing.assert_array_equal(image_msg_to_array(back), depth)
    assert back.header.stamp.sec == 12 and back.header.frame_id == "cam_optical"
