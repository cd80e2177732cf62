"""launch/nav2_depth_pipeline.launch.py (Nav2's depth tutorial pipeline with dpt_ros),
run through stand-ins of the launch API that take exactly its arguments
(test/support/launch_api.py), its params file read by rcl itself, and its Nav2 costmaps
checked by ``dpt-ros doctor nav2`` against nav2_bringup's jazzy parameters."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import launch_api
import pytest
import rclpy
import yaml
from rclpy.node import Node

from dpt_ros.cli.main import main
from dpt_ros.node.params import PARAMS, validate

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "nav2_depth_pipeline.launch.py"
NODE_PARAMS = REPO / "config" / "nav2_depth_pipeline.yaml"
COSTMAPS = REPO / "config" / "nav2_depth_pipeline_costmap.yaml"
JAZZY = REPO / "test" / "fixtures" / "nav2" / "nav2_params_jazzy.yaml"


def _launch(monkeypatch, **given: str):
    """The launch file's nodes for the launch arguments ``given`` (the rest at their
    declared defaults): {name: (Node stand-in, the context)}."""
    launch_api.install(monkeypatch, share=str(REPO))
    spec = importlib.util.spec_from_file_location("nav2_depth_pipeline_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {
        e.name: e.default_value
        for e in description.entities
        if isinstance(e, launch_api.DeclareLaunchArgument)
    }
    assert set(given) <= set(declared), set(given) - set(declared)
    context = launch_api.LaunchContext({**declared, **given})
    (opaque,) = [e for e in description.entities if isinstance(e, launch_api.OpaqueFunction)]
    nodes = opaque.function(context, *opaque.args, **opaque.kwargs)
    return {n.kwargs["name"]: n for n in nodes}, context, declared


def test_the_tutorials_pipeline_with_dpt_node(monkeypatch):
    nodes, context, declared = _launch(monkeypatch)
    assert declared["params_file"] == str(REPO / "config" / "nav2_depth_pipeline.yaml")
    assert set(nodes) == {"usb_cam", "dpt_node"}
    camera, dpt = nodes["usb_cam"].kwargs, nodes["dpt_node"].kwargs
    assert (camera["package"], camera["executable"]) == ("usb_cam", "usb_cam_node_exe")
    assert (dpt["package"], dpt["executable"]) == ("dpt_ros", "dpt_node")
    # One namespace: usb_cam's image_raw and camera_info and dpt_node's points are
    # /pipeline/..., the topic of the tutorial's voxel layer.
    assert camera["namespace"] == dpt["namespace"] == "pipeline"
    assert dpt["remappings"] == [("image", "image_raw")]  # camera_info: its sibling
    assert dpt["parameters"] == [declared["params_file"], {"use_sim_time": False}]
    assert nodes["usb_cam"].condition.evaluate(context) is True
    assert nodes["dpt_node"].condition is None


def test_launch_arguments_override_the_file_only_where_given(monkeypatch):
    nodes, context, _ = _launch(
        monkeypatch,
        depth_model="depth_anything_3_small",
        camera_height="0.25",
        device="cuda",
        use_camera="false",
        image="/front/image_rect",
        camera_info="/front/camera_info",
        namespace="robot",
        use_sim_time="true",
    )
    dpt = nodes["dpt_node"].kwargs
    assert dpt["parameters"][1] == {
        "use_sim_time": True,
        "depth.model_type": "depth_anything_3_small",
        "device": "cuda",
        "relative_depth.alignment": "ground_plane",
        "relative_depth.camera_height": 0.25,
    }
    assert dpt["remappings"] == [
        ("image", "/front/image_rect"),
        ("camera_info", "/front/camera_info"),
    ]
    assert dpt["namespace"] == "robot"
    assert nodes["usb_cam"].condition.evaluate(context) is False
    nodes, context, _ = _launch(monkeypatch, use_camera="maybe")
    with pytest.raises(ValueError, match="Unknown value 'maybe'"):
        nodes["usb_cam"].condition.evaluate(context)


def test_the_stand_ins_refuse_what_launch_ros_refuses():
    """The upstream pipeline's non-composed branch passes ``remapping=`` to Node: the
    real Node raises TypeError, and so must the stand-in."""
    with pytest.raises(TypeError, match="'remapping'"):
        launch_api.Node(package="usb_cam", executable="usb_cam_node_exe", remapping=[])
    with pytest.raises(TypeError, match="'executable'"):
        launch_api.Node(package="usb_cam")


def test_the_params_file_reaches_both_nodes_through_rcl():
    """rcl reads the file for /pipeline/usb_cam and /pipeline/dpt_node ('/**/<name>'
    keys), and dpt_node's values are valid, with the launch overrides too."""
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(NODE_PARAMS)], context=context)
    try:
        made = {}
        for name in ("usb_cam", "dpt_node"):
            made[name] = Node(
                name,
                namespace="pipeline",
                context=context,
                allow_undeclared_parameters=True,
                automatically_declare_parameters_from_overrides=True,
            )
        try:
            camera = made["usb_cam"]
            assert camera.get_parameter("video_device").value == "/dev/video0"
            assert camera.get_parameter("framerate").value == 30.0
            dpt = made["dpt_node"]
            given = {
                p.name: dpt.get_parameter(p.name).value for p in PARAMS if dpt.has_parameter(p.name)
            }
            assert given["depth.model_type"] == "depth_anything_3_metric_large"
            assert given["cloud.stride"] == 0 and given["rectify"] is True
            values = {p.name: p.default for p in PARAMS} | given
            assert validate(values) == []
            relative = values | {
                "depth.model_type": "depth_anything_3_small",
                "relative_depth.alignment": "ground_plane",
                "relative_depth.camera_height": 0.25,
            }
            assert validate(relative) == []
        finally:
            for node in made.values():
                node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_the_packages_it_starts_are_exec_depends_and_installed():
    source = LAUNCH.read_text()
    deps = {e.text for e in ET.parse(REPO / "package.xml").getroot().findall("exec_depend")}
    assert {"usb_cam", "launch", "launch_ros"} <= deps
    assert 'package="usb_cam"' in source and 'package="dpt_ros"' in source
    setup = (REPO / "setup.py").read_text()  # launch/*.launch.py and config/*.yaml
    assert 'glob("launch/*.launch.py")' in setup and 'glob("config/*.yaml")' in setup


