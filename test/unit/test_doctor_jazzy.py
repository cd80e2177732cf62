"""``dpt-ros doctor nav2`` on nav2_bringup's own jazzy ``nav2_params.yaml``
(test/fixtures/nav2, Apache-2.0) with layers added as the plugins' READMEs show them:
no false alarm where Nav2 works, a finding where it gets nothing or does not start, and
"cannot tell" where the files cannot say."""

from __future__ import annotations

from pathlib import Path

import yaml

from dpt_ros.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nav2"
JAZZY = FIXTURES / "nav2_params_jazzy.yaml"
STVL = "spatio_temporal_voxel_layer/SpatioTemporalVoxelLayer"
#: The node metric and timed (the shipped semantic example's node side is metric too).
METRIC = {"depth.model_type": "dpt_hybrid_nyu", "processing_time_budget": 0.2}


def jazzy() -> dict:
    return yaml.safe_load(JAZZY.read_text())


def costmap(tree: dict, which: str = "local_costmap") -> dict:
    return tree[which][which]["ros__parameters"]


def run(tmp_path: Path, capsys, tree: dict, node: dict | None = None, *more: str):
    nav2 = tmp_path / "nav2.yaml"
    nav2.write_text(yaml.safe_dump(tree))
    args = ["doctor", "nav2", str(nav2), *more]
    if node is not None:
        path = tmp_path / "node.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": node}}))
        args += ["--node-params", str(path)]
    code = main(args)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def cloud_source(topic: str, **extra) -> dict:
    """An observation source as nav2_costmap_2d's documentation configures a cloud."""
    return {
        "topic": topic,
        "data_type": "PointCloud2",
        "marking": True,
        "clearing": True,
        "min_obstacle_height": 0.05,
        "max_obstacle_height": 2.0,
        "obstacle_max_range": 2.5,
        "raytrace_max_range": 3.0,
        **extra,
    }


def with_global_cloud(tree: dict, topic: str, **extra) -> dict:
    layer = costmap(tree, "global_costmap")["obstacle_layer"]
    layer["observation_sources"] = "scan camera"
    layer["camera"] = cloud_source(topic, **extra)
    return tree


def test_the_jazzy_file_alone_uses_nothing_of_dpt_node(tmp_path, capsys):
    code, lines, _ = run(tmp_path, capsys, jazzy())
    assert code == 1 and lines[0].startswith("nav2 parameters: nothing uses dpt_node")


def test_an_stvl_only_costmap_is_checked_not_ignored(tmp_path, capsys):
    """Before: 'nothing uses dpt_node', exit 1."""
    tree = jazzy()
    local = costmap(tree)
    local["plugins"] = ["stvl_layer", "inflation_layer"]
    local["stvl_layer"] = {  # as the STVL README shows a depth camera source
        "plugin": STVL,
        "enabled": True,
        "voxel_decay": 15.0,
        "decay_model": 0,
        "voxel_size": 0.05,
        "track_unknown_space": True,
        "mark_threshold": 0,
        "update_footprint_enabled": True,
        "combination_method": 1,
        "origin_z": 0.0,
        "publish_voxel_map": True,
        "transform_tolerance": 0.2,
        "mapping_mode": False,
        "map_save_duration": 60.0,
        "observation_sources": "rgbd1_mark",
        "rgbd1_mark": {
            "data_type": "PointCloud2",
            "topic": "/camera/points",
            "marking": True,
            "clearing": False,
            "min_obstacle_height": 0.3,
            "max_obstacle_height": 2.0,
            "expected_update_rate": 0.0,
            "observation_persistence": 0.0,
            "inf_is_valid": False,
            "filter": "passthrough",
            "voxel_min_points": 0,
            "clear_after_reading": True,
        },
    }
    code, lines, err = run(tmp_path, capsys, tree, METRIC, "--namespace", "camera")
    assert (code, lines) == (0, []), lines
    assert "matches dpt_node" in err
    # The same with no filter: NaN points (sky, no depth) would reach the grid.
    local["stvl_layer"]["rgbd1_mark"]["filter"] = ""
    code, lines, _ = run(tmp_path, capsys, tree, METRIC, "--namespace", "camera")
    assert code == 1 and "rgbd1_mark.filter" in lines[0], lines
    assert "fix: filter: passthrough" in lines[0]


