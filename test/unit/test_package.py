"""The package around the code: config, launch file, docs, package.xml stay in step."""

from __future__ import annotations

import ast
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import rclpy
from rclpy.node import Node

from dpt_ros.node.params import PARAMS
from dpt_ros.pipeline.frames import OUTPUT_TOPICS

REPO = Path(__file__).resolve().parents[2]


def test_config_yaml_loads_through_rcl_with_every_default():
    text = (REPO / "config" / "dpt.yaml").read_text()
    context = rclpy.Context()
    rclpy.init(
        args=["--ros-args", "--params-file", str(REPO / "config" / "dpt.yaml")], context=context
    )
    try:
        node = Node(
            "dpt_node",
            context=context,
            allow_undeclared_parameters=True,
            automatically_declare_parameters_from_overrides=True,
        )
        try:
            for p in PARAMS:
                if isinstance(p.default, tuple):
                    # rcl reads an empty YAML list as "not set": the file shows the
                    # parameter commented out, with an example.
                    assert not node.has_parameter(p.name), p.name
                    assert f"\n    # {p.name}: [" in text, p.name
                    continue
                assert node.get_parameter(p.name).value == p.default, p.name
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_launch_file_uses_the_launch_ros_api_and_known_parameters():
    source = (REPO / "launch" / "dpt.launch.py").read_text()
    tree = ast.parse(source)
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in names
    assert "from launch_ros.actions import Node" in source
    declared = set(re.findall(r'DeclareLaunchArgument\(\s*"([a-z_]+)"', source))
    remaps = ast.literal_eval(source.split("_OUTPUT_REMAPS = ", 1)[1].split("\n}\n", 1)[0] + "}")
    assert set(remaps.values()) <= set(OUTPUT_TOPICS), remaps
    declared |= set(remaps)  # declared in a loop
    assert declared == {
        "node_name",
        "depth_topic",
        "points_topic",
        "depth_camera_info_topic",
        "labels_topic",
        "confidence_topic",
        "params_file",
        "namespace",
        "image",
        "camera_info",
        "depth_model",
        "segmentation_model",
        "device",
        "use_sim_time",
        "lifecycle",
        "lifecycle_manager",
        "lifecycle_manager_params",
    }
    assert 'executable="dpt_lifecycle_node" if lifecycle else "dpt_node"' in source
    # The manager of lifecycle_manager:=true: Nav2's executable, beside the node.
    assert 'package="nav2_lifecycle_manager"' in source
    assert 'executable="lifecycle_manager"' in source
    assert 'name="lifecycle_manager_perception"' in source
    known = {p.name for p in PARAMS} | {"use_sim_time"}
    for param in re.findall(r'"((?:depth|segmentation)\.[a-z_]+|device)"', source):
        assert param in known, param


def test_node_page_documents_every_parameter_and_topic():
    page = (REPO / "docs" / "ros.md").read_text()
    for p in PARAMS:
        assert f"`{p.name}`" in page, p.name
    for topic in list(OUTPUT_TOPICS) + ["image", "camera_info", "image/compressed"]:
        assert f"| `{topic}` |" in page, topic


def test_package_xml():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "dpt_ros"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "geometry_msgs",
        "diagnostic_msgs",
        "python3-numpy",
        "python3-opencv",
    } <= deps
    assert root.find("export/build_type").text == "ament_python"
    assert (REPO / "resource" / "dpt_ros").exists()


def test_launch_remaps_the_outputs_given_and_only_those():
    """The launch file's _remappings, run from its source (launch is not installed
    here): a Nav2 configuration written for another node keeps its topics."""
    source = (REPO / "launch" / "dpt.launch.py").read_text()
    tree = ast.parse(source)
    wanted = [
        n
        for n in tree.body
        if (isinstance(n, ast.FunctionDef) and n.name == "_remappings")
        or (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_OUTPUT_REMAPS")
    ]
    space: dict = {}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), "dpt.launch.py", "exec"), space)
    remap, outputs = space["_remappings"], space["_OUTPUT_REMAPS"]
    assert remap("/cam/image", "", {}) == [("image", "/cam/image")]
    given = {topic: "" for topic in outputs.values()}
    given.update({"depth/image": "/depth_anything_v3/depth", "points": " /da3/points "})
    assert remap("/cam/image", "/cam/info", given) == [
        ("image", "/cam/image"),
        ("camera_info", "/cam/info"),
        ("depth/image", "/depth_anything_v3/depth"),
        ("points", "/da3/points"),
    ]
    assert "name=name," in source and '"node_names": [name]' in source


def test_every_package_the_launch_file_starts_is_an_exec_depend():
    """rosdep installs exec_depends only: a launch file that starts another package's
    executable (Nav2's lifecycle_manager) fails on a fresh install without it."""
    source = (REPO / "launch" / "dpt.launch.py").read_text()
    started = set(re.findall(r'package="([a-z0-9_]+)"', source)) - {"dpt_ros"}
    assert started == {"nav2_lifecycle_manager"}
    deps = {e.text for e in ET.parse(REPO / "package.xml").getroot().findall("exec_depend")}
    assert started <= deps, started - deps


def test_config_yaml_and_parameter_table_are_generated_from_params():
    """config/dpt.yaml and the parameter table of docs/ros.md match node_params.PARAMS."""
    spec = importlib.util.spec_from_file_location(
        "gen_param_docs", REPO / "scripts" / "gen_param_docs.py"
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (REPO / "config" / "dpt.yaml").read_text() == gen.yaml_text()
    page = gen.DOC.read_text()
    assert gen.DOC == REPO / "docs" / "ros.md"
    assert gen.doc_text(page) == page


def test_models_lazy_exports_are_listed_and_resolve():
    import dpt_ros.models as models

    assert sorted(models.__all__) == sorted(models._EXPORTS)
    for name in models.__all__:
        assert getattr(models, name) is not None
