"""Tests for dpt_ros.models.weights.download against a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.weights import download as dl
from dpt_ros.models.weights.download import (
    cached_checkpoint_path,
    default_cache_dir,
    download_checkpoint,
    ensure_checkpoint,
)

CKPT_NAME = "tiny-ckpt.pt"


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that records request paths and stays quiet."""

    def do_GET(self):  # noqa: N802 - http.server naming
        self.server.requests.append(self.path)
        if self.path == "/truncated":
            # Promise more bytes than are sent, then close the connection.
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/trickle":
            # Promises 10 MB and sends 10 bytes every 20 ms (500 B/s), well inside any
            # socket timeout, until the client goes away.
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 2**20))
            self.end_headers()
            try:
                while not self.server.stopping.wait(0.02):
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return
        if self.path == "/slow-headers":
            # A status line, then header bytes one every 20 ms: each read gets a byte
            # well inside any socket timeout, and the answer never completes.
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            try:
                while not self.server.stopping.wait(0.02):
                    self.wfile.write(b"X")
                    self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - signature from base class
        pass


class _Server:
    def __init__(self, root: Path):
        handler = functools.partial(_CountingHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []
        self.httpd.stopping = threading.Event()
        self.root = root
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    srv = _Server(root)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def payload(server) -> bytes:
    # A bit more than two read chunks so the streaming loop iterates.
    data = os.urandom(2 * dl._CHUNK_SIZE + 12345)
    (server.root / CKPT_NAME).write_bytes(data)
    return data


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def _sha_prefix(data: bytes, n: int = 8) -> str:
    return hashlib.sha256(data).hexdigest()[:n]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------- paths


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DPT_ROS_CACHE", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    assert cached_checkpoint_path("a.pt") == tmp_path / "envcache" / "a.pt"


def test_default_cache_dir_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("DPT_ROS_CACHE", "")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dpt_ros"
    monkeypatch.delenv("DPT_ROS_CACHE")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dpt_ros"


def test_cached_checkpoint_path_explicit_dir(tmp_path):
    assert cached_checkpoint_path("x.pt", tmp_path) == tmp_path / "x.pt"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b.pt", "../x.pt"])
def test_cached_checkpoint_path_rejects_non_plain_names(bad, tmp_path):
    with pytest.raises(ValueError):
        cached_checkpoint_path(bad, tmp_path)


# ------------------------------------------------------------------------ download


def test_download_good_hash(server, payload, cache_dir):
    dest = cache_dir / "nested" / CKPT_NAME  # parent does not exist yet
    out = download_checkpoint(server.url(CKPT_NAME), dest, _sha_prefix(payload), progress=False)
    assert out == dest
    assert dest.read_bytes() == payload
    assert _leftovers(dest.parent) == [CKPT_NAME]


def test_download_full_digest_and_uppercase_prefix(server, payload, cache_dir):
    dest = cache_dir / CKPT_NAME
    download_checkpoint(
        server.url(CKPT_NAME), dest, hashlib.sha256(payload).hexdigest().upper(), progress=False
    )
    assert dest.read_bytes() == payload


def test_download_progress_bar_goes_to_stderr(server, payload, cache_dir, capsys):
    dest = cache_dir / CKPT_NAME
    download_checkpoint(server.url(CKPT_NAME), dest, _sha_prefix(payload), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert CKPT_NAME in captured.err
    assert dest.read_bytes() == payload


def test_download_hash_none_skips_verification(server, payload, cache_dir):
    dest = cache_dir / CKPT_NAME
    download_checkpoint(server.url(CKPT_NAME), dest, None, progress=False)
    assert dest.read_bytes() == payload


def test_download_bad_hash(server, payload, cache_dir):
    dest = cache_dir / CKPT_NAME
    digest = hashlib.sha256(payload).hexdigest()
    wrong = "00000000" if not digest.startswith("00000000") else "ffffffff"
    with pytest.raises(CheckpointError) as info:
        download_checkpoint(server.url(CKPT_NAME), dest, wrong, progress=False)
    msg = str(info.value)
    assert digest in msg
    assert wrong in msg
    assert not dest.exists()
    assert _leftovers(cache_dir) == []  # no temp file either


def test_download_bad_hash_keeps_existing_dest(server, payload, cache_dir):
    cache_dir.mkdir()
    dest = cache_dir / CKPT_NAME
    dest.write_bytes(b"previous")
    with pytest.raises(CheckpointError):
        download_checkpoint(server.url(CKPT_NAME), dest, "zzzz", progress=False)
    assert dest.read_bytes() == b"previous"
    assert _leftovers(cache_dir) == [CKPT_NAME]


def test_download_404(server, cache_dir):
    dest = cache_dir / "missing.pt"
    url = server.url("missing.pt")
    with pytest.raises(CheckpointError) as info:
        download_checkpoint(url, dest, None, progress=False)
    assert "404" in str(info.value)
    assert url in str(info.value)
    assert not dest.exists()
    assert _leftovers(cache_dir) == []


def test_download_connection_refused(cache_dir):
    url = f"http://127.0.0.1:{_free_port()}/x.pt"
    dest = cache_dir / "x.pt"
    with pytest.raises(CheckpointError) as info:
        download_checkpoint(url, dest, None, progress=False, timeout=5)
    msg = str(info.value)
    assert url in msg
    assert "offline" in msg
    assert not dest.exists()
    assert _leftovers(cache_dir) == []


def test_download_timeout(cache_dir):
    # A socket that listens but never answers: connect succeeds, the read times out.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/slow.pt"
        with pytest.raises(CheckpointError) as info:
            download_checkpoint(url, cache_dir / "slow.pt", None, progress=False, timeout=0.3)
    assert url in str(info.value)
    assert _leftovers(cache_dir) == []


@pytest.mark.timeout(60)
def test_a_trickling_server_is_given_up_on(server, cache_dir, monkeypatch):
    """A server sending a few bytes well within each socket timeout held a download
    (and the start waiting for it) for hours; a download now needs a minimum rate."""
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_MIN_RATE", "100000")
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_WINDOW_S", "1")
    dest = cache_dir / "trickle.pt"
    with pytest.raises(CheckpointError, match=r"too slow: \d+ bytes/s over the last 1 s"):
        download_checkpoint(server.url("trickle"), dest, None, progress=False, timeout=5)
    assert not dest.exists() and _leftovers(cache_dir) == []
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_MIN_RATE", "fast")
    with pytest.raises(CheckpointError, match="DPT_ROS_DOWNLOAD_MIN_RATE='fast' must be"):
        download_checkpoint(server.url("trickle"), dest, None, progress=False, timeout=5)


@pytest.mark.timeout(60)
def test_a_server_trickling_its_headers_is_given_up_on(server, cache_dir, monkeypatch):
    """The minimum rate is measured on the body; a server that trickled its headers
    held the start before the body began. Its answer may now take one window."""
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_MIN_RATE", "100000")
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_WINDOW_S", "1")
    dest = cache_dir / "slow.pt"
    with pytest.raises(CheckpointError) as info:
        download_checkpoint(server.url("slow-headers"), dest, None, progress=False, timeout=5)
    message = str(info.value)
    assert "sent no complete answer (status and headers) within 1 s" in message, message
    assert server.url("slow-headers") in message and f"copy it to {dest}" in message
    assert _leftovers(cache_dir) == []


def test_an_answer_in_time_is_returned_and_a_late_one_disposed_of():
    """answered_within: the call's value or exception in time; a late value is handed
    to dispose (a late response closed, not leaked)."""
    assert dl.answered_within(5, lambda: 42) == 42
    with pytest.raises(ValueError, match="bad"):
        dl.answered_within(5, lambda: int("bad"))
    release, disposed, gone = threading.Event(), [], threading.Event()

    def dispose(value: str) -> None:
        disposed.append(value)
        gone.set()

    with pytest.raises(dl.NoAnswer):
        dl.answered_within(0.05, lambda: release.wait(5) and "late", dispose)
    release.set()
    assert gone.wait(5) and disposed == ["late"]


def test_download_truncated_body(server, cache_dir):
    dest = cache_dir / "truncated.pt"
    with pytest.raises(CheckpointError):
        download_checkpoint(server.url("truncated"), dest, None, progress=False)
    assert not dest.exists()
    assert _leftovers(cache_dir) == []


def test_download_keyboard_interrupt_removes_temp(server, payload, cache_dir, monkeypatch):
    real_urlopen = dl.urllib.request.urlopen

    class _InterruptingResponse:
        def __init__(self, resp):
            self._resp = resp
            self.headers = resp.headers
            self._reads = 0

        def read1(self, n):
            self._reads += 1
            if self._reads > 1:
                raise KeyboardInterrupt
            return self._resp.read1(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._resp.close()
            return False

    monkeypatch.setattr(
        dl.urllib.request,
        "urlopen",
        lambda *a, **kw: _InterruptingResponse(real_urlopen(*a, **kw)),
    )
    dest = cache_dir / CKPT_NAME
    with pytest.raises(KeyboardInterrupt):
        download_checkpoint(server.url(CKPT_NAME), dest, None, progress=False)
    assert not dest.exists()
    assert _leftovers(cache_dir) == []


def test_download_invalid_url(cache_dir):
    with pytest.raises(CheckpointError):
        download_checkpoint("notaurl", cache_dir / "a.pt", None, progress=False)
    assert _leftovers(cache_dir) == []


# -------------------------------------------------------------------------- ensure


def test_ensure_checkpoint_uses_cache(server, payload, cache_dir, caplog):
    url = server.url(CKPT_NAME)
    prefix = _sha_prefix(payload)
    with caplog.at_level("INFO", logger=dl.__name__):
        first = ensure_checkpoint(CKPT_NAME, url, prefix, cache_dir=cache_dir, progress=False)
    assert first == cache_dir / CKPT_NAME
    assert first.read_bytes() == payload
    assert server.requests == [f"/{CKPT_NAME}"]
    assert any(url in r.getMessage() and str(first) in r.getMessage() for r in caplog.records)

    second = ensure_checkpoint(CKPT_NAME, url, prefix, cache_dir=cache_dir, progress=False)
    assert second == first
    assert server.requests == [f"/{CKPT_NAME}"]  # no second request


def test_ensure_checkpoint_env_cache(server, payload, tmp_path, monkeypatch):
    env_cache = tmp_path / "env-cache"
    monkeypatch.setenv("DPT_ROS_CACHE", str(env_cache))
    path = ensure_checkpoint(CKPT_NAME, server.url(CKPT_NAME), _sha_prefix(payload), progress=False)
    assert path == env_cache / CKPT_NAME
    assert path.read_bytes() == payload


def test_ensure_checkpoint_bad_hash_leaves_cache_empty(server, payload, cache_dir):
    with pytest.raises(CheckpointError):
        ensure_checkpoint(
            CKPT_NAME, server.url(CKPT_NAME), "0" * 64, cache_dir=cache_dir, progress=False
        )
    assert _leftovers(cache_dir) == []
    # A later correct attempt still works (nothing stale is picked up as cached).
    path = ensure_checkpoint(
        CKPT_NAME, server.url(CKPT_NAME), _sha_prefix(payload), cache_dir=cache_dir, progress=False
    )
    assert path.read_bytes() == payload
    assert len(server.requests) == 2


def test_a_cache_variable_naming_a_file_gets_advice_that_works(tmp_path, monkeypatch):
    """DPT_ROS_CACHE set to a regular file was told to 'set $DPT_ROS_CACHE to a
    writable directory', which it already was as far as the user could tell."""
    blocker = tmp_path / "cache_is_a_file"
    blocker.write_text("x")
    monkeypatch.setenv("DPT_ROS_CACHE", str(blocker))
    with pytest.raises(CheckpointError) as caught:
        dl._make_directory(dl.default_cache_dir())
    message = str(caught.value)
    assert f"{blocker} is a file, not a directory" in message
    assert f"$DPT_ROS_CACHE={blocker}" in message
    with pytest.raises(CheckpointError, match=f"{blocker} is a file, not a directory"):
        dl._make_directory(blocker / "engines")  # a folder below it