def test_a_cloud_from_depth_image_proc_is_cannot_tell_not_a_wrong_fix(tmp_path, capsys):
    """docs/nav2.md's route for a cloud made elsewhere: depth_image_proc's point_cloud_xyz
    on dpt_node's depth/image, published as /camera/depth/points. Before: 'not a topic
    dpt_node publishes; fix: use /camera/points'."""
    shipped = yaml.safe_load(
        (Path(__file__).parents[2] / "config" / "nav2_semantic_costmap.yaml").read_text()
    )
    tree = jazzy()
    semantic = costmap(shipped)["semantic_layer"]
    semantic["camera"]["pointcloud_topic"] = "/camera/depth/points"
    local = costmap(tree)
    local["plugins"] = ["semantic_layer", "inflation_layer"]
    local["semantic_layer"] = semantic
    node = {**METRIC, "segmentation.model_type": "dpt_hybrid_ade20k"}
    code, lines, err = run(tmp_path, capsys, tree, node)
    assert code == 0, lines
    assert len(lines) == 1 and lines[0].startswith("cannot tell: ")
    assert "'/camera/depth/points'" in lines[0] and "depth_image_proc" in lines[0]
    assert "fix:" not in lines[0] and "matches" not in err and "cannot tell" in err


def test_inf_is_valid_on_a_cloud_is_a_note(tmp_path, capsys):
    """Nav2 warns and ignores it on a PointCloud2 source. Before: a finding, exit 1."""
    tree = with_global_cloud(jazzy(), "/camera/points", inf_is_valid=True)
    code, lines, err = run(tmp_path, capsys, tree, METRIC, "--namespace", "camera")
    assert (code, lines) == (0, []), lines
    assert "note: " in err and "inf_is_valid has no effect on a PointCloud2" in err


def test_no_namespace_is_guessed_from_another_sensors_cloud(tmp_path, capsys):
    """Two clouds and no semantic layer: before, the first '.../points' fixed the
    namespace, and dpt_node's own cloud got the fix 'use /velodyne/points'."""
    tree = with_global_cloud(jazzy(), "/velodyne/points")
    layer = costmap(tree, "global_costmap")["obstacle_layer"]
    layer["observation_sources"] = "scan velodyne camera"
    layer["velodyne"], layer["camera"] = layer["camera"], cloud_source("/camera/points")
    code, lines, _ = run(tmp_path, capsys, tree, METRIC)
    assert code == 0, lines
    assert not any("fix:" in line for line in lines), lines
    assert all(line.startswith("cannot tell: ") for line in lines) and len(lines) == 2
    assert "give --namespace" in lines[1] and "'/camera/points'" in lines[1]


def test_a_relative_model_without_metres_feeds_nothing(tmp_path, capsys):
    """The default dpt_hybrid, and Depth Anything 3 small, publish no 'points' with no
    calibration or alignment. Before: exit 0, 'matches'."""
    tree = with_global_cloud(jazzy(), "/camera/points")
    for model in ("dpt_hybrid", "depth_anything_3_small"):
        node = {"depth.model_type": model, "processing_time_budget": 0.2}
        code, lines, _ = run(tmp_path, capsys, tree, node, "--namespace", "camera")
        assert code == 1 and len(lines) == 1, lines
        assert f"{model} is a relative model" in lines[0]
        assert "no 'points' and no 'depth/image'" in lines[0]
        for fix in ("a metric model", "relative_depth.scale", "relative_depth.alignment"):
            assert fix in lines[0]
    for fixed in (
        {"relative_depth.scale": 0.5},
        {"relative_depth.alignment": "ground_plane", "relative_depth.camera_height": 0.5},
    ):
        node = {"depth.model_type": "dpt_hybrid", "processing_time_budget": 0.2, **fixed}
        code, lines, _ = run(tmp_path, capsys, tree, node, "--namespace", "camera")
        assert (code, lines) == (0, []), (fixed, lines)


def test_a_parameter_type_nav2_refuses(tmp_path, capsys):
    """rclcpp refuses a type other than the declared default's (bond_timeout: double).
    Before: exit 0."""
    tree = jazzy()
    tree["lifecycle_manager_perception"] = {
        "ros__parameters": {"autostart": True, "node_names": ["dpt_node"], "bond_timeout": 4}
    }
    code, lines, _ = run(tmp_path, capsys, tree, METRIC)
    assert code == 1 and len(lines) == 1, lines
    assert "bond_timeout: 4 is a int but the plugin declares a double" in lines[0]
    assert "fix: write it as a double: bond_timeout: 4.0" in lines[0]


