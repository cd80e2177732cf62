"""ament_python package; also installable with pip into a plain virtual environment."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dpt_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="DPT monocular depth and semantic segmentation for ROS 2",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    # On a ROS install numpy, OpenCV and rclpy come from the distribution (package.xml);
    # torch and timm from pip. A plain venv adds the extras below.
    install_requires=[
        "numpy",
        "torch",
        "timm",
        "tqdm",
        "huggingface_hub",
        "safetensors",
        "pyyaml",
        "Pillow",
    ],
    extras_require={
        # Everything a machine without /opt/ros needs: ROS 2 wheels, OpenCV, rosbags.
        "venv": [
            "opencv-python-headless",
            "rosbags",
            "ros-rclpy",
            "ros-sensor-msgs",
            "ros-std-msgs",
            "ros-geometry-msgs",
            "ros-nav-msgs",
            "ros-diagnostic-msgs",
            "ros-rmw-fastrtps-cpp",
        ],
        # dpt-ros export (ONNX; onnxscript is what torch's ONNX exporter builds on) and
        # the onnxruntime backend. TensorRT comes with JetPack, or pip install tensorrt.
        "export": ["onnx", "onnxscript", "onnxruntime"],
        # dpt-ros bench's side-by-side run of Hugging Face transformers' DPT.
        "bench": ["transformers"],
        "test": [
            "pytest",
            "pytest-timeout",
            "onnx",
            "onnxscript",
            "onnxruntime",
            "ray",
            "transformers",
        ],
        # dpt-ros bag --ray: many bags on a Ray cluster (or a local Ray).
        "fleet": ["ray"],
        # The static checks CI runs on the package (.ci/run): ruff (lint and format), mypy.
        "lint": ["ruff", "mypy"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "dpt-ros = dpt_ros.cli.main:entry",
            "dpt_node = dpt_ros.node.main:dpt_node",
            "dpt_lifecycle_node = dpt_ros.node.main:dpt_lifecycle_node",
        ],
    },
)
