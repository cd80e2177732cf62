"""Official weight files on the Hugging Face hub (Depth Anything V2 and 3).

The hub's addresses, its answer about a file (size, sha256, commit), its own cache and
``HF_HUB_OFFLINE`` are ``huggingface_hub``'s. What no library does is added here:

- the file lands in dpt_ros' cache directory beside the DPT files (``$DPT_ROS_CACHE``,
  where offline robots copy files by hand), and a file already in the hub's own cache
  is used from there;
- the bytes come through :func:`~dpt_ros.models.weights.download.download_checkpoint`,
  the DPT files' downloader, not ``hf_hub_download``: its socket timeouts are per read,
  and it hands data on in 10 MiB pieces, so a server trickling a byte before each
  timeout held a start for days with nothing to measure. Here every window of
  ``$DPT_ROS_DOWNLOAD_WINDOW_S`` seconds must bring ``$DPT_ROS_DOWNLOAD_MIN_RATE``
  bytes/s, the body must have the size the hub reports, and the file appears in the
  cache only whole and checked against the hub's sha256 (LFS files carry it as ETag);
- every failure is a :class:`CheckpointError` saying what to do.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.weights.download import (
    WINDOW_ENV_VAR,
    NoAnswer,
    answer_deadline_s,
    answered_within,
    cached_checkpoint_path,
    download_checkpoint,
)

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

    Looks in dpt_ros' cache directory first, then in the hub's own cache; else asks the
    hub (``huggingface_hub``; ``HF_HUB_OFFLINE=1`` forbids it) for the file's size and
    sha256 and downloads it into dpt_ros' cache at the minimum rate of
    :func:`~dpt_ros.models.weights.download.download_checkpoint`, verified against both
    before it appears there.

    Args:
        repo: hub repository, e.g. ``depth-anything/Depth-Anything-V2-Small``.
        file_name: file in it, e.g. ``depth_anything_v2_vits.pth``.
        cache_dir: dpt_ros' cache directory; None = ``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``.
        progress: show a progress bar on stderr.
        endpoint: a hub mirror; None = ``$HF_ENDPOINT`` or huggingface.co.

    Raises:
        CheckpointError: offline without the file, the hub unreachable or refusing, a
            server slower than the minimum rate, or the download not matching the hub's
            size or sha256.
    """
    dest = cached_checkpoint_path(file_name, cache_dir)
    if dest.is_file():
        return dest
    try:
        # start-up: huggingface_hub loads only for a hub download
        import huggingface_hub as hub
        from huggingface_hub import constants
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
    url = hub.hf_hub_url(repo, file_name, endpoint=endpoint)
    deadline = answer_deadline_s()
    try:
        # Per-read timeouts only: a server trickling its headers is bounded here.
        meta = answered_within(deadline, lambda: hub.get_hf_file_metadata(url, endpoint=endpoint))
    except NoAnswer:
        raise CheckpointError(
            f"could not download {file_name} from the Hugging Face hub ({repo}): "
            f"{urlsplit(url).netloc} sent no complete answer within {deadline:g} s "
            f"(${WINDOW_ENV_VAR}); " + _offline_advice(repo, file_name, dest)
        ) from None
    except Exception as exc:  # httpx and hub errors: one actionable message
        raise CheckpointError(
            f"could not download {file_name} from the Hugging Face hub ({repo}): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            + _offline_advice(repo, file_name, dest)
        ) from None
    etag = (meta.etag or "").strip('"').lower()
    sha256 = etag if _SHA256.match(etag) else None
    # The hub's address, not meta.location: messages name the server the user chose,
    # and a CDN's signed address (redirected to) stays out of logs.
    path = download_checkpoint(url, dest, sha256, progress=progress, expected_size=meta.size)
    checked = _checks_done(meta.size, sha256)
    server = urlsplit(url).netloc
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


def _checks_done(size: int | None, sha256: str | None) -> str:
    """What a download was verified against, in words for the log: ``size and sha256
    verified``, or which check the hub's answer did not allow (a mirror whose ETag is no
    sha256: other ETags are not digests and are not compared)."""
    sha = "sha256 verified" if sha256 else None
    size_text = "size verified" if size is not None else None
    if sha and size_text:
        return "size and sha256 verified"
    unchecked = "sha256 NOT verified (the server's ETag is not a sha256)" if not sha else ""
    return ", ".join(
        t for t in (size_text or "size NOT verified (none reported)", sha, unchecked) if t
    )