def with_monitored_cloud(tree: dict, topic: str = "/camera/points") -> dict:
    """jazzy's collision monitor (source_timeout 1.0 s) with a pointcloud source, as the
    collision monitor's documentation configures one."""
    monitor = tree["collision_monitor"]["ros__parameters"]
    monitor["observation_sources"] = ["scan", "camera"]
    monitor["camera"] = {
        "type": "pointcloud",
        "topic": topic,
        "min_height": 0.1,
        "max_height": 0.5,
        "enabled": True,
    }
    return tree


#: Depth Anything 3 small with metres from a calibration, on the CPU: the documented
#: whole-pipeline figures are 520 ms (torch) and 451 ms (onnxruntime) per 640x480 frame.
DA3_CPU = {
    "depth.model_type": "depth_anything_3_small",
    "relative_depth.scale": 1.0,
    "device": "cpu",
}


def test_latency_against_the_collision_monitor_from_the_documented_figures(tmp_path, capsys):
    """jazzy's source_timeout 1.0 s: the newest cloud is up to its latency plus one
    interval old (stamp to stamp), and an older one stops the robot ('invalid source').
    Before: the frame time was processing_time_budget (1.5 s by default), so every
    default node failed it, on a GPU too."""
    tree = with_monitored_cloud(jazzy())
    ns = ("--namespace", "camera")
    # torch: 0.52 s a frame, so the newest cloud can be 1.04 s old.
    code, lines, _ = run(tmp_path, capsys, tree, {**DA3_CPU, "backend": "torch"}, *ns)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(
        "collision_monitor.camera.source_timeout: 1 s is shorter than dpt_node's newest "
        "cloud can be old (1.04 s: its latency plus the time between clouds, the "
        "documented figure for depth_anything_3_small on the CPU"
    ), lines[0]
    assert "stops the robot ('invalid source')" in lines[0]
    assert lines[0].endswith("fix: source_timeout: 1.6 on this source, or a faster pipeline")
    # onnxruntime: 0.451 s, 0.90 s old at most: fresh enough.
    code, lines, _ = run(tmp_path, capsys, tree, {**DA3_CPU, "backend": "onnxruntime"}, *ns)
    assert (code, lines) == (0, []), lines
    # auto runs one or the other: 0.90 to 1.04 s, which the files cannot decide.
    code, lines, err = run(tmp_path, capsys, tree, {**DA3_CPU, "backend": "auto"}, *ns)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("cannot tell: "), lines
    assert "(0.90 to 1.04 s)" in lines[0] and "fix:" not in lines[0]
    # No GPU figure: said, not guessed (the default device is auto).
    code, lines, _ = run(tmp_path, capsys, tree, {**DA3_CPU, "device": "auto"}, *ns)
    assert code == 0 and len(lines) == 1 and lines[0].startswith("cannot tell: "), lines
    assert "device auto: the documented speed figures are CPU figures" in lines[0]
    # ... unless max_rate alone spaces the clouds beyond the timeout.
    slow = {**DA3_CPU, "device": "cuda", "max_rate": 0.5}
    code, lines, _ = run(tmp_path, capsys, tree, slow, *ns)
    assert code == 1 and "(at least 2.00 s:" in lines[0] and "max_rate 0.5 Hz" in lines[0]
    # A camera or network of another size than the figures': cannot tell.
    code, lines, _ = run(
        tmp_path, capsys, tree, {**DA3_CPU, "warmup_width": 1280, "warmup_height": 720}, *ns
    )
    assert code == 0 and lines[0].startswith("cannot tell: ") and "640x480 camera" in lines[0]


def test_expected_update_rate_from_the_documented_figures(tmp_path, capsys):
    """ObservationBuffer::isCurrent: the last cloud must have arrived within
    expected_update_rate, else the costmap is not current."""
    node = {"depth.model_type": "dpt_hybrid", "relative_depth.scale": 0.5, "device": "cpu"}
    tree = with_global_cloud(jazzy(), "/camera/points", expected_update_rate=0.5)
    code, lines, _ = run(
        tmp_path, capsys, tree, {**node, "backend": "torch"}, "--namespace", "camera"
    )
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(
        "global_costmap.global_costmap.obstacle_layer.camera.expected_update_rate: 0.5 s is "
        "below dpt_node's time between clouds (1.48 s, the documented figure for dpt_hybrid"
    ), lines[0]
    assert "'Costmap timed out waiting for update'" in lines[0]
    assert lines[0].endswith("fix: expected_update_rate: 3 (two clouds), or 0.0 (no check)")
    tree = with_global_cloud(jazzy(), "/camera/points", expected_update_rate=3.0)
    code, lines, _ = run(
        tmp_path, capsys, tree, {**node, "backend": "torch"}, "--namespace", "camera"
    )
    assert (code, lines) == (0, []), lines
