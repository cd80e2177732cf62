"""Rejection warnings are throttled per camera and per reason: one noisy camera does not
hide another camera's problem, nor one kind of problem another kind."""

from __future__ import annotations

from helpers import (
    FAST,
    Probe,
    camera_info,
    rgb_msg,
    small_image,
    spin_until,
    wait_for_subscribers,
)
from rclpy.parameter import Parameter

from dpt_ros.node.node import DptNode
from dpt_ros.node.throttle import KeyedThrottle, one_line, reason_key


def test_keyed_throttle_counts_what_it_holds_back():
    now = [0.0]
    throttle = KeyedThrottle(5.0, max_keys=2, clock=lambda: now[0])
    assert throttle.check("a") == 0
    assert throttle.check("a") is None and throttle.check("a") is None
    assert throttle.check("b") == 0  # another key has its own period
    now[0] = 5.0
    assert throttle.check("a") == 2  # two held back since the last one
    throttle.check("c")  # forgets the least recently seen key, "b"
    assert throttle.check("b") == 0
    assert reason_key("late by 12 ms (0.5 s)") == reason_key("late by 7 ms (1.25 s)")


def test_a_noisy_camera_does_not_hide_another_cameras_problem(ros, capfd):
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + [
                Parameter("depth.random_weights", value=True),
                Parameter("relative_depth.scale", value=1.0),
                Parameter("cameras", value=["front", "rear"]),
            ]
        )
    )
    front, rear = Probe(add, namespace="/front"), Probe(add, namespace="/rear")
    for probe in (front, rear):
        wait_for_subscribers(executor, probe)
    for sec in (1, 2):
        bad = rgb_msg(small_image(), sec)
        bad.encoding = "weird16"
        front.image_pub.publish(bad)
        assert spin_until(executor, lambda s=sec: node.status()["front.rejected"] == str(s), 10)
    rear.info_pub.publish(camera_info(640, 480))  # another resolution than its images
    assert spin_until(executor, lambda: node.cameras[1].camera_info is not None, 5)
    rear.image_pub.publish(rgb_msg(small_image(), 3))
    assert spin_until(executor, lambda: rear.got["depth/image"], 20)
    spin_until(executor, lambda: "camera_info" in node.status()["last_error"], 5)
    err = capfd.readouterr().err
    assert err.count("front: image rejected") == 1  # the second one is held back
    assert "rear: camera_info rejected" in err


def test_reason_key_is_the_kind_and_one_line_escapes():
    from dpt_ros.ros.messages import shown

    def text(encoding: str) -> str:
        return f"image rejected: unsupported image encoding {shown(encoding)}; supported: rgb8"

    kinds = {reason_key(text(e)) for e in ("abc", "x%s%n{0}", "q'\"\\", "z" * 500, "a\nb")}
    assert len(kinds) == 1, kinds
    assert reason_key(text("abc")) != reason_key("image rejected: step=4 is shorter")
    assert one_line("a\nb\r\x1b[31m") == "a\\nb\\r\\x1b[31m"
    assert "\n" not in shown("a\nb") and len(shown("z" * 500)) < 80


def test_random_encodings_are_one_reason_and_forge_no_line(ros, capfd):
    """Ever-new encodings (random text, format strings) are one kind of problem: one
    warning, the rest held back; a newline in an encoding is escaped, never a new line."""
    executor, add = ros
    node = add(
        DptNode(
            parameter_overrides=FAST
            + [
                Parameter("depth.random_weights", value=True),
                Parameter("warmup_width", value=0),
                Parameter("warmup_height", value=0),
            ]
        )
    )
    probe = Probe(add)
    wait_for_subscribers(executor, probe)
    forged = "rgb9\n[ERROR] [1.0] [dpt_node]: forged"
    encodings = [forged, "qzx", "%s%s%n", "{0}{1}", "mono99\r", "x" * 300]
    for i, encoding in enumerate(encodings, 1):
        msg = rgb_msg(small_image(), i)
        msg.encoding = encoding
        probe.image_pub.publish(msg)
        assert spin_until(executor, lambda n=i: node.status()["rejected"] == str(n), 10)
    err = capfd.readouterr().err
    assert err.count("image rejected: unsupported image encoding") == 1, err
    assert not any(line.startswith("[ERROR] [1.0]") for line in err.splitlines()), err
    assert "'rgb9\\n[ERROR] [1.0] [dpt_node]: forged'" in err
    assert "\n" not in node.status()["last_error"] and "\r" not in node.status()["last_error"]
    (result,) = node.set_parameters([Parameter("frame_id", value="cam\n[ERROR] forged")])
    assert not result.successful and "frame_id" in result.reason