def _doctor(tmp_path: Path, capsys, *argv: str):
    code = main(["doctor", "nav2", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_the_shipped_costmaps_match_the_node_and_mark_by_confidence(tmp_path, capsys):
    """nav2_bringup's jazzy parameters with the shipped costmap sections merged in: no
    finding. With the tutorial's model the marking source holds every point (a note);
    with an any-view model it is confidence-aware (no note)."""
    costmaps = yaml.safe_load(COSTMAPS.read_text())
    for which in ("local_costmap", "global_costmap"):
        layer = costmaps[which][which]["ros__parameters"]["voxel_layer"]
        assert layer["observation_sources"].split() == ["dpt_marking", "dpt_clearing"]
        marking, clearing = layer["dpt_marking"], layer["dpt_clearing"]
        assert (marking["marking"], marking["clearing"]) == (True, False)
        assert (clearing["marking"], clearing["clearing"]) == (False, True)
        assert marking["topic"] == "/pipeline/points_confident"
        assert clearing["topic"] == "/pipeline/points"
        assert clearing["raytrace_max_range"] > marking["obstacle_max_range"]
    files = [str(JAZZY), str(COSTMAPS), "--namespace", "pipeline"]
    code, lines, err = _doctor(tmp_path, capsys, *files, "--node-params", str(NODE_PARAMS))
    assert (code, lines) == (0, []), lines
    assert "matches dpt_node" in err
    assert err.count("reads points_confident, but depth_anything_3_metric_large has no") == 2
    small = tmp_path / "small.yaml"
    node = yaml.safe_load(NODE_PARAMS.read_text())
    node["/**/dpt_node"]["ros__parameters"].update(
        {
            "depth.model_type": "depth_anything_3_small",
            "relative_depth.alignment": "ground_plane",
            "relative_depth.camera_height": 0.25,
        }
    )
    small.write_text(yaml.safe_dump(node))
    code, lines, err = _doctor(tmp_path, capsys, *files, "--node-params", str(small))
    assert (code, lines) == (0, []), lines
    assert "points_confident" not in err
    # The tutorial's own voxel column (16 x 0.05 m under max_obstacle_height 2.0): a
    # finding, which the shipped sections fix.
    tutorial = yaml.safe_load(COSTMAPS.read_text())
    layer = tutorial["local_costmap"]["local_costmap"]["ros__parameters"]["voxel_layer"]
    layer.update(z_resolution=0.05, z_voxels=16)
    path = tmp_path / "tutorial.yaml"
    path.write_text(yaml.safe_dump(tutorial))
    code, lines, _ = _doctor(
        tmp_path, capsys, str(JAZZY), str(path), *files[2:], "--node-params", str(NODE_PARAMS)
    )
    # For the marking source only: a clearing ray above the column is clipped to it.
    assert code == 1 and len(lines) == 1, lines
    assert "covers 0 to 0.8 m, below max_obstacle_height 2 m of " in lines[0]
    assert "voxel_layer.dpt_marking: points from 0.8 to 2 m are dropped" in lines[0]
