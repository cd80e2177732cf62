"""``dpt-ros doctor nav2 --live``: the running node's own /diagnostics decide whether
Nav2's collision monitor and expected_update_rate hold its cloud (real rclpy pub/sub:
a dpt_node and the doctor's listener in one process, each in its own context)."""

from __future__ import annotations

import threading
from pathlib import Path

import yaml
from helpers import camera_info, rgb_msg, small_image, spin_until, start_node, wait_for_subscribers
from rclpy.parameter import Parameter

from dpt_ros.cli.doctor_live import pick_status
from dpt_ros.cli.main import main

JAZZY = Path(__file__).resolve().parents[1] / "fixtures" / "nav2" / "nav2_params_jazzy.yaml"


def test_pick_status_takes_the_node_by_name_and_namespace():
    heard = [
        ("/front/dpt_node: DPT inference", 1.0, {"processing_ms_median": "1"}),
        ("/rear/dpt_node: DPT inference", 1.1, {"processing_ms_median": "2"}),
        ("/front/dpt_node: DPT inference", 2.0, {"processing_ms_median": "3"}),
        ("/controller_server: something else", 2.1, {}),
    ]
    assert pick_status(heard, "dpt_node", "front") == (
        "/front/dpt_node",
        [(1.0, {"processing_ms_median": "1"}), (2.0, {"processing_ms_median": "3"})],
    )
    assert "give --namespace" in pick_status(heard, "dpt_node", None)
    assert pick_status(heard[1:2], "dpt_node", None)[0] == "/rear/dpt_node"
    missing = pick_status(heard, "dpt_node", "/side/")
    assert missing.startswith("no /diagnostics from /side/dpt_node (dpt_node instances heard:")
    assert pick_status([], "dpt", None).endswith("(dpt_node instances heard: none)")


def _files(tmp_path: Path, source_timeout: float) -> list[str]:
    tree = yaml.safe_load(JAZZY.read_text())
    monitor = tree["collision_monitor"]["ros__parameters"]
    monitor["observation_sources"] = ["scan", "camera"]
    monitor["camera"] = {
        "type": "pointcloud",
        "topic": "/points",
        "min_height": 0.1,
        "max_height": 0.5,
        "source_timeout": source_timeout,
        "enabled": True,
    }
    nav2 = tmp_path / f"nav2_{source_timeout}.yaml"
    nav2.write_text(yaml.safe_dump(tree))
    node = tmp_path / "node.yaml"
    # The node's side as the doctor reads it: on the GPU, so no documented figure.
    params = {"relative_depth.scale": 0.5, "device": "cuda"}
    node.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    return [str(nav2), "--node-params", str(node), "--namespace", "/"]


def _doctor_while_spinning(executor, argv: list[str], capsys) -> tuple[int, list[str], str]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(argv)))
    thread.start()
    spin_until(executor, lambda: not thread.is_alive(), 60)
    thread.join()
    out, err = capsys.readouterr()
    return result["code"], out.splitlines(), err


def test_live_takes_the_running_nodes_latency(ros, tmp_path, capsys):
    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.random_weights", value=True),
        Parameter("relative_depth.scale", value=0.5),
        Parameter("diagnostics_period", value=0.2),
    )
    wait_for_subscribers(executor, probe)
    probe.info_pub.publish(camera_info(64, 48))
    spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)

    def camera() -> None:  # a live camera at 10 Hz, stamped now
        msg = rgb_msg(small_image(48, 64), 0)
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        probe.image_pub.publish(msg)

    probe.node.create_timer(0.1, camera)
    assert spin_until(executor, lambda: len(probe.got["points"]) >= 3, 60)
    # Without --live the node's device (cuda) has no documented figure: cannot tell.
    files = _files(tmp_path, 0.001)
    code, lines, _ = _doctor_while_spinning(executor, ["doctor", "nav2", *files], capsys)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("cannot tell: "), lines
    # With it, the measured age (its latency plus one interval) is beyond 0.001 s: a
    # finding that names its source.
    argv = ["doctor", "nav2", *files, "--live", "20"]
    code, lines, err = _doctor_while_spinning(executor, argv, capsys)
    assert code == 1 and len(lines) == 1, (lines, err)
    assert lines[0].startswith("collision_monitor.camera.source_timeout: 0.001 s is shorter")
    assert "measured by the running /dpt_node (latency " in lines[0]
    assert "note: --live: measured by the running /dpt_node" in err
    # A timeout that the measured age keeps: no finding.
    files = _files(tmp_path, 1e9)
    code, lines, _ = _doctor_while_spinning(
        executor, ["doctor", "nav2", *files, "--live", "20"], capsys
    )
    assert (code, lines) == (0, []), lines


def test_live_without_an_answer_falls_back_to_the_figures(ros, tmp_path, capsys):
    executor, _ = ros
    files = _files(tmp_path, 0.001)
    argv = ["doctor", "nav2", *files, "--node-name", "nobody", "--live", "0.5"]
    code, lines, err = _doctor_while_spinning(executor, argv, capsys)
    assert code == 0 and lines[0].startswith("cannot tell: "), lines
    assert "note: --live: no /diagnostics from /nobody" in err
    assert "the documented speed figures stand in" in err
