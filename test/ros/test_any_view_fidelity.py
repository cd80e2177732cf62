"""The live node's windows equal ``dpt-ros reconstruct``'s on the same frames (issue 31's
fidelity item), over real rclpy, with Depth Anything 3 small at random weights on a
56-pixel network and images of 48 x 64 (the network grid, 42 x 56, is not the image's).

Five frames one second apart with ``any_view.keyframe_period`` 1 s and a window of 3:
every frame becomes a keyframe, so the node's windows from the third frame on are
``[f0 f1 f2]``, ``[f1 f2 f3]``, ``[f2 f3 f4]``, which are reconstruct's windows with
``--window 3 --overlap 2``. The reconstruction runs through the driver with the command's
``window_runner`` on the node's own predictor (the same weights), at ``--output-size
input`` as the node publishes.

Compared, within 1e-4 of each output's largest value: each window's depth, confidence,
cameras and intrinsics (the node's before its chain moved them); the chain: the node's
world is reconstruct's moved by one Sim(3) (the node's chain starts two windows earlier,
from a window of one view), so once that Sim(3) is taken from the first full window every
later camera equals reconstruct's cameras.json; and the published ``any_view/poses`` and
``depth/relative``.
"""

from __future__ import annotations

import json

import numpy as np
from helpers import camera_info, rgb_msg, small_image, spin_until, start_node, wait_for_subscribers

from dpt_ros.cli.reconstruct import window_runner
from dpt_ros.reconstruct.chain import world_from_camera
from dpt_ros.reconstruct.driver import ReconstructOptions, reconstruct
from dpt_ros.reconstruct.frames import Frame
from dpt_ros.reconstruct.grid import full_box, intrinsics_to_input, maps_to_input
from dpt_ros.reconstruct.sim3 import quaternion_to_rotation

H, W = 48, 64
FRAMES = 5
WINDOW = 3
TOLERANCE = 1e-4


def _close(node_value: np.ndarray, reference: np.ndarray, what: str) -> float:
    """Max difference relative to the reference's largest magnitude; asserts it."""
    a, b = np.asarray(node_value, np.float64), np.asarray(reference, np.float64)
    assert a.shape == b.shape, f"{what}: {a.shape} vs {b.shape}"
    assert np.array_equal(np.isfinite(a), np.isfinite(b)), what
    ok = np.isfinite(b)
    diff = float(np.max(np.abs(a[ok] - b[ok])) / max(np.max(np.abs(b[ok])), 1e-12))
    assert diff <= TOLERANCE, f"{what}: relative difference {diff:.3g}"
    return diff


def _homogeneous(m: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :] = m
    return out


def _node_windows(ros):
    """Runs the node over the frames; per frame: the node's raw window (before its chain
    moved it), its chain Sim(3), its world-from-current, and the published poses and
    relative depth. Also returns the node's predictor."""
    from geometry_msgs.msg import PoseArray
    from rclpy.parameter import Parameter

    from dpt_ros.reconstruct.chain import transform_window

    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.model_type", value="depth_anything_3_small"),
        Parameter("depth.random_weights", value=True),
        Parameter("network_width", value=56),
        Parameter("network_height", value=56),
        Parameter("warmup_width", value=0),
        Parameter("warmup_height", value=0),
        Parameter("output_size", value="input"),
        Parameter("any_view.window", value=WINDOW),
        Parameter("any_view.keyframe_period", value=1.0),
        Parameter("any_view.reference_view", value="saddle_balanced"),
    )
    poses: list = []
    probe.node.create_subscription(PoseArray, "any_view/poses", poses.append, 10)
    wait_for_subscribers(executor, probe)
    pubs = node.cameras[0].publishers
    assert spin_until(executor, lambda: pubs["any_view/poses"].get_subscription_count() > 0, 10)
    probe.info_pub.publish(camera_info(W, H))
    assert spin_until(executor, lambda: node.cameras[0].camera_info is not None, 5)
    state = node.any_view.states[""]
    seen = []
    for i in range(FRAMES):
        probe.image_pub.publish(rgb_msg(small_image(H, W, seed=i), 100 + i))
        assert spin_until(executor, lambda n=i + 1: len(poses) >= n, 120), f"frame {i}"
        aligned = state.previous
        raw = transform_window(aligned.window, aligned.sim3.inverse())
        wfc = world_from_camera(aligned.window.camera_from_world[-1])
        seen.append((aligned.frames, raw, aligned.sim3, wfc))
    assert spin_until(executor, lambda: len(probe.got["depth/relative"]) >= FRAMES, 10)
    return node.any_view.predictor, seen, poses, probe.got["depth/relative"]


