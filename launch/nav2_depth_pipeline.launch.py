"""Nav2's depth-estimation tutorial pipeline with dpt_ros in place of its TensorRT node.

``ros2 launch dpt_ros nav2_depth_pipeline.launch.py``

The official tutorial (docs.nav2.org, "AI Depth Estimation with Nav2 Costmap"; package
``nav2_depth_estimation_ai`` of ros-navigation/navigation2.ai) runs a USB camera,
image_proc's crop_decimate and resize (to the 504x280 input of its ONNX file), the
Depth Anything 3 TensorRT node and, for other models, depth_image_proc's point cloud,
and feeds the cloud to Nav2's voxel layer on ``/pipeline/points``. Here:

- ``usb_cam`` (``use_camera:=false`` for another driver: give its ``image``), in the
  ``namespace`` (default ``pipeline``) as ``image_raw`` and ``camera_info``;
- ``dpt_node`` in the same namespace: it sizes the image for the network itself (the
  aspect kept, not squashed to 504x280), rectifies it (``rectify``), and publishes
  ``points`` and ``points_confident`` itself, so neither image_proc nor
  depth_image_proc runs.

The voxel layer reads ``/pipeline/points`` as in the tutorial; the shipped Nav2
parameters (``config/nav2_depth_pipeline_costmap.yaml``) mark from
``/pipeline/points_confident`` and clear with ``/pipeline/points``.

Launch arguments override ``params_file`` only where given: ``depth_model`` (default the
tutorial's model, ``depth_anything_3_metric_large``; an any-view type such as
``depth_anything_3_small`` has the depth confidence that makes marking
confidence-aware, and needs ``camera_height`` for its metres), ``camera_height``
(metres above the floor: metres of a relative model by ``relative_depth.alignment:
ground_plane``), ``device``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def _true(text):
    return text.strip().lower() in ("true", "1", "yes")


def _overrides(depth_model, camera_height, device, use_sim_time):
    """dpt_node's parameters given at launch: only those whose argument is not empty."""
    overrides = {"use_sim_time": _true(use_sim_time)}
    if depth_model.strip():
        overrides["depth.model_type"] = depth_model.strip()
    if device.strip():
        overrides["device"] = device.strip()
    if camera_height.strip():
        overrides["relative_depth.alignment"] = "ground_plane"
        overrides["relative_depth.camera_height"] = float(camera_height)
    return overrides


def _remappings(image, camera_info):
    """'image' always; 'camera_info' only when given, else the image topic's sibling
    (image_transport's rule: image_raw -> camera_info, as usb_cam publishes them)."""
    remaps = [("image", image.strip())]
    if camera_info.strip():
        remaps.append(("camera_info", camera_info.strip()))
    return remaps


def _nodes(context, *args, **kwargs):
    def arg(name):
        return LaunchConfiguration(name).perform(context)

    params_file = arg("params_file")
    namespace = arg("namespace")
    use_sim_time = _true(arg("use_sim_time"))
    return [
        Node(
            package="usb_cam",
            executable="usb_cam_node_exe",
            name="usb_cam",
            namespace=namespace,
            output="screen",
            parameters=[params_file, {"use_sim_time": use_sim_time}],
            condition=IfCondition(arg("use_camera")),
        ),
        Node(
            package="dpt_ros",
            executable="dpt_node",
            name="dpt_node",
            namespace=namespace,
            output="screen",
            emulate_tty=True,
            parameters=[
                params_file,
                _overrides(
                    arg("depth_model"), arg("camera_height"), arg("device"), arg("use_sim_time")
                ),
            ],
            remappings=_remappings(arg("image"), arg("camera_info")),
        ),
    ]


def generate_launch_description():
    config = os.path.join(get_package_share_directory("dpt_ros"), "config")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=os.path.join(config, "nav2_depth_pipeline.yaml"),
                description="YAML file with the usb_cam and dpt_node parameters.",
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value="pipeline",
                description="Namespace of the camera and dpt_node: their topics are "
                "<namespace>/image_raw, <namespace>/points, ... (the tutorial's "
                "/pipeline/points).",
            ),
            DeclareLaunchArgument(
                "use_camera",
                default_value="true",
                description="Start usb_cam (the tutorial's camera); false for another "
                "driver, whose image topic 'image' names.",
            ),
            DeclareLaunchArgument(
                "image",
                default_value="image_raw",
                description="Image topic dpt_node reads (remaps 'image'; relative to the "
                "namespace): usb_cam's image_raw by default.",
            ),
            DeclareLaunchArgument(
                "camera_info",
                default_value="",
                description="camera_info topic (remaps 'camera_info'); empty = the image "
                "topic's sibling.",
            ),
            DeclareLaunchArgument(
                "depth_model",
                default_value="",
                description="Depth model type; empty keeps params_file "
                "(depth_anything_3_metric_large, the tutorial's). depth_anything_3_small, "
                "_base or _large give depth confidence (give camera_height for metres).",
            ),
            DeclareLaunchArgument(
                "camera_height",
                default_value="",
                description="Camera height above the floor (metres): a relative model's "
                "metres by ground_plane alignment; empty keeps params_file.",
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
            OpaqueFunction(function=_nodes),
        ]
    )
