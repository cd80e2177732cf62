"""Download and cache DPT checkpoints (stdlib + tqdm only; no torch import).

Official DPT weights follow the ``torch.hub`` naming convention: a file such as
``dpt_hybrid-midas-501f0c75.pt`` carries the first hex digits of its own
SHA-256 digest (``501f0c75``) just before the extension.  :func:`download_checkpoint`
verifies that prefix while streaming, so a truncated or tampered download is
never mistaken for a valid checkpoint.

Cache invariant: a file only ever appears at its final path in the cache after
it was downloaded completely and (when a hash prefix is known) verified.  The
download goes to a hidden temporary file in the same directory which is moved
into place with :func:`os.replace` (atomic on POSIX) only on success, and is
deleted on any failure, including ``KeyboardInterrupt``.  Because of this,
:func:`ensure_checkpoint` trusts an existing cached file and does not re-hash it
on every start (the files are 0.5-1.3 GB).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from dpt_ros.models.errors import CheckpointError

__all__ = [
    "CheckpointError",
    "CACHE_ENV_VAR",
    "default_cache_dir",
    "cached_checkpoint_path",
    "download_checkpoint",
    "ensure_checkpoint",
]

logger = logging.getLogger(__name__)

#: Environment variable overriding the checkpoint cache directory.
CACHE_ENV_VAR = "DPT_ROS_CACHE"

_CHUNK_SIZE = 1024 * 1024
#: Environment variables of the slowest download accepted: fewer than MIN_RATE bytes per
#: second over a window of WINDOW_S seconds ends it (a server that trickles a byte
#: before each socket timeout would hold a start forever), and so does an answer
#: (status line and headers) that takes longer than a window. MIN_RATE 0 = no minimum.
MIN_RATE_ENV_VAR = "DPT_ROS_DOWNLOAD_MIN_RATE"
WINDOW_ENV_VAR = "DPT_ROS_DOWNLOAD_WINDOW_S"
#: Defaults: 10 kB/s over 60 s (a 0.5 GB checkpoint at that rate takes 14 hours; any
#: working link is far faster).
DEFAULT_MIN_RATE = 10_000.0
DEFAULT_WINDOW_S = 60.0
_USER_AGENT = "dpt_ros-checkpoint-downloader"


def default_cache_dir() -> Path:
    """Return ``$DPT_ROS_CACHE`` if set and non-empty, else ``~/.cache/dpt_ros``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "dpt_ros"


def cached_checkpoint_path(file_name: str, cache_dir: Path | None = None) -> Path:
    """Return where ``file_name`` lives (or would live) in the cache directory.

    ``file_name`` must be a bare file name (no directory components).
    ``cache_dir`` defaults to :func:`default_cache_dir`.
    """
    if (
        not file_name
        or file_name in (".", "..")
        or os.path.basename(file_name) != file_name
        or "/" in file_name
        or (os.altsep is not None and os.altsep in file_name)
    ):
        raise ValueError(f"checkpoint file name must be a plain file name, got {file_name!r}")
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / file_name


