"""Checks of a weights file's contents against the official checkpoints' sha256.

The cache is filled by downloads (verified as they arrive), but also by hand: the
docs/models.md tells offline robots to copy files there. So every file under an official file
name is verified wherever it comes from (cache, copy, ``--weights``), and a file that
passes the key-layout check but is another model of the same layout (``dpt_hybrid``
renamed to ``dpt_hybrid_nyu``'s name) is named for what it is.

What is known of each official file's sha256: the full digest where listed in
:data:`OFFICIAL_SHA256` (keyed by file name, so that other model families add theirs),
else the hex prefix that ends the torch.hub-style file name
(``dpt_hybrid-midas-501f0c75.pt``: ``501f0c75``). ``dpt_hybrid`` and ``dpt_large``
have their full digests here; the four other DPT release files only that 8-digit prefix:
a file that matches it is taken as verified (2^-32 for a corrupt file to pass).

Hashing a 500 MB file takes seconds, so the result is kept per file in
``verified.json`` in the cache directory, keyed by path, size and mtime: a later start
hashes nothing unless the file changed.

Depth Anything V2's hub files carry no digest in their names and none is listed here:
their downloads are checked against the sha256 the hub reports
(``dpt_ros.models.weights.hub``); a hand-made copy is checked by its layout only, and
the log says so.

Files under other names (``--weights my_finetune.pt``) are not hashed: they are
checked by their layout only, and the log says they are unverified. Where other model
types share the layout, the log says the type cannot be told from it: a warning for a
metric model (its outputs claim metres), info otherwise.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.registry import MODEL_SPECS, ModelSpec
from dpt_ros.models.weights.digest import remembered_sha256
from dpt_ros.models.weights.download import default_cache_dir
from dpt_ros.models.weights.layout import identify_model_types

PathLike = str | os.PathLike

_LOG = logging.getLogger(__name__)

#: Full sha256 of official files, by file name (where known; else the name's prefix).
#: Each begins with its name's prefix (checked by the tests).
OFFICIAL_SHA256: dict[str, str] = {
    "dpt_hybrid-midas-501f0c75.pt": (
        "501f0c75b3bca7daec6b3682c5054c09b366765aef6fa3a09d03a5cb4b230853"
    ),
    "dpt_large-midas-2f21e586.pt": (
        "2f21e586477d90cb9624c7eef5df7891edca49a1c4795ee2cb631fd4daa6ca69"
    ),
}

_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def expected_sha256(file_name: str) -> str | None:
    """The known sha256 (full, or the leading hex digits) of an official file name."""
    if file_name in OFFICIAL_SHA256:
        return OFFICIAL_SHA256[file_name]
    match = _PREFIX.search(file_name)
    return match.group(1) if match else None


def official_spec(file_name: str) -> ModelSpec | None:
    """The model type whose official file is named ``file_name``, if any (None where
    several types share the name: Depth Anything 3's ``model.safetensors``)."""
    owners = [s for s in MODEL_SPECS.values() if s.file_name == file_name]
    return owners[0] if len(owners) == 1 else None


def file_sha256(path: Path, cache_dir: PathLike | None = None) -> str:
    """sha256 of ``path``, remembered in the cache directory's index while its size
    and mtime are unchanged."""
    return remembered_sha256(path, Path(cache_dir) if cache_dir else default_cache_dir())


def _identify(digest: str) -> list[str]:
    """Model types whose official file has this sha256 (as far as it is known)."""
    names = []
    for name, spec in MODEL_SPECS.items():
        expected = expected_sha256(spec.file_name)
        if expected and digest.startswith(expected):
            names.append(name)
    return names


def _known_text(expected: str) -> str:
    return "sha256" if len(expected) == 64 else f"sha256 prefix {expected} (from its name)"


def verify_weights(
    path: Path,
    spec: ModelSpec,
    state_dict: Mapping[str, torch.Tensor],
    cache_dir: PathLike | None = None,
) -> None:
    """Checks ``path`` (already read into ``state_dict`` and of ``spec``'s layout); the
    sha256 is remembered in ``cache_dir`` (None = the default cache directory).

    Raises:
        CheckpointError: a file under an official name whose sha256 is not that file's
            (corrupt, or another file), or the official file of another model type.
    """
    owner = official_spec(path.name)
    expected = expected_sha256(path.name) if owner else None
    if owner is not None and expected is None:
        # Hub files (Depth Anything V2): their download is checked against the sha256
        # the hub reports; a copy made by hand can only be checked by its layout.
        _LOG.info(
            "%s: no sha256 of the official %s file is known here: checked by its layout "
            "only (unverified; a download is verified against the hub's sha256)",
            path,
            owner.name,
        )
        _warn_if_ambiguous(path, spec, state_dict)
        return
    if owner is None or expected is None:
        _LOG.info("%s: not an official file name: checked by its layout only (unverified)", path)
        _warn_if_ambiguous(path, spec, state_dict)
        return
    digest = file_sha256(path, cache_dir)
    if not digest.startswith(expected):
        others = _identify(digest)
        what = (
            f"it is the official {' / '.join(others)} file"
            if others
            else "it is corrupt, or another file"
        )
        raise CheckpointError(
            f"{path} has the official {owner.name} file name but not its contents: sha256 "
            f"{digest[:16]}... does not match the {_known_text(expected)}; {what}. Delete "
            "it (the official file is downloaded again) or give the right file"
        )
    if owner.name != spec.name:
        raise CheckpointError(
            f"{path} is the official {owner.name} checkpoint ({_known_text(expected)} "
            f"matches), not {spec.name}: use model type {owner.name}, or the {spec.name} file"
        )
    _LOG.info("%s: %s verified", path, _known_text(expected))


def _warn_if_ambiguous(path: Path, spec: ModelSpec, state_dict: Mapping[str, torch.Tensor]) -> None:
    alike = [name for name in identify_model_types(state_dict) if name != spec.name]
    if alike:
        # A warning where the outputs claim metres; for relative depth and labels, info.
        _LOG.log(
            logging.WARNING if spec.is_metric else logging.INFO,
            "%s is loaded as %s, but %s have the same layout: which model a file holds "
            "cannot be told from its layout. Make sure it really is %s (a wrong one "
            "publishes wrong depth, perhaps in the wrong units)",
            path,
            spec.name,
            ", ".join(alike),
            spec.name,
        )
