"""``dpt-ros bag`` refuses an output inside the input bag's directory, and tells how to
recover a cut-short MCAP file."""

from __future__ import annotations

import pytest
from helpers import NET, one_error_line, run_bag, tree_hash, write_bag


def _error(capsys) -> str:
    return one_error_line(2, capsys.readouterr().err)


@pytest.mark.parametrize("as_file", [False, True])
def test_output_inside_the_input_bag_is_refused(tmp_path, capsys, as_file):
    inp = tmp_path / "in"
    topic = write_bag(inp)
    before = tree_hash(inp)
    source = next(inp.glob("*.db3")) if as_file else inp
    out = inp / "out"
    assert run_bag(str(source), "-o", str(out), "--image-topic", topic, *NET) == 2
    assert "inside the input bag's directory" in _error(capsys)
    assert not out.exists() and tree_hash(inp) == before


def test_cut_short_mcap_names_the_recovery(tmp_path, capsys):
    inp = tmp_path / "in"
    topic = write_bag(inp, storage="mcap")
    mcap = next(inp.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    for source in (inp, mcap):
        out = tmp_path / "out"
        assert run_bag(str(source), "-o", str(out), "--image-topic", topic, *NET) == 2
        line = _error(capsys)
        assert "magic" in line and f"mcap recover {mcap.name} -o recovered.mcap" in line
