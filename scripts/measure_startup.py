"""Where the demo's node start-up goes: imports, model build and weights, warm-up, the
first published message. Each stage is timed in a fresh Python process with an empty
cache (``DPT_ROS_CACHE`` set to a new temporary folder), with the node parameters
``dpt-ros demo`` gives its ``DptNode`` (dpt_hybrid + dpt_hybrid_ade20k, random weights
unless the official files are in the cache, network input 256x192 on the CPU).

    python scripts/measure_startup.py [--depth-model M] [--segmentation-model M]
                                      [--device cpu] [--runs N]

Prints, per stage, the wall-clock seconds and the CPU seconds of the process (user +
system, all its threads). On a shared machine the wall time grows with the load and the
CPU time much less: both are printed, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, os, resource, sys, threading, time
t_exec = float(sys.argv[1])
marks = []

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def mark(name, t0, c0):
    marks.append((name, time.time() - t0, cpu() - c0))

t, c = float(sys.argv[1]), 0.0
mark("python start", t, c)
t, c = time.time(), cpu()
import torch
mark("import torch", t, c)
t, c = time.time(), cpu()
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
mark("import rclpy", t, c)
t, c = time.time(), cpu()
from dpt_ros.node.node import DptNode
mark("import dpt_ros.node (timm, cv2, messages ...)", t, c)

from dpt_ros.cli.demo import driver, run as demo
from dpt_ros.models import predictor
from dpt_ros.runtime import backend
from dpt_ros.models.weights import checkpoint

models = json.loads(sys.argv[2])
device = sys.argv[3]
real_load, real_build, real_warm = backend.load_model, checkpoint.build_network, predictor.Predictor.warm_up

def timed(label, fn):
    def wrapper(*a, **k):
        t, c = time.time(), cpu()
        try:
            return fn(*a, **k)
        finally:
            mark(label(*a, **k), t, c)
    return wrapper

backend.load_model = timed(lambda m, *a, **k: f"  load {m} (build + weights)", real_load)
checkpoint.build_network = timed(lambda spec: f"    of which build_network {spec.name}", real_build)
predictor.Predictor.warm_up = timed(lambda self, *a, **k: f"  warm-up {self.spec.name}", real_warm)

weights = {t: demo.find_weights(m, None) for t, m in models.items() if m}
params = driver.node_parameters(
    models, device, weights, demo.CPU_NETWORK_SIZE if device == "cpu" else None,
    (demo.RELATIVE_SCALE, demo.RELATIVE_SHIFT),
)
rclpy.init()
t, c = time.time(), cpu()
node = DptNode(namespace=driver.LIVE_NAMESPACE, parameter_overrides=params,
               cli_args=["--ros-args", "-r", "image:=image_raw"])
mark("DptNode() total (load, warm-up, topics)", t, c)
"""

_CHILD_TAIL = r"""
import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from dpt_ros.ros.camera import Intrinsics
from dpt_ros.cli.demo.scene import camera_intrinsics
probe = Node("startup_probe")
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
ns = driver.LIVE_NAMESPACE
image_pub = probe.create_publisher(Image, f"{ns}/image_raw", qos)
info_pub = probe.create_publisher(CameraInfo, f"{ns}/camera_info", qos)
got = threading.Event()
from sensor_msgs.msg import Image as Out
probe.create_subscription(Out, f"{ns}/depth/colored", lambda m: got.set(), qos)
executor = SingleThreadedExecutor()
executor.add_node(node)
executor.add_node(probe)
deadline = time.time() + 30
while time.time() < deadline and not (
    image_pub.get_subscription_count() and info_pub.get_subscription_count()
    and probe.count_publishers(f"{ns}/depth/colored")
):
    executor.spin_once(timeout_sec=0.05)
w, h = 320, 240
fx, fy, cx, cy = camera_intrinsics(w, h)
info = Intrinsics(fx, fy, cx, cy, w, h).to_camera_info(driver.FRAME_ID)
msg = Image(height=h, width=w, encoding="rgb8", step=w * 3,
            data=np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8).tobytes())
msg.header.frame_id = driver.FRAME_ID
msg.header.stamp = info.header.stamp = probe.get_clock().now().to_msg()
t, c = time.time(), cpu()
info_pub.publish(info)
image_pub.publish(msg)
deadline = time.time() + 300
while time.time() < deadline and not got.is_set():
    executor.spin_once(timeout_sec=0.05)
mark("first frame: publish -> depth/colored", t, c)
marks.append(("first depth after python start", time.time() - t_exec, cpu()))
node.destroy_node()
probe.destroy_node()
rclpy.try_shutdown()
print("MARKS " + json.dumps(marks), flush=True)
"""


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth-model", default="dpt_hybrid")
    parser.add_argument("--segmentation-model", default="dpt_hybrid_ade20k")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    models = {"depth": args.depth_model, "segmentation": args.segmentation_model}
    print(f"{os.cpu_count()} CPUs; load average before: {_load()}")
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="dpt_startup_") as cache:
            env = {**os.environ, "DPT_ROS_CACHE": cache}
            start = time.time()
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _CHILD + _CHILD_TAIL,
                    str(start),
                    json.dumps(models),
                    args.device,
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        lines = [x for x in done.stdout.splitlines() if x.startswith("MARKS ")]
        if done.returncode != 0 or not lines:
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        marks = json.loads(lines[-1][len("MARKS ") :])
        print(
            f"run {run + 1}: {args.depth_model} + {args.segmentation_model} on {args.device}, "
            "empty cache"
        )
        print(f"  {'stage':<50} {'wall s':>7} {'cpu s':>7}")
        for name, wall, cpu in marks:
            print(f"  {name:<50} {wall:7.2f} {cpu:7.2f}")
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
