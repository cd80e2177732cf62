"""Official weight files on the Hugging Face hub (Depth Anything V2 and 3).

Downloading, resuming, caching and ``HF_HUB_OFFLINE`` are ``huggingface_hub``'s. What
no library does is added here:

- the file lands in dpt_ros' cache directory beside the DPT files (``$DPT_ROS_CACHE``,
  where offline robots copy files by hand), and a file already in the hub's own cache
  is used from there;
- a download is checked against the size and the sha256 that the hub reports for the
  file (LFS files carry their sha256 as ETag); a file that fails is deleted and
  refused;
- every failure is a :class:`CheckpointError` saying what to do.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.weights.digest import sha256_file
from dpt_ros.models.weights.download import cached_checkpoint_path

_LOG = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _offline_advice(repo: str, file_name: str, dest: Path) -> str:
    return (
        f"download it on a connected machine (https://huggingface.co/{repo}/resolve/main/"
        f"{file_name}) and copy it to {dest}, or pass the file as weights"
    )


def hub_checkpoint(
    repo: str,
    file_name: str,
    cache_dir: Path | None = None,
    progress: bool = True,
    endpoint: str | None = None,
) -> Path:
    """The local path of an official hub file, downloading and verifying it if needed.

    Looks in dpt_ros' cache directory first, then in the hub's own cache; else downloads
    into dpt_ros' cache (resumably, by ``huggingface_hub``; ``HF_HUB_OFFLINE=1`` forbids
    it) and verifies size and sha256 against what the hub reports.

    Args:
        repo: hub repository, e.g. ``depth-anything/Depth-Anything-V2-Small``.
        file_name: file in it, e.g. ``depth_anything_v2_vits.pth``.
        cache_dir: dpt_ros' cache directory; None = ``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``.
        progress: show huggingface_hub's progress bar.
        endpoint: a hub mirror; None = ``$HF_ENDPOINT`` or huggingface.co.

    Raises:
        CheckpointError: offline without the file, the hub unreachable or refusing, or
            the download not matching the hub's size or sha256.
    """
    dest = cached_checkpoint_path(file_name, cache_dir)
    if dest.is_file():
        return dest
    try:
        # start-up: huggingface_hub loads only for a hub download
        import huggingface_hub as hub
        from huggingface_hub import constants
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:
        raise CheckpointError(
            f"{file_name} is not in the cache and huggingface_hub is not installed: "
            f"pip install huggingface_hub, or {_offline_advice(repo, file_name, dest)}"
        ) from None
    in_hub_cache = hub.try_to_load_from_cache(repo, file_name)
    if isinstance(in_hub_cache, str):
        return Path(in_hub_cache)
    if constants.HF_HUB_OFFLINE:
        raise CheckpointError(
            f"{file_name} is not in the cache ({dest}) and HF_HUB_OFFLINE is set; "
            + _offline_advice(repo, file_name, dest)
        )
    (enable_progress_bars if progress else disable_progress_bars)()
    try:
        url = hub.hf_hub_url(repo, file_name, endpoint=endpoint)
        meta = hub.get_hf_file_metadata(url, endpoint=endpoint)
        path = Path(hub.hf_hub_download(repo, file_name, local_dir=dest.parent, endpoint=endpoint))
    except Exception as exc:  # httpx, hub and OS errors: one actionable message
        raise CheckpointError(
            f"could not download {file_name} from the Hugging Face hub ({repo}): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            + _offline_advice(repo, file_name, dest)
        ) from None
    checked = _verify_download(path, meta.size, meta.etag or "", f"{repo}/{file_name}")
    server = hub.hf_hub_url(repo, file_name, endpoint=endpoint).split("/", 3)[2]
    if checked.startswith("size and sha256"):
        _LOG.info("downloaded %s to %s from %s (%s)", file_name, path, server, checked)
    else:  # the file's contents are unchecked: say so where it is seen
        _LOG.warning(
            "downloaded %s to %s from %s: %s; check its sha256 against the model card",
            file_name,
            path,
            server,
            checked,
        )
    return path


def _verify_download(path: Path, size: int | None, etag: str, what: str) -> str:
    """Deletes ``path`` and raises unless it has the hub's reported size and sha256
    (the ETag of an LFS file; other ETags are not digests and are not compared).

    Returns:
        What was verified, in words for the log: ``size and sha256 verified``, or which
        check the server's answer did not allow (a mirror whose ETag is no sha256).
    """
    expected = etag.strip('"').lower()
    problem = None
    if size is not None and path.stat().st_size != size:
        problem = f"size {path.stat().st_size} bytes, the hub reports {size}"
    elif _SHA256.match(expected):
        got = sha256_file(path)
        if got != expected:
            problem = f"sha256 {got}, the hub reports {expected}"
    if problem:
        path.unlink(missing_ok=True)
        raise CheckpointError(f"the download of {what} is corrupt ({problem}); deleted, retry")
    sha = "sha256 verified" if _SHA256.match(expected) else None
    size_text = "size verified" if size is not None else None
    if sha and size_text:
        return "size and sha256 verified"
    unchecked = "sha256 NOT verified (the server's ETag is not a sha256)" if not sha else ""
    return ", ".join(
        t for t in (size_text or "size NOT verified (none reported)", sha, unchecked) if t
    )
