"""``dpt-ros doctor nav2`` on the shipped configuration (clean) and on broken copies
(each mismatch reported with its fix), and the shipped voxel layer checked with the
voxel layer's own rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dpt_ros.cli.main import main

CONFIG = Path(__file__).resolve().parents[2] / "config"
NAV2 = CONFIG / "nav2_semantic_costmap.yaml"
MANAGER = CONFIG / "lifecycle_manager_perception.yaml"
NODE = CONFIG / "dpt_semantic_costmap.yaml"
LAYERS = ("local_costmap", "local_costmap", "ros__parameters")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def layers(tree: dict) -> dict:
    for key in LAYERS:
        tree = tree[key]
    return tree


def doctor(capsys, *args) -> tuple[int, list[str], str]:
    code = main(["doctor", "nav2", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def write(tmp_path: Path, name: str, tree: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree))
    return path


def test_shipped_configuration_is_clean(capsys):
    code, lines, err = doctor(capsys, NAV2, MANAGER, "--node-params", NODE)
    assert (code, lines) == (0, [])
    assert "matches dpt_node" in err


def test_the_node_defaults_run_no_segmentation_and_no_metres(capsys):
    """The defaults: no segmentation, and dpt_hybrid (relative) with no calibration or
    alignment, so no 'points' either (before: only the first was said)."""
    code, lines, _ = doctor(capsys, NAV2)
    assert code == 1 and len(lines) == 2, lines
    assert lines[0].startswith("node segmentation.model_type: is empty")
    assert "fix: set segmentation.model_type: dpt_hybrid_ade20k" in lines[0]
    assert lines[1].startswith("node depth.model_type: depth.model_type dpt_hybrid is a ")
    for fix in ("a metric model", "relative_depth.scale", "relative_depth.alignment"):
        assert fix in lines[1]


def broken_nav2(tmp_path, change) -> Path:
    tree = load(NAV2)
    change(layers(tree))
    return write(tmp_path, "nav2.yaml", tree)


def camera(params: dict) -> dict:
    return params["semantic_layer"]["camera"]


def voxel(params: dict) -> dict:
    return params["voxel_layer"]


BROKEN = {
    "decay": (
        lambda p: camera(p).update(tile_map_decay_time=2.0),
        "semantic_layer.camera.tile_map_decay_time: 2 s cannot hold the 3 observations",
        "tile_map_decay_time >= 4.5 s",
    ),
    "missing classes": (
        lambda p: camera(p).update(class_types=["traversable", "obstacle"]),
        "semantic_layer.camera.class_types: 9 ADE20K class(es) in no class type (sky,",
        "put every class in a class type (a zero-cost group",
    ),
    "misspelt class": (
        lambda p: camera(p)["traversable"]["classes"].__setitem__(0, "flor"),
        "'flor' is not an ADE20K class name",
        "use 'floor'",
    ),
    "voxel height": (
        lambda p: voxel(p).update(z_resolution=0.05, z_voxels=16),
        "z_voxels 16 x z_resolution 0.05 m covers 0 to 0.8 m, below max_obstacle_height 2 m",
        "z_resolution: 0.15 with z_voxels: 14",
    ),
    "topic": (
        lambda p: camera(p).update(pointcloud_topic="/camera/point"),
        "camera.pointcloud_topic: '/camera/point' is not a topic dpt_node publishes",
        "use '/camera/points'",
    ),
    "confidence as floats": (
        lambda p: camera(p).update(confidence_topic="/camera/depth/confidence"),
        "'/camera/depth/confidence' is depth confidence as 32FC1 floats",
        "use /camera/segmentation/confidence",
    ),
    "mark_confidence type": (
        lambda p: camera(p)["obstacle"].update(mark_confidence=128.0),
        "obstacle.mark_confidence: 128.0 is a double but the plugin declares a int",
        "write it as an integer: mark_confidence: 128",
    ),
    "tile_map_decay_time type": (
        lambda p: camera(p).update(tile_map_decay_time=5),
        "camera.tile_map_decay_time: 5 is a int but the plugin declares a double",
        "write it as a double: tile_map_decay_time: 5.0",
    ),
    "mark_confidence": (
        lambda p: camera(p)["obstacle"].update(mark_confidence=255),
        "obstacle.mark_confidence: is 255",
        "use a value below 255",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_nav2_mismatch_is_one_line_with_its_fix(tmp_path, capsys, case):
    change, problem, fix = BROKEN[case]
    path = broken_nav2(tmp_path, change)
    code, lines, err = doctor(capsys, path, "--node-params", NODE)
    assert code == 1, lines
    if case == "misspelt class":  # and so the real name is in no class type
        assert "1 ADE20K class(es) in no class type (floor)" in lines.pop()
    assert len(lines) == 1, lines
    assert problem in lines[0] and f"fix: {fix}" in lines[0], lines[0]
    assert "finding(s)" in err


def node_params(tmp_path, **values) -> Path:
    tree = load(NODE)
    tree["/**"]["ros__parameters"].update(values)
    return write(tmp_path, "node.yaml", tree)


def test_stride_and_slow_processing_on_the_node_side(tmp_path, capsys):
    path = node_params(tmp_path, **{"cloud.stride": 2, "processing_time_budget": 2.0})
    code, lines, _ = doctor(capsys, NAV2, "--node-params", path)
    assert code == 1 and len(lines) == 2, lines
    assert lines[0].startswith("node cloud.stride: is 2:")
    assert "semantic layer drops every such frame" in lines[0]
    assert "fix: set cloud.stride: 1" in lines[0]
    assert "processing_time_budget 2 s" in lines[1] and "(they span 6 s)" in lines[1]
    (tmp_path / "rate").mkdir()
    path = node_params(tmp_path / "rate", **{"max_rate": 0.4})
    code, lines, _ = doctor(capsys, NAV2, "--node-params", path)
    assert code == 1 and "max_rate 0.4 Hz" in lines[0]  # 2 x 2.5 s + 1.5 s > 5 s


def manager(tmp_path, node_names, bond_timeout=4.0) -> Path:
    tree = load(MANAGER)
    params = tree["/**/lifecycle_manager_perception"]["ros__parameters"]
    params.update(node_names=node_names, bond_timeout=bond_timeout)
    return write(tmp_path, "manager.yaml", tree)


def test_bond_settings(tmp_path, capsys):
    code, lines, _ = doctor(capsys, manager(tmp_path, ["camera/dpt_node"]))
    assert code == 1 and len(lines) == 1
    assert "lists 'camera/dpt_node', but dpt_node's bond id is its name" in lines[0]
    assert "fix: run the manager in the node's namespace and list 'dpt_node'" in lines[0]

    no_bond = node_params(tmp_path, bond_heartbeat_period=0.0)
    code, lines, _ = doctor(capsys, MANAGER, "--node-params", no_bond)
    assert code == 1 and "bond_heartbeat_period is 0 (no bond)" in lines[0]
    # bond_timeout 0: the manager waits for no bond; a note, not a finding.
    code, lines, err = doctor(
        capsys, manager(tmp_path, ["dpt_node"], 0.0), "--node-params", no_bond
    )
    assert (code, lines) == (0, []) and "bond_timeout is 0" in err
    # A manager of other nodes only: nothing of ours to check.
    code, lines, _ = doctor(capsys, manager(tmp_path, ["controller_server"]))
    assert code == 1 and lines[0].startswith("nav2 parameters: nothing uses dpt_node")


def test_namespace_option_and_several_cameras(tmp_path, capsys):
    code, lines, _ = doctor(capsys, NAV2, "--node-params", NODE, "--namespace", "robot")
    # The layer's three topics of names only dpt_node has; its cloud may be another's.
    assert code == 1 and len(lines) == 4, lines
    assert "use '/robot/segmentation/labels'" in lines[0]
    assert lines[3].startswith("cannot tell: ") and "'/camera/points'" in lines[3]
    two = node_params(tmp_path, cameras=["front", "camera"])
    code, lines, _ = doctor(capsys, NAV2, "--node-params", two, "--namespace", "/")
    assert (code, lines) == (0, [])


def test_unknown_and_invalid_node_parameters(tmp_path, capsys):
    path = node_params(tmp_path, **{"cloud.strid": 2, "max_rate": -1.0})
    code, lines, _ = doctor(capsys, NAV2, "--node-params", path)
    assert code == 1
    assert any(
        "cloud.strid is not a dpt_node parameter (did you mean cloud.stride?)" in x for x in lines
    )
    assert any("max_rate=-1.0 is outside" in x for x in lines)


def test_unreadable_input_is_one_error_line_and_exit_2(tmp_path, capsys):
    code, lines, err = doctor(capsys, tmp_path / "missing.yaml")
    assert code == 2 and lines == [] and err.count("\n") == 1
    assert "missing.yaml" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("local_costmap: [unclosed\n")
    code, _, err = doctor(capsys, bad)
    assert code == 2 and "is not valid YAML" in err and err.count("\n") == 1
    scalar = write(tmp_path, "scalar.yaml", "just text")  # type: ignore[arg-type]
    code, _, err = doctor(capsys, scalar)
    assert code == 2 and "holds no YAML mapping" in err
    other = write(tmp_path, "other.yaml", {"some_node": {"ros__parameters": {"a": 1}}})
    code, _, err = doctor(capsys, NAV2, "--node-params", other)
    assert code == 2 and "no ros__parameters for dpt_node" in err


def test_shipped_voxel_column_covers_the_obstacle_heights():
    """The voxel layer's rules (Humble voxel_layer.cpp, observation_buffer.cpp,
    nav2_voxel_grid): the source keeps min <= z <= max (its own max_obstacle_height),
    the layer drops z > its max_obstacle_height, clamps z < origin_z to origin_z, and
    marks only voxel indices int((z - origin_z) / z_resolution) below z_voxels (<= 16)."""
    params = layers(load(NAV2))
    layer = params["voxel_layer"]
    source = layer[layer["observation_sources"]]
    z_voxels = min(int(layer["z_voxels"]), 16)
    z_res, origin_z = float(layer["z_resolution"]), float(layer.get("origin_z", 0.0))
    low, high = float(source["min_obstacle_height"]), float(source["max_obstacle_height"])
    assert high <= float(layer["max_obstacle_height"])
    assert "inf_is_valid" not in source  # no effect on PointCloud2 (obstacle_layer.cpp)
    heights = np.linspace(low, high, 1001)
    kept = (heights >= low) & (heights <= high) & ~(heights > layer["max_obstacle_height"])
    index = ((np.maximum(heights, origin_z) - origin_z) / z_res).astype(int)
    assert kept.all() and (index < z_voxels).all(), heights[index >= z_voxels][:3]


def test_the_old_voxel_column_would_have_failed():
    """The same rule on the 16 x 0.05 m column of before: 0.8 m and up are dropped."""
    heights = np.linspace(0.05, 2.0, 1001)
    dropped = heights[(heights / 0.05).astype(int) >= 16]
    assert dropped.min() == pytest.approx(0.8, abs=0.002)


def test_node_warning_texts():
    from dpt_ros.ros.nav2_checks import processing_warning, stride_warning

    assert stride_warning(1, True) == stride_warning(4, False) == ""
    assert "cloud.stride is 4 with segmentation" in stride_warning(4, True)
    assert processing_warning(2.0, 1.5, segmentation=False) == ""  # no semantic costmap
    assert processing_warning(2.0, 0.0, segmentation=True) == ""  # check off
    assert processing_warning(1.5, 1.5, segmentation=True) == ""
    text = processing_warning(2.0, 1.5, segmentation=True)
    assert text.startswith("processing 2.00 s per frame exceeds processing_time_budget 1.5 s")
