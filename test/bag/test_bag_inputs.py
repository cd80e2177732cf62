"""``dpt-ros bag`` refuses an output inside the input bag's directory, tells how to
recover a cut-short MCAP file, and skips corrupt messages."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    NET,
    PERIOD,
    T0,
    H,
    W,
    bag_camera_info,
    check_copied,
    image_msg,
    one_error_line,
    read_bag,
    run_bag,
    tree_hash,
    write_bag,
)
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image


def _error(capsys) -> str:
    return one_error_line(2, capsys.readouterr().err)


@pytest.mark.parametrize("as_file", [False, True])
def test_output_inside_the_input_bag_is_refused(tmp_path, capsys, as_file):
    inp = tmp_path / "in"
    topic = write_bag(inp)
    before = tree_hash(inp)
    source = next(inp.glob("*.db3")) if as_file else inp
    out = inp / "out"
    assert run_bag(str(source), "-o", str(out), "--image-topic", topic, *NET) == 2
    assert "inside the input bag's directory" in _error(capsys)
    assert not out.exists() and tree_hash(inp) == before


def test_cut_short_mcap_names_the_recovery(tmp_path, capsys):
    inp = tmp_path / "in"
    topic = write_bag(inp, storage="mcap")
    mcap = next(inp.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    for source in (inp, mcap):
        out = tmp_path / "out"
        assert run_bag(str(source), "-o", str(out), "--image-topic", topic, *NET) == 2
        line = _error(capsys)
        assert "magic" in line and f"mcap recover {mcap.name} -o recovered.mcap" in line


def test_corrupt_camera_info_and_reference_are_skipped_and_counted(tmp_path, capsys):
    """A corrupt serialized camera_info or alignment reference is skipped and counted as a
    corrupt image is: every frame is processed, every input message copied."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    inp, outp = tmp_path / "in", tmp_path / "out"
    reference = Image(height=H, width=W, encoding="32FC1", step=W * 4)
    reference.data = np.full((H, W), 2.0, np.float32).tobytes()
    reference.header.frame_id = "cam_optical"
    with Writer(inp, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        info, image, ref = (
            writer.add_connection(topic, f"sensor_msgs/msg/{kind}", typestore=store)
            for topic, kind in (
                ("/cam/camera_info", "CameraInfo"),
                ("/cam/image_raw", "Image"),
                ("/cam/ref", "Image"),
            )
        )
        writer.write(info, T0 - 2, b"corrupt camera_info")  # the camera's first message
        writer.write(info, T0 - 1, serialize_message(bag_camera_info(50.0)))
        for i in range(3):
            t = T0 + i * PERIOD
            reference.header.stamp = image_msg(i).header.stamp
            writer.write(ref, t - 1, b"corrupt" if i == 1 else serialize_message(reference))
            writer.write(image, t, serialize_message(image_msg(i)))
            if i == 1:
                writer.write(info, t, b"\x00\x01\x00\x00" + b"\xff" * 40)
    before = tree_hash(inp)
    argv = [str(inp), "-o", str(outp), "--image-topic", "/cam/image_raw", *NET]
    argv += ["--segmentation-model", "dpt_hybrid_ade20k"]  # label_info reads camera_info
    argv += ["--alignment", "reference_depth", "--alignment-topic", "/cam/ref"]
    code = run_bag(*argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    assert "skipped 2 undecodable camera_info message(s) of /cam/camera_info" in err
    assert "1 reference(s) rejected: a corrupt sensor_msgs/Image message" in err
    assert "3 frame(s) of /cam/image_raw processed, 0 skipped" in out
    assert tree_hash(inp) == before
    bag = read_bag(outp)
    check_copied(inp, bag)
    assert len(bag["/cam/depth/relative"]) == len(bag["/cam/depth/camera_info"]) == 3
    assert len(bag["/cam/segmentation/label_info"]) == 1


@pytest.mark.parametrize("topic", ("/nope", "/cam/camera_info"))
def test_a_bad_alignment_topic_is_refused_before_any_output(tmp_path, capsys, topic):
    """An alignment topic the bag lacks, or of another type, is one error line, and no
    output bag is left behind (it was refused only once the output existed)."""
    inp, outp = tmp_path / "in", tmp_path / "out"
    image_topic = write_bag(inp)
    code = run_bag(
        str(inp), "-o", str(outp), "--image-topic", image_topic, *NET,
        "--alignment", "reference_depth", "--alignment-topic", topic,
    )  # fmt: skip
    one_error_line(code, capsys.readouterr().err, topic)
    assert not outp.exists()


@pytest.mark.parametrize("namespace", ["/a b", "../../x", "cam\nx", "/1cam", "c~m"])
def test_output_namespace_must_be_a_ros_namespace(tmp_path, capsys, namespace):
    """Names rclpy refuses (blanks, '..', a newline, a token starting with a digit)
    never reach the bag: one error line, exit status 2, no output."""
    inp, out = tmp_path / "in", tmp_path / "out"
    topic = write_bag(inp)
    code = run_bag(
        str(inp), "-o", str(out), "--image-topic", topic, *NET, "--output-namespace", namespace
    )
    line = one_error_line(code, capsys.readouterr().err, "is not a valid ROS namespace")
    assert repr(namespace) in line and "\n" not in line
    assert not out.exists()


def test_valid_output_namespaces_are_taken(tmp_path, capsys):
    from dpt_ros.cli.bag.job import check_output_namespace

    for namespace in (None, "", "/", "cam", "/robot_1/cam/", " cam "):
        check_output_namespace(namespace)


def test_topic_names_from_a_bag_cannot_forge_lines():
    """A bag's topic names go into error lines (the image topics it has): escaped and
    quoted unless plain, and an error line never carries an ESC or a newline."""
    from dpt_ros.cli.bag.job import _describe_topics
    from dpt_ros.cli.main import _one_line

    forged = "/a\x1b[2J\n[FATAL] [dpt_node]: forged" + "x" * 20_000
    text = _describe_topics({"/cam/image_raw": "sensor_msgs/msg/Image", forged: "t"})
    assert text.startswith("/cam/image_raw (sensor_msgs/msg/Image), '/a\\x1b[2J\\n[FATAL]")
    assert len(text) < 200
    line = _one_line(ValueError(f"image topic {forged[:40]}\x1b[31m is not in the bag"))
    assert "\x1b" not in line and "\n" not in line and "\\x1b[31m" in line
