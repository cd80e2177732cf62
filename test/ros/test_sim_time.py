"""``use_sim_time``: /diagnostics runs on the steady clock (before /clock too), the
stamp latency is reported unavailable (stamps and /clock need not agree) and the
arrival-to-publish time, on the steady clock, is reported instead."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from helpers import rgb_msg, small_image, spin_until, start_node, wait_for_subscribers
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock


def _values(array) -> dict[str, str]:
    return {kv.key: kv.value for kv in array.status[0].values}


def test_diagnostics_and_latency_under_sim_time(ros):
    executor, add = ros
    node, probe = start_node(
        add,
        Parameter("depth.random_weights", value=True),
        Parameter("use_sim_time", value=True),
        Parameter("diagnostics_period", value=0.2),
    )
    assert spin_until(executor, lambda: probe.diagnostics, 10)  # no /clock yet
    clock_pub = probe.node.create_publisher(Clock, "/clock", 10)
    assert spin_until(executor, lambda: clock_pub.get_subscription_count() > 0, 10)
    clock_pub.publish(Clock(clock=Time(sec=100)))
    assert spin_until(executor, lambda: node.get_clock().now().nanoseconds > 0, 10)
    wait_for_subscribers(executor, probe)
    probe.image_pub.publish(rgb_msg(small_image(), 801))  # 701 s ahead of /clock
    assert spin_until(executor, lambda: probe.got["depth/relative"], 30)
    probe.diagnostics.clear()
    assert spin_until(executor, lambda: probe.diagnostics, 10)
    values = _values(probe.diagnostics[-1])
    assert values["latency_ms_median"].startswith("unavailable (use_sim_time")
    assert 0.0 < float(values["processing_ms_median"]) < 60_000.0
    assert "processing" in probe.diagnostics[-1].status[0].message
