"""``dpt-ros bag``: run dpt_ros offline over a recorded bag and write a new bag (several
bags: :mod:`dpt_ros.cli.bag.fleet`).

The new bag holds every message of the input, unchanged and at its recorded time, plus
the messages ``dpt_node`` would have published for each frame of one image topic. The
outputs use the node's topic names under the image topic's namespace
(``/cam/image_raw`` and ``/cam/image_raw/compressed`` give ``/cam/depth/relative``,
``/cam/points``, ...), their bag time is the image's bag time and their header is the
image's header. The camera_info of a frame is the latest camera_info message at or
before the image in bag time.

Input: ROS 2 bags (sqlite3 or MCAP; a bag directory or a single ``.db3`` / ``.mcap``
file) and ROS 1 ``.bag`` files, read with ``rosbags``. ROS 1 messages are converted to
ROS 2 (CDR) on the way. Output: a ROS 2 bag (rosbag2 format version 8), sqlite3 or
MCAP. The input bag is only ever opened for reading.

An interrupted run (Ctrl-C, SIGTERM, SIGHUP, any storm of them, or an error) still
closes the output properly: it is a valid bag holding everything written up to the last
finished batch (on a full disk: up to the last checkpoint), or, stopped while the output
was being opened, there is no output.

Reading and writing bags is ``dpt_ros.ros.bagio``, shared with ``play`` and ``demo``; the
work on one bag is :mod:`dpt_ros.cli.bag.job`, shared with the fleet.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from dpt_ros.cli.args import (
    add_max_input_pixels_argument,
    add_predictor_arguments,
    positive_int,
)
from dpt_ros.cli.bag import alignment as bag_alignment
from dpt_ros.cli.bag import any_view as bag_any_view
from dpt_ros.cli.bag import fleet
from dpt_ros.cli.bag import job as bag_job
from dpt_ros.cli.bag import temporal as bag_temporal
from dpt_ros.options import add_flags
from dpt_ros.pipeline.options import PipelineOptions
from dpt_ros.ros.bagio import (
    STORAGES,
)

_LOG = logging.getLogger(__name__)

DEFAULT_DEPTH_MODEL = "dpt_hybrid"

_EPILOG = """\
output topics (under the image topic's namespace, or --output-namespace):
  depth/relative        32FC1 relative inverse depth (relative models: dpt_hybrid, dpt_large)
  depth/image           32FC1 metres (metric models, or a relative model with
                        --relative-depth-scale or --alignment)
  depth/colored         rgb8 colour map of the depth
  depth/confidence      32FC1 depth confidence, 1 + exp (>= 1, larger = surer), of
                        Depth Anything 3's any-view types (depth_anything_3_small/base/large)
  depth/confidence_mono8  the same as mono8, round(255 * (1 - 1/c)), for byte readers
  depth/sky             mono8 sky mask, 255 = sky (depth_anything_3_mono_large and
                        depth_anything_3_metric_large, whose metres need camera_info)
  depth/camera_info     camera_info scaled to the output images (needs camera_info)
  segmentation/labels   mono8 ADE20K ids (with --segmentation-model)
  segmentation/colored  rgb8 label colours over the image
  segmentation/confidence  mono8 confidence of each label, round(255 * p)
  segmentation/label_info  vision_msgs/LabelInfo, once, with the camera's first
                           message and its frame (latched QoS)
  points                PointCloud2 (metric depth and camera_info needed); the node's
                        points_confident is not written (replay through dpt_node)
  any_view/poses        PoseArray, with --any-view-window: the window's cameras in the
                        current camera's optical frame (depth/* then come from the window)
  any_view/odometry     nav_msgs/Odometry, with --any-view-window, once the scale is known
                        (--any-view-condition-on-odometry): the camera in the odom frame

Every input message is copied to the output at its recorded time. Output messages get
the bag time and the header of their image.

exit status: 0 on success, 2 on an error (one line on stderr; a full disk: the output
keeps the frames written up to its last checkpoint), 130 when interrupted by Ctrl-C,
143 by SIGTERM, 129 by SIGHUP (the partial output bag is still valid; stopped while it
was being opened: no output)."""


# ----------------------------------------------------------------------------------
# Argument parsing (no heavy imports here)
# ----------------------------------------------------------------------------------
def add_parser(subparsers: Any, name: str, help: str) -> argparse.ArgumentParser:
    """Adds ``dpt-ros bag`` to ``subparsers``."""
    p = subparsers.add_parser(
        name,
        help=help,
        description="Run depth and/or segmentation over one image topic of a bag and\n"
        "write a new bag: all input messages plus the topics dpt_node publishes.\n"
        "Reads ROS 2 bags (sqlite3, MCAP) and ROS 1 .bag files.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_input_arguments(p)
    _add_model_arguments(p)
    _add_output_arguments(p)
    bag_alignment.add_arguments(p.add_argument_group("online alignment of relative depth"))
    bag_temporal.add_arguments(p.add_argument_group("temporal stabilisation of depth"))
    bag_any_view.add_arguments(p.add_argument_group("windows of views (Depth Anything 3, VGGT)"))
    return p


def _add_input_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        metavar="INPUT",
        nargs="+",
        help="input bag(s): rosbag2 directories, .db3 or .mcap files, or ROS 1 .bag files; "
        "with several, -o is a directory receiving one output bag per input",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="output rosbag2 directory (must not exist); with several inputs, the directory "
        "receiving OUTPUT/<input name> for each",
    )
    p.add_argument(
        "--image-topic",
        required=True,
        metavar="TOPIC",
        help="sensor_msgs/Image or sensor_msgs/CompressedImage topic to process",
    )
    p.add_argument(
        "--camera-info-topic",
        metavar="TOPIC",
        help="sensor_msgs/CameraInfo topic (default: camera_info beside the "
        "image topic, if the bag has it)",
    )
    add_max_input_pixels_argument(p)


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--depth-model",
        default=DEFAULT_DEPTH_MODEL,
        metavar="MODEL",
        help=f"depth model type (default {DEFAULT_DEPTH_MODEL}; '' disables depth)",
    )
    p.add_argument(
        "--depth-weights",
        metavar="PATH",
        help="depth weights file, or transformers save_pretrained folder (default: the cached "
        "or downloaded official file)",
    )
    p.add_argument(
        "--segmentation-model",
        default="",
        metavar="MODEL",
        help="segmentation model type, e.g. dpt_hybrid_ade20k (default: none)",
    )
    p.add_argument(
        "--segmentation-weights",
        metavar="PATH",
        help="segmentation weights file or transformers folder",
    )
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="random weights for every model without a weights file "
        "(testing and timing only: outputs are meaningless)",
    )
    add_predictor_arguments(p, compile=False)
    p.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help="frames per inference batch (default 1)",
    )


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output-namespace",
        metavar="NS",
        help="namespace of the output topics (default: the image topic's)",
    )
    p.add_argument(
        "--storage",
        choices=STORAGES,
        help="output storage (default: the input's; sqlite3 for ROS 1 input)",
    )
    add_flags(p, PipelineOptions)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="several inputs: process them on Ray, one bag per task, models loaded once per "
        "worker: no ADDRESS = a local Ray sized to this machine, 'auto' = the running "
        "cluster, 'ray://host:10001' = a remote one (pip install 'dpt_ros[fleet]')",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="Ray workers (default: one per GPU the cluster has for --gpus-per-worker, else 1)",
    )
    p.add_argument(
        "--gpus-per-worker",
        type=float,
        metavar="G",
        help="GPUs each Ray worker requests (default 1 with a CUDA --device, else 0)",
    )


def run(args: argparse.Namespace) -> int:
    """``dpt-ros bag``; see the module docstring. Several inputs: :mod:`dpt_ros.cli.bag.fleet`."""
    bag_job.check_output_namespace(args.output_namespace)  # before any file is looked at
    if len(args.input) > 1:
        return fleet.run(args)
    if args.ray is not None:
        print("dpt-ros bag: one input bag: it runs here, without Ray", file=sys.stderr)
    in_path, out_path = bag_job.check_paths(Path(args.input[0]), Path(args.output))
    depth, segmentation = bag_job.checked_options(args)
    parent = out_path.absolute().parent
    with fleet.output_shared_lock(parent):  # checked now, held for the run
        pipeline = bag_job.make_pipeline(args, depth, segmentation)
        job, storage, elapsed = bag_job.process_bag(args, in_path, out_path, pipeline)
    bag_job.report(job, out_path, storage, elapsed)
    return 0
