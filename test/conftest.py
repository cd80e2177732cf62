"""Shared test fixtures, and the tiers.

A test's tier is the folder that holds it (markers registered in ``setup.cfg``):
``unit`` (the fast tier: no real node, no bag, no export, a few seconds at most), ``ros``
(a real rclpy node), ``fidelity`` (goldens of the original implementations), ``export``
(ONNX export and engines), ``bag`` (bags written and read), ``ray`` (a local Ray),
``slow`` (more than a few seconds on two cores), ``adversarial`` (attacks in real
processes). ``smoke`` marks the few tests of the slow tiers that the fast tier keeps:
one of each kind. Set-up shared by the test modules is in ``support/`` (on ``sys.path``
by ``setup.cfg``'s ``pythonpath``); no test module imports another.

Fidelity tests run from the project's own ``test/fixtures`` in any clone: the official
checkpoints' key layouts, the test image, and the compact goldens (what the original
implementations computed from it with deterministic weights, see ``goldens.py``).
Deterministic weights come from ``deterministic_weights.py``. Where the full fixtures are
present (``../shared/fixtures`` beside the repository, or ``$DPT_ROS_FIXTURES``), the
goldens also carry the complete arrays and the tests compare every element.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import deterministic_weights
import numpy as np
import pytest
from checkpoint_store import CheckpointStore
from goldens import FIXTURES, Golden, shared_fixtures_dir

#: Support modules whose fixtures every test module may ask for by name.
pytest_plugins = ["cli_cases", "da3_cases", "fleet_cases", "transformers_cases", "vggt_cases"]

# The tests publish and subscribe on plain names (image, camera_info, points): keep them
# off the network and away from other ROS processes on this machine (a robot's camera, a
# second test run) with a DDS domain of their own, unless the caller chose one.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # Humble
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # Jazzy and later
# Engines built by the default backend (auto), hashes of weights files: in a cache of
# the test session's own, never the user's ~/.cache/dpt_ros.
# It holds ONNX engines with the weights inside (0.1-1.3 GB each): removed at the end.
_OWN_CACHE = None if "DPT_ROS_CACHE" in os.environ else tempfile.mkdtemp(prefix="dpt_ros_test_")
if _OWN_CACHE is not None:
    os.environ["DPT_ROS_CACHE"] = _OWN_CACHE


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_engine_build_left_running():
    """Every test ends with no engine build running behind it: a build left from one
    test would compete for the CPU with the next, and outlive the session."""
    yield
    # start-up: conftest loads before any test needs the package
    from dpt_ros.runtime.engine_build import stop_builds

    stop_builds()


def _process_state() -> dict[str, object]:
    """What a test may change for every test after it in this process: signal
    dispositions, torch's thread count (once torch is loaded), the working directory,
    the environment."""
    state: dict[str, object] = {
        "signal dispositions": {
            sig.name: signal.getsignal(sig)
            for sig in signal.valid_signals()
            # SIGALRM: pytest-timeout's, set and reset around each test
            if isinstance(sig, signal.Signals)
            and sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGALRM)
        },
        "working directory": os.getcwd(),
        # (pytest's own PYTEST_CURRENT_TEST changes with each phase of every test)
        "environment": {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch threads"] = (torch.get_num_threads(), torch.get_num_interop_threads())
    return state


def _restore(state: dict[str, object]) -> None:
    for name, handler in state["signal dispositions"].items():  # type: ignore[attr-defined]
        if handler is not None:
            signal.signal(getattr(signal, name), handler)
    os.chdir(state["working directory"])  # type: ignore[arg-type]
    for name in set(os.environ) - set(state["environment"]) - {"PYTEST_CURRENT_TEST"}:  # type: ignore[operator]
        del os.environ[name]
    os.environ.update(state["environment"])  # type: ignore[arg-type]
    torch = sys.modules.get("torch")
    if torch is not None and "torch threads" in state:
        torch.set_num_threads(state["torch threads"][0])  # type: ignore[index]


#: Environment variables that libraries set for themselves on use: torch's inductor
#: (its cache directory on first use, ``_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR`` at
#: each compile), by these prefixes.
_SET_BY_LIBRARIES = ("TORCHINDUCTOR_", "_TORCHINDUCTOR_")


def _differences(before: dict, after: dict) -> list[str]:
    found = []
    for what, old in before.items():
        new = after.get(what, old)
        if isinstance(old, dict):
            keys = sorted(
                k
                for k in old.keys() | new.keys()
                if old.get(k) != new.get(k)
                and not (what == "environment" and k.startswith(_SET_BY_LIBRARIES))
            )
            found += [f"{what}: {k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]
        elif old != new:
            found.append(f"{what}: {old!r} -> {new!r}")
    return found


@pytest.fixture(autouse=True)
def process_state_restored(request):
    """Fails a test that leaves process-wide state changed (signal handlers, torch
    threads, working directory, environment): the tests after it in the same process
    would inherit it (a SIGINT left ignored made a later test hang). The state is put
    back first, so one offender fails alone. A ``ray`` test's local Ray stays up for
    the session by design, and ``ray.init`` sets a SIGTERM handler and environment
    variables of its own: those are put back without failing the test."""
    before = _process_state()
    yield
    changed = _differences(before, _process_state())
    if changed:
        _restore(before)
        if request.node.get_closest_marker("ray") is None:
            pytest.fail("the test left process-wide state changed: " + "; ".join(changed))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``test/fixtures``: keys/, compact/ and scene_a.png."""
    return FIXTURES


@pytest.fixture(scope="session")
def detweights():
    """The project's deterministic-weights generator (``deterministic_weights.py``)."""
    return deterministic_weights


