"""The bag tool's output on a device that fills (a small tmpfs), in one process: the
output keeps what was written up to its last checkpoint, whether the disk fills while
messages are written or while the bag is closed (MCAP writes its last chunk, its
summary and footer then; sqlite3 its last transaction). The whole run's behaviour is in
``test/adversarial/test_bag_disk_full.py``."""

from __future__ import annotations

import os

import pytest
from helpers import fill_device, read_bag, small_device, write_bag

from dpt_ros.cli.bag import job as bag_job
from dpt_ros.ros.bagio import open_bag

TOPIC = "/out/blob"
PAYLOAD = 100_000  # bytes per message


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("fills_during", ["write", "close"])
def test_a_full_disk_keeps_the_last_checkpoint(tmp_path, monkeypatch, storage, fills_during):
    # Room kept aside for the close: less than what is still unwritten at the close.
    monkeypatch.setattr(bag_job, "_RESERVE_BYTES", 64 << 10)
    inp = tmp_path / "in"
    write_bag(inp, frames=2)
    with small_device(tmp_path / "small") as device:
        reader = open_bag(inp)
        try:
            out = bag_job._OutputBag(device / "out", storage, reader)

            def write(first: int, count: int) -> None:
                for i in range(first, first + count):
                    out.write_output(TOPIC, "std_msgs/msg/String", 1000 + i, os.urandom(PAYLOAD))

            write(0, 45)  # 4.5 MB: at the checkpoint's size
            out.checkpoint(frames=45)
            if fills_during == "write":
                fill_device(device)
                with pytest.raises(bag_job.DiskFull, match="keeps the 45 frame"):
                    write(45, 100)
                out.close()
            else:
                write(45, 5)  # 0.5 MB: not written before the close
                fill_device(device)
                with pytest.raises(bag_job.DiskFull, match="keeps the 45 frame"):
                    out.close()
            out.close()  # a second close does nothing
        finally:
            reader.close()
        names = sorted(p.name for p in (device / "out").iterdir())
        assert names == ["metadata.yaml", f"out.{'db3' if storage == 'sqlite3' else 'mcap'}"]
        bag = read_bag(device / "out")
        assert [t for t, _, _ in bag[TOPIC]] == list(range(1000, 1045))
        from rosbags.rosbag2 import Reader

        with Reader(device / "out") as counted:
            assert {c.topic: c.msgcount for c in counted.connections}[TOPIC] == 45