def _remove_quietly(path: str | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # pragma: no cover - best effort cleanup
        logger.warning("could not remove temporary file %s: %s", path, exc)


def _offline_hint(url: str, dest: Path) -> str:
    return (
        f"could not download {url}: the machine may be offline or the host unreachable. "
        f"To run without network access, download the file elsewhere and either pass the "
        f"path of that local weights file instead of downloading, or copy it to {dest} "
        f"(the cache directory can be changed with ${CACHE_ENV_VAR})"
    )


def download_checkpoint(
    url: str,
    dest: Path,
    hash_prefix: str | None,
    progress: bool = True,
    timeout: float = 30.0,
    expected_size: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its SHA-256 prefix.

    The body is streamed to a temporary file in ``dest.parent`` (created if
    needed) while its SHA-256 is computed; a tqdm progress bar is written to
    stderr when ``progress`` is true.  If ``hash_prefix`` is not ``None`` the
    hex digest must start with it (case-insensitive), otherwise the download is
    rejected.  On success the temporary file is renamed to ``dest`` with
    :func:`os.replace` and ``dest`` is returned.

    ``timeout`` (seconds) applies to connecting and to each individual socket
    read, not to the whole transfer. The whole transfer is bounded by the minimum
    rate (``$DPT_ROS_DOWNLOAD_MIN_RATE`` bytes/s over every ``$DPT_ROS_DOWNLOAD_WINDOW_S``
    seconds) and, when ``expected_size`` (bytes, e.g. the size a hub reports) is given,
    by that size: a longer or shorter body is refused.

    Raises:
        CheckpointError: HTTP error status, connection failure/timeout, a server
            slower than the minimum rate, truncated body, a size other than
            ``expected_size``, hash mismatch or a filesystem error.  In every
            failure case the temporary file is removed and ``dest`` is left
            untouched (never partially written).
    """
    dest = Path(dest)
    expected = hash_prefix.strip().lower() if hash_prefix is not None else None
    _make_directory(dest.parent)
    return _Download(url, dest, progress, timeout, expected_size).run(expected)


def _make_directory(directory: Path) -> None:
    """Creates the cache directory; CheckpointError naming the fix if it cannot."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"cannot create checkpoint directory {directory}: {exc} ({_cache_advice(directory)})"
        ) from exc


def _cache_advice(directory: Path) -> str:
    """What to do about a cache directory that cannot be made: the advice depends on
    where the path came from and what stands in its way."""
    env = os.environ.get(CACHE_ENV_VAR)
    blocker = next((p for p in (directory, *directory.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        where = f"${CACHE_ENV_VAR}={env}" if env else str(directory)
        return (
            f"{blocker} is a file, not a directory: point ${CACHE_ENV_VAR} at a directory "
            f"(now {where}), or move the file away"
        )
    if env:
        return f"${CACHE_ENV_VAR}={env} is not writable here: set it to a writable directory"
    return f"set ${CACHE_ENV_VAR} to a writable directory"


def _env_float(name: str, default: float) -> float:
    """A non-negative float from the environment; CheckpointError naming it if malformed."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0.0 and value != float("inf")):
        raise CheckpointError(f"${name}={text!r} must be a number >= 0 (default {default:g})")
    return value


def _rate_rule() -> tuple[float, float]:
    """(minimum bytes/s, window in seconds) from the environment; minimum 0 = none."""
    min_rate = _env_float(MIN_RATE_ENV_VAR, DEFAULT_MIN_RATE)
    window = _env_float(WINDOW_ENV_VAR, DEFAULT_WINDOW_S) or DEFAULT_WINDOW_S
    return min_rate, window


def answer_deadline_s() -> float:
    """Seconds a server may take to answer a request (its status line and headers): one
    window of the minimum rate, or 0 (no limit) where ``$DPT_ROS_DOWNLOAD_MIN_RATE`` is
    0. A socket timeout does not bound it: a server trickling header bytes resets it."""
    min_rate, window = _rate_rule()
    return window if min_rate > 0 else 0.0


class NoAnswer(TimeoutError):
    """A call of :func:`answered_within` that did not return in time."""


_T = TypeVar("_T")


def answered_within(
    seconds: float, call: Callable[[], _T], dispose: Callable[[_T], object] | None = None
) -> _T:
    """``call()``, given at most ``seconds`` (0: no limit).

    The call runs in a daemon thread; one that is late is left to finish there (its
    sockets have their own timeouts), and what it returns then goes to ``dispose``
    (e.g. closing a response). Exceptions of ``call`` are raised here.

    Raises:
        NoAnswer: ``call`` had not returned after ``seconds``.
    """
    if seconds <= 0:
        return call()
    done = threading.Event()
    lock = threading.Lock()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller, or dropped when late
            outcome["error"] = exc
        with lock:
            late = "late" in outcome
            done.set()
        if late and "value" in outcome and dispose is not None:
            dispose(outcome["value"])  # type: ignore[arg-type]

    threading.Thread(target=run, name="dpt_ros-answer", daemon=True).start()
    try:
        done.wait(seconds)
    finally:  # a Ctrl-C while waiting leaves the call to finish alone too
        with lock:
            if not done.is_set():
                outcome["late"] = True
    if "late" in outcome:
        raise NoAnswer(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _content_length(response) -> int | None:
    """The response's Content-Length, or None when absent or not a number."""
    length_header = response.headers.get("Content-Length")
    try:
        return int(length_header) if length_header is not None else None
    except ValueError:
        return None


class _Download:
    """One attempt at downloading ``url`` into a temporary file beside ``dest``.

    :meth:`run` owns the temporary file: on success it is renamed to ``dest``,
    on any failure (including ``KeyboardInterrupt``) it is removed, so the cache
    invariant of this module holds.
    """

    def __init__(
        self,
        url: str,
        dest: Path,
        progress: bool,
        timeout: float,
        expected_size: int | None = None,
    ) -> None:
        self.url = url
        self.dest = dest
        self.progress = progress
        self.timeout = timeout
        self.expected_size = expected_size
        self.tmp_path: str | None = None
        self.sha256 = hashlib.sha256()
        self.received = 0

    def run(self, expected: str | None) -> Path:
        """Downloads, verifies against ``expected`` (a hex prefix or None), moves into place."""
        try:
            fd = self._create_temp()
            with os.fdopen(fd, "wb") as out:
                self._stream_into(out)
                out.flush()
                os.fsync(out.fileno())
            self._verify(expected)
            self._move_into_place()
            return self.dest
        except CheckpointError:
            _remove_quietly(self.tmp_path)
            raise
        except OSError as exc:
            # Local filesystem errors while writing (disk full, permissions...).
            _remove_quietly(self.tmp_path)
            raise CheckpointError(f"error writing checkpoint to {self.dest.parent}: {exc}") from exc
        except BaseException:
            # KeyboardInterrupt, SystemExit, unexpected bugs: clean up and re-raise as is.
            _remove_quietly(self.tmp_path)
            raise

    def _create_temp(self) -> int:
        """Creates the hidden temporary file in ``dest``'s directory; returns its fd."""
        try:
            fd, self.tmp_path = tempfile.mkstemp(
                prefix=f".{self.dest.name}.", suffix=".partial", dir=self.dest.parent
            )
        except OSError as exc:
            raise CheckpointError(
                f"cannot write to checkpoint directory {self.dest.parent}: {exc} "
                f"(set ${CACHE_ENV_VAR} to a writable directory)"
            ) from exc
        return fd

    def _open(self):
        """The HTTP response for ``url``; CheckpointError on any failure to connect, or
        when the answer takes longer than :func:`answer_deadline_s`."""
        url = self.url
        deadline = answer_deadline_s()
        try:
            request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
            return answered_within(
                deadline,
                lambda: urllib.request.urlopen(request, timeout=self.timeout),
                dispose=lambda response: response.close(),
            )
        except NoAnswer:
            raise CheckpointError(
                f"download of {url} refused: the server sent no complete answer (status "
                f"and headers) within {deadline:g} s (${WINDOW_ENV_VAR}); "
                f"{self._way_round()}"
            ) from None
        except urllib.error.HTTPError as exc:
            exc.close()
            raise CheckpointError(
                f"HTTP error {exc.code} ({exc.reason}) while downloading {url}"
            ) from exc
        except urllib.error.URLError as exc:
            raise CheckpointError(f"{_offline_hint(url, self.dest)}; reason: {exc.reason}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CheckpointError(f"{_offline_hint(url, self.dest)}; reason: {exc!r}") from exc
        except ValueError as exc:
            raise CheckpointError(f"invalid checkpoint URL {url!r}: {exc}") from exc

    def _stream_into(self, out) -> None:
        """Writes the body to ``out`` while hashing it; checks it arrived complete."""
        with self._open() as response:
            total = _content_length(response)
            self._check_size(total, "announces")
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=self.dest.name,
                file=sys.stderr,
                disable=not self.progress,
                leave=True,
            ) as bar:
                for chunk in self._chunks(response):
                    out.write(chunk)  # local OSError (disk full...) handled in run()
                    self.sha256.update(chunk)
                    self.received += len(chunk)
                    bar.update(len(chunk))
                    if self.expected_size is not None and self.received > self.expected_size:
                        self._check_size(self.received, "sent more than that: at least")
        if total is not None and self.received != total:
            raise CheckpointError(
                f"download of {self.url} is incomplete: received {self.received} of {total} bytes"
            )
        self._check_size(self.received, "sent")

    def _check_size(self, size: int | None, verb: str) -> None:
        """CheckpointError when ``size`` (bytes; None: unknown) is not ``expected_size``."""
        if self.expected_size is not None and size is not None and size != self.expected_size:
            raise CheckpointError(
                f"download of {self.url} refused: the file is {self.expected_size} bytes, "
                f"the server {verb} {size} bytes; retry, or copy the file to {self.dest} by hand"
            )

    def _chunks(self, response):
        """Yields the body in chunks as they arrive; CheckpointError if the connection
        fails midway, or delivers fewer than ``$DPT_ROS_DOWNLOAD_MIN_RATE`` bytes per
        second over any window of ``$DPT_ROS_DOWNLOAD_WINDOW_S`` seconds."""
        min_rate, window = _rate_rule()
        mark_time, mark_bytes = time.monotonic(), 0
        while True:
            try:
                # read1: whatever has arrived (read(n) would wait for all n bytes, so a
                # trickle would never come back here to be measured)
                chunk = response.read1(_CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                raise CheckpointError(
                    f"download of {self.url} failed after {self.received} bytes: {exc!r}; "
                    "the connection was interrupted or timed out (the machine may "
                    "be offline). Retry, or pass a local weights file instead"
                ) from exc
            if not chunk:
                return
            yield chunk
            elapsed = time.monotonic() - mark_time
            if min_rate > 0 and elapsed >= window:
                rate = (self.received - mark_bytes) / elapsed
                if rate < min_rate:
                    raise CheckpointError(
                        f"download of {self.url} is too slow: {rate:.0f} bytes/s over the "
                        f"last {elapsed:.0f} s, under ${MIN_RATE_ENV_VAR}={min_rate:g} "
                        f"(after {self.received} bytes); {self._way_round()}"
                    )
                mark_time, mark_bytes = time.monotonic(), self.received

    def _way_round(self) -> str:
        """What to do about a server too slow for the minimum rate."""
        return (
            f"retry, pass a local weights file instead, or download the file elsewhere "
            f"and copy it to {self.dest} (${MIN_RATE_ENV_VAR}=0 waits for any server, a "
            f"longer ${WINDOW_ENV_VAR} allows longer stalls)"
        )

    def _verify(self, expected: str | None) -> None:
        """CheckpointError unless the digest starts with ``expected`` (None: no check)."""
        digest = self.sha256.hexdigest()
        if expected is not None and not digest.startswith(expected):
            raise CheckpointError(
                f"SHA-256 mismatch for {self.url}: expected a digest starting with "
                f"{expected!r}, got {digest!r}; the download is corrupt or the file "
                "is not the expected checkpoint"
            )

    def _move_into_place(self) -> None:
        """Renames the verified temporary file to ``dest`` (atomic on POSIX)."""
        assert self.tmp_path is not None, "written before it is moved"
        try:
            os.chmod(self.tmp_path, 0o644)  # mkstemp creates 0600; cache may be shared
        except OSError:  # pragma: no cover - not fatal
            pass
        try:
            os.replace(self.tmp_path, self.dest)
        except OSError as exc:
            raise CheckpointError(
                f"cannot move downloaded checkpoint to {self.dest}: {exc}"
            ) from exc
        self.tmp_path = None


def ensure_checkpoint(
    file_name: str,
    url: str,
    hash_prefix: str | None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Path:
    """Return the cached checkpoint ``file_name``, downloading it from ``url`` if absent.

    An existing cached file is returned as is, without re-hashing it: files are
    only ever placed in the cache by :func:`download_checkpoint`, after a
    complete download and hash verification.  (A file copied there by hand is
    trusted too; delete it to force a fresh download.)

    Raises:
        CheckpointError: see :func:`download_checkpoint`.
    """
    path = cached_checkpoint_path(file_name, cache_dir)
    if path.is_file():
        logger.debug("using cached checkpoint %s", path)
        return path
    logger.info("Downloading checkpoint from %s to %s", url, path)
    return download_checkpoint(url, path, hash_prefix, progress=progress)
