"""sha256 of weight files: computed in 1 MiB chunks, and remembered per file (path,
size, modification time) in one index in the cache directory, so that the weights'
verification, the engine cache's key and an export's sidecar hash a file once, not at
every start nor once each."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

_LOG = logging.getLogger(__name__)

#: The index's file name in the cache directory.
DIGEST_INDEX = "verified.json"


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remembered_sha256(path: str | os.PathLike, index_dir: Path) -> str:
    """The sha256 of ``path``, from ``index_dir``'s index while the file's size and
    modification time are unchanged; otherwise hashed and remembered there (best
    effort: an unwritable directory only costs the hashing next time)."""
    path = Path(path).resolve()
    stat = path.stat()
    index_path = index_dir / DIGEST_INDEX
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    index = index if isinstance(index, dict) else {}
    entry = index.get(str(path))
    if (
        isinstance(entry, dict)
        and entry.get("size") == stat.st_size
        and entry.get("mtime_ns") == stat.st_mtime_ns
    ):
        return str(entry["sha256"])
    sha = sha256_file(path)
    index[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
    tmp = index_path.with_name(f".{index_path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
        os.replace(tmp, index_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        _LOG.debug("cannot remember the sha256 of %s in %s: %s", path, index_path, exc)
    return sha


def weights_digest(path: str | os.PathLike, index_dir: Path) -> str:
    """The SHA-256 that identifies weights: a file's own (remembered, see
    :func:`remembered_sha256`), or for a transformers folder ``folder:`` and the SHA-256
    of its files' names and digests (``config.json``, the safetensors files and their
    index: every file a load reads), so a changed shard or config gives a new digest."""
    path = Path(path)
    if not path.is_dir():
        return remembered_sha256(path, index_dir)
    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors")
    )
    listing = "".join(f"{p.name}\t{remembered_sha256(p, index_dir)}\n" for p in files)
    return "folder:" + hashlib.sha256(listing.encode()).hexdigest()
