"""Launch dpt_node: ``ros2 launch dpt_ros dpt.launch.py image:=/camera/image_raw``.

``lifecycle:=true`` starts ``dpt_lifecycle_node`` instead: a managed node that waits
for a lifecycle manager (Nav2's ``lifecycle_manager``) to configure and activate it.
``lifecycle_manager:=true`` starts it with a manager of its own: Nav2's
``lifecycle_manager`` named ``lifecycle_manager_perception`` in the node's namespace,
with ``lifecycle_manager_params`` (default the installed
``config/lifecycle_manager_perception.yaml``: autostart, bond_timeout 4.0).

Launch arguments override the parameters file only where given: an empty
``depth_model``/``segmentation_model``/``device`` keeps the file's value, and ``none``
disables that model.

``node_name`` names the node (and its bond id: the manager started here lists it).
The output remaps (``depth_topic``, ``points_topic``, ``depth_camera_info_topic``,
``labels_topic``, ``confidence_topic``; empty = the node's own names) let a
configuration written for another depth node keep its topics.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def _node(context, *args, **kwargs):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {"use_sim_time": arg("use_sim_time").strip().lower() in ("true", "1", "yes")}
    for launch_arg, param in (
        ("depth_model", "depth.model_type"),
        ("segmentation_model", "segmentation.model_type"),
        ("device", "device"),
    ):
        value = arg(launch_arg).strip()
        if value:
            overrides[param] = "" if value == "none" else value
    manager = arg("lifecycle_manager").strip().lower() in ("true", "1", "yes")
    lifecycle = manager or arg("lifecycle").strip().lower() in ("true", "1", "yes")
    name = arg("node_name").strip() or "dpt_node"
    outputs = {topic: arg(launch_arg) for launch_arg, topic in _OUTPUT_REMAPS.items()}
    actions = [
        Node(
            package="dpt_ros",
            executable="dpt_lifecycle_node" if lifecycle else "dpt_node",
            name=name,
            namespace=arg("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[arg("params_file"), overrides],
            remappings=_remappings(arg("image"), arg("camera_info"), outputs),
        )
    ]
    if manager:
        actions.append(
            Node(
                package="nav2_lifecycle_manager",
                executable="lifecycle_manager",
                name="lifecycle_manager_perception",
                namespace=arg("namespace"),
                output="screen",
                parameters=[
                    arg("lifecycle_manager_params"),
                    {"use_sim_time": overrides["use_sim_time"], "node_names": [name]},
                ],
            )
        )
    return actions


#: Launch argument -> the node's output topic it remaps.
_OUTPUT_REMAPS = {
    "depth_topic": "depth/image",
    "points_topic": "points",
    "depth_camera_info_topic": "depth/camera_info",
    "labels_topic": "segmentation/labels",
    "confidence_topic": "segmentation/confidence",
}


def _remappings(image, camera_info, outputs=None):
    """'image' always; 'camera_info' only when given, else the node takes the image
    topic's sibling (image_transport's rule: /ns/image_rect -> /ns/camera_info); each
    output topic of ``outputs`` ({node's name: new name}) whose new name is given."""
    remaps = [("image", image)]
    if camera_info.strip():
        remaps.append(("camera_info", camera_info.strip()))
    for topic, target in (outputs or {}).items():
        if target.strip():
            remaps.append((topic, target.strip()))
    return remaps


def generate_launch_description():
    config = os.path.join(get_package_share_directory("dpt_ros"), "config")
    default_params = os.path.join(config, "dpt.yaml")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params,
                description="YAML file with dpt_node parameters.",
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value="",
                description="Namespace of the node and its relative topics.",
            ),
            DeclareLaunchArgument(
                "image",
                default_value="image",
                description="Input image topic (remaps 'image'; compressed "
                "transport subscribes to '<image>/compressed').",
            ),
            DeclareLaunchArgument(
                "camera_info",
                default_value="",
                description="Input camera_info topic (remaps 'camera_info'); empty = the "
                "image topic's sibling, e.g. /cam/camera_info for image:=/cam/image_rect.",
            ),
            DeclareLaunchArgument(
                "node_name",
                default_value="dpt_node",
                description="The node's name (its bond id for a lifecycle manager; the "
                "manager of lifecycle_manager:=true lists it).",
            ),
            *(
                DeclareLaunchArgument(
                    launch_arg,
                    default_value="",
                    description=f"Remap the output '{topic}' to this topic; empty keeps "
                    "it (e.g. another depth node's names, to keep a Nav2 configuration).",
                )
                for launch_arg, topic in _OUTPUT_REMAPS.items()
            ),
            DeclareLaunchArgument(
                "depth_model",
                default_value="",
                description="Depth model type (dpt_hybrid, dpt_large, "
                "dpt_hybrid_kitti, dpt_hybrid_nyu, depth_anything_v2_{vits,vitb,vitl}, "
                "depth_anything_v2_metric_{hypersim,vkitti}_{vits,vitb,vitl}, "
                "depth_anything_3_{small,base,large,mono_large,metric_large}); "
                "'none' disables; empty keeps params_file.",
            ),
            DeclareLaunchArgument(
                "segmentation_model",
                default_value="",
                description="Segmentation model type (dpt_hybrid_ade20k, "
                "dpt_large_ade20k); 'none' disables; empty keeps "
                "params_file.",
            ),
            DeclareLaunchArgument(
                "device",
                default_value="",
                description="auto, cpu, cuda or cuda:N; empty keeps params_file.",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="Use /clock (rosbag replay with --clock).",
            ),
            DeclareLaunchArgument(
                "lifecycle",
                default_value="false",
                description="Start dpt_lifecycle_node (managed: configure loads the "
                "models, activate starts the topics) for a lifecycle manager.",
            ),
            DeclareLaunchArgument(
                "lifecycle_manager",
                default_value="false",
                description="Start dpt_lifecycle_node with a Nav2 lifecycle_manager of its "
                "own (lifecycle_manager_perception, in the node's namespace), which "
                "configures and activates it and watches its bond.",
            ),
            DeclareLaunchArgument(
                "lifecycle_manager_params",
                default_value=os.path.join(config, "lifecycle_manager_perception.yaml"),
                description="YAML file with the lifecycle manager's parameters.",
            ),
            OpaqueFunction(function=_node),
        ]
    )
