"""Weights verification: files under official names are checked by sha256 wherever they
come from (cache, copy, explicit path), the check is kept per file, a file of another
model of the same layout is named, and other names are loaded unverified with a warning
when their type cannot be told from the layout.

The official DPT files are hundreds of megabytes: the test registers the sha256 of a
deterministic-weights file as the official digest (``OFFICIAL_SHA256``, which other
model families fill the same way)."""

from __future__ import annotations

import hashlib
import logging
import os

import pytest

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.registry import MODEL_SPECS, get_spec
from dpt_ros.models.weights import digest, verify
from dpt_ros.models.weights.checkpoint import load_model
from dpt_ros.models.weights.download import cached_checkpoint_path

HYBRID = get_spec("dpt_hybrid")
NYU = get_spec("dpt_hybrid_nyu")


@pytest.fixture
def official(tmp_path, monkeypatch, det_checkpoint):
    """The det dpt_hybrid file registered as the official dpt_hybrid file; a cache dir."""
    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path / "cache"))
    source = det_checkpoint("dpt_hybrid")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(verify.OFFICIAL_SHA256, HYBRID.file_name, digest)
    monkeypatch.setitem(verify.OFFICIAL_SHA256, NYU.file_name, "0" * 64)
    return source


def test_an_official_file_is_verified_once_per_version(official, monkeypatch):
    cached = cached_checkpoint_path(HYBRID.file_name)
    cached.parent.mkdir(parents=True)
    os.link(official, cached)  # copied by hand into the cache (a link: no 500 MB copy)
    hashed = []
    original = digest.hashlib.sha256
    monkeypatch.setattr(digest.hashlib, "sha256", lambda *a: hashed.append(1) or original(*a))
    load_model("dpt_hybrid")
    load_model("dpt_hybrid")
    assert len(hashed) == 1  # the second start used the kept result
    assert (cached.parent / "verified.json").is_file()


def test_flipped_tensor_data_under_an_official_name_is_refused(official, tmp_path):
    bad = tmp_path / HYBRID.file_name
    data = bytearray(official.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(b ^ 0xFF for b in data[middle : middle + 4096])
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="official dpt_hybrid file name but not its contents"):
        load_model("dpt_hybrid", bad)  # --weights under the official name


def test_another_model_of_the_same_layout_is_named(official, tmp_path):
    renamed = tmp_path / NYU.file_name  # dpt_hybrid renamed as dpt_hybrid_nyu's file
    os.link(official, renamed)
    with pytest.raises(CheckpointError, match="it is the official dpt_hybrid file"):
        load_model("dpt_hybrid_nyu", renamed)
    with pytest.raises(CheckpointError, match="is the official dpt_hybrid checkpoint .* not"):
        os.link(official, tmp_path / HYBRID.file_name)
        load_model("dpt_hybrid_nyu", tmp_path / HYBRID.file_name)


def test_other_names_are_unverified_and_ambiguity_is_warned(official, caplog):
    with caplog.at_level(logging.INFO, logger="dpt_ros"):
        load_model("dpt_hybrid_nyu", official)
    text = caplog.text
    assert "checked by its layout only (unverified)" in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # a metric model: its outputs claim metres
    assert "cannot be told from its layout" in warnings[0] and "dpt_hybrid_kitti" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dpt_ros"):
        load_model("dpt_hybrid", official)  # relative depth: said, not warned
    assert "cannot be told from its layout" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_what_is_known_of_every_official_file():
    """Full digests where listed (each begins with its name's prefix), else the prefix."""
    for spec in MODEL_SPECS.values():
        if spec.family.name != "dpt":
            continue  # the other families' files come from the hub
        expected = verify.expected_sha256(spec.file_name)
        assert expected is not None and expected.startswith(spec.hash_prefix), spec.name
        full = spec.file_name in verify.OFFICIAL_SHA256
        assert len(expected) == (64 if full else 8), spec.name
    assert len(verify.expected_sha256(HYBRID.file_name)) == 64