@pytest.fixture(scope="session")
def scene_a_rgb(fixtures_dir) -> np.ndarray:
    """The 480x640 test image as (H, W, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imread(str(fixtures_dir / "scene_a.png"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="session")
def golden(fixtures_dir):
    """golden(model_type) -> :class:`goldens.Golden` on scene_a: the compact arrays, and
    the full ones where ../shared is present."""
    shared = shared_fixtures_dir()
    loaded = {}

    def load(model_type: str) -> Golden:
        if model_type not in loaded:
            family = "dav2" if model_type.startswith("depth_anything") else "dpt"
            full = (shared / family / f"golden_{model_type}_scene_a.npz") if shared else None
            loaded[model_type] = Golden.load(
                fixtures_dir / "compact" / f"{model_type}_scene_a.compact.npz", full
            )
        return loaded[model_type]

    return load


def layout_file(model_type: str) -> str:
    """The key-layout file of ``model_type``: its own for DPT; per encoder size for Depth
    Anything V2 (the metric variants share the relative ones' layouts)."""
    if model_type.startswith("depth_anything_v2"):
        return f"keys_depth_anything_v2_{model_type.rsplit('_', 1)[1]}.json"
    return f"keys_{model_type}.json"


@pytest.fixture(scope="session")
def key_spec(fixtures_dir):
    """key_spec(model_type) -> [(key, shape, dtype), ...] of the official checkpoint."""

    def load(model_type: str):
        return deterministic_weights.read_layout(fixtures_dir / "keys" / layout_file(model_type))

    return load


#: The session's checkpoint stores (one per session; a list for the hook below).
_CHECKPOINT_STORES: list[CheckpointStore] = []


def pytest_runtest_teardown(item, nextitem):
    """After each test, its checkpoints may be removed to make room for the next's."""
    for store in _CHECKPOINT_STORES:
        store.held.clear()


@pytest.fixture(scope="session")
def det_checkpoint(tmp_path_factory, key_spec):
    """det_checkpoint(model_type) -> path of a .pt file of deterministic weights with the
    official key layout; a :class:`CheckpointStore`, so the path stays valid until the
    test that asked for it ends (ask again in each test that uses it)."""
    store = CheckpointStore(tmp_path_factory.mktemp("checkpoints"), key_spec)
    _CHECKPOINT_STORES.append(store)
    yield store
    _CHECKPOINT_STORES.remove(store)


@pytest.fixture(scope="module")
def module_tmp(request, tmp_path_factory):
    """module_tmp(name) -> a new folder, removed when the test module ends (unless one of
    its tests failed); tmp_path_factory's folders stay until the session ends, and a
    module's engines and exported files are 0.1 to 1.3 GB each."""
    root = tmp_path_factory.mktemp(request.module.__name__)
    failed = request.session.testsfailed
    yield lambda name: Path(tempfile.mkdtemp(prefix=f"{name}_", dir=root))
    if request.session.testsfailed == failed:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ros():
    """(executor, add): rclpy initialised, one executor; ``add(node)`` spins ``node`` on
    it and destroys it at the end of the test."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    made: list = []
    executor = SingleThreadedExecutor()

    def add(node):
        made.append(node)
        executor.add_node(node)
        return node

    yield executor, add
    for node in made:
        executor.remove_node(node)
        node.destroy_node()
    rclpy.try_shutdown()


#: The tiers, one folder each; a test's marker is the name of its folder (one rule, no
#: lists of names). ``unit`` is the fast tier; ``smoke`` (a decorator) keeps one test of
#: each slow kind in it.
TIERS = ("unit", "ros", "fidelity", "export", "bag", "ray", "slow", "adversarial")
#: The order the whole suite runs in: the fast tier first, so a broken import or a plain
#: regression shows before the long tiers start, and the attacks last.
_ORDER = {tier: i for i, tier in enumerate(TIERS)}


def tier_of(path: Path) -> str:
    """The tier of a test file: the folder under ``test/`` that holds it."""
    parts = path.resolve().relative_to(Path(__file__).resolve().parent).parts
    if len(parts) < 2 or parts[0] not in TIERS:
        raise pytest.UsageError(
            f"{path}: a test module belongs in one of the tier folders test/{{{','.join(TIERS)}}}"
        )
    return parts[0]


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Marks every test with its folder's tier and runs the tiers in order."""
    for item in items:
        item.add_marker(tier_of(Path(item.path)))
    items.sort(key=lambda item: _ORDER[tier_of(Path(item.path))])
    _RUN["session"] = session
    _RUN["tier"] = {item.nodeid: tier_of(Path(item.path)) for item in items}


#: The running session, the tiers it collected, and the seconds spent in each tier.
_RUN: dict = {"session": None, "tier": {}, "seconds": {}}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Times each tier, and stops the run at the fast tier's first failure when slower
    tiers would follow it: a broken build shows in minutes, not after the whole suite
    (``-x`` for the fast tier alone)."""
    tier = _RUN["tier"].get(report.nodeid)
    if tier is None:
        return
    _RUN["seconds"][tier] = _RUN["seconds"].get(tier, 0.0) + report.duration
    session = _RUN["session"]
    if (
        report.failed
        and tier == "unit"
        and session is not None
        and "unit" != max(_RUN["tier"].values(), key=_ORDER.get)
    ):
        session.shouldstop = f"the fast tier failed ({report.nodeid}): the slower tiers are not run"


def pytest_terminal_summary(terminalreporter) -> None:
    """Seconds per tier (set-up, call and tear-down of its tests)."""
    seconds = _RUN["seconds"]
    if seconds:
        terminalreporter.write_line(
            "tier times: " + ", ".join(f"{t} {seconds[t]:.0f} s" for t in TIERS if t in seconds)
        )