def test_node_windows_equal_reconstruct_on_the_same_frames(ros, tmp_path):
    from dpt_ros.ros.image_codec import image_msg_to_array

    predictor, seen, poses, relative = _node_windows(ros)
    stamps = [(100 + i) * 10**9 + 250 for i in range(FRAMES)]
    assert [len(s[0]) for s in seen] == [1, 2, 3, 3, 3]
    for i in range(2, FRAMES):
        assert seen[i][0] == tuple(stamps[i - 2 : i + 1])

    frames = [
        Frame(i, f"f{i}", f"f{i}", small_image(H, W, seed=i), stamps[i]) for i in range(FRAMES)
    ]
    options = ReconstructOptions(window=WINDOW, overlap=WINDOW - 1, output_size="input")
    reconstruct(frames, window_runner(predictor, "saddle_balanced"), tmp_path, options)
    cameras = json.loads((tmp_path / "cameras.json").read_text())
    records = {f["name"]: f for f in cameras["frames"]}

    diffs: dict[str, float] = {}

    def track(key: str, value: float) -> None:
        diffs[key] = max(diffs.get(key, 0.0), value)

    # Each full window: the node's raw outputs = reconstruct's raw window, on the input grid.
    for k in range(FRAMES - WINDOW + 1):
        ref = np.load(tmp_path / "windows" / f"{k:04d}.npz")
        raw = seen[k + WINDOW - 1][1]
        net_hw = ref["depth"].shape[1:]
        for j in range(WINDOW):
            depth, confidence = maps_to_input(
                ref["depth"][j], ref["confidence"][j], (H, W), full_box((H, W))
            )
            k_input = intrinsics_to_input(ref["intrinsics"][j], net_hw, full_box((H, W)))
            track("depth", _close(raw.depth[j], depth, f"window {k} view {j} depth"))
            track(
                "confidence",
                _close(raw.confidence[j], confidence, f"window {k} view {j} confidence"),
            )
            track("intrinsics", _close(raw.intrinsics[j], k_input, f"window {k} intrinsics"))
            # random weights give focal lengths of ~1e7 pixels: the principal point in
            # its own right, against the image's size (it differed by 0.07 pixel once)
            centre = np.abs(raw.intrinsics[j][:2, 2] - k_input[:2, 2]) / W
            assert centre.max() <= TOLERANCE, f"window {k} principal point {centre}"
            track("principal point", float(centre.max()))
        track(
            "camera_from_world",
            _close(raw.camera_from_world, ref["camera_from_world"], f"window {k} cameras"),
        )

    # The chain: the node's world is reconstruct's moved by the node's Sim(3) of its first
    # full window (reconstruct's first window is its world).
    first = seen[WINDOW - 1][2]
    for i in range(WINDOW - 1, FRAMES):
        record = records[f"f{i}"]
        recon_cfw = np.asarray(record["camera_from_world"])
        expected = world_from_camera(first.transform_camera_from_world(recon_cfw[None]))[0]
        track("chained pose", _close(seen[i][3], expected, f"frame {i} chained pose"))
        depth = np.load(tmp_path / "depth" / f"f{i}.npy") * first.scale
        published = image_msg_to_array(relative[i])
        with np.errstate(divide="ignore"):
            expected_inverse = np.where(depth > 0, 1.0 / depth, 0.0)
        track("depth/relative", _close(published, expected_inverse, f"frame {i} depth/relative"))
        # any_view/poses: the window's cameras in the current one, in the node's unit.
        msg = poses[i]
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (100 + i, 250)
        raw_window = np.load(tmp_path / "windows" / f"{i - WINDOW + 1:04d}.npz")
        cfw = raw_window["camera_from_world"].astype(np.float64)
        current = _homogeneous(cfw[-1])
        chain_scale = seen[i][2].scale
        for j, pose in enumerate(msg.poses):
            rel = current @ np.linalg.inv(_homogeneous(cfw[j]))
            q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
            t = [pose.position.x, pose.position.y, pose.position.z]
            got = np.concatenate([quaternion_to_rotation(np.array(q)), np.c_[t].T], 0)
            want = np.concatenate([rel[:3, :3], chain_scale * rel[:3, 3][None]], 0)
            track("any_view/poses", _close(got, want, f"frame {i} view {j} pose"))
    print("max relative differences:", {k: f"{v:.2e}" for k, v in diffs.items()})
