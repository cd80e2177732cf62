"""Official hub files (Depth Anything V2) through huggingface_hub, against a local server
that answers as the hub does (127.0.0.1 only): download into dpt_ros' cache, size and
sha256 verification, the minimum rate, HF_HUB_OFFLINE, and the hub's own cache."""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import re
import threading
from pathlib import Path

import pytest

from dpt_ros.models.errors import CheckpointError
from dpt_ros.models.weights.hub import hub_checkpoint

REPO = "depth-anything/Depth-Anything-V2-Small"
FILE = "depth_anything_v2_vits.pth"
COMMIT = "a" * 40


class _HubHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files[path] = (body, reported sha256, reported size)`` with the
    hub's headers for LFS files (X-Linked-Etag, X-Linked-Size, X-Repo-Commit).

    ``server.get_mode`` changes the GET answers: ``"trickle"`` sends the body 10 bytes
    every 20 ms (500 B/s, well inside any socket timeout) until the client goes away;
    ``"endless"`` sends zeros without a Content-Length until the client goes away.
    ``server.head_mode = "trickle"`` sends a HEAD's status line, then header bytes one
    every 20 ms, never completing the answer."""

    def _headers(self) -> bytes | None:
        self.server.requests.append((self.command, self.path))
        entry = self.server.files.get(self.path.split("?")[0])
        if entry is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        body, sha, size = entry
        self.send_response(200)
        if not (self.command == "GET" and self.server.get_mode == "endless"):
            self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{sha}"')
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(size))
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        return body

    def do_HEAD(self):  # noqa: N802 - http.server naming
        if self.server.head_mode != "trickle":
            self._headers()
            return
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.close_connection = True
        try:
            while not self.server.stopping.wait(0.02):
                self.wfile.write(b"X")
                self.wfile.flush()
        except OSError:  # the client gave up
            pass

    def do_GET(self):  # noqa: N802 - http.server naming
        body = self._headers()
        if body is None:
            return
        if self.server.get_mode is None:
            self.wfile.write(body)
            return
        piece = body[:10] if self.server.get_mode == "trickle" else bytes(65536)
        self.close_connection = True
        try:
            while not self.server.stopping.wait(0.02 if self.server.get_mode == "trickle" else 0):
                self.wfile.write(piece)
                self.wfile.flush()
        except OSError:  # the client gave up
            pass

    def log_message(self, format, *args):  # noqa: A002 - signature from base class
        pass


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A local hub; huggingface_hub pointed at it, with its own cache in tmp_path."""
    from huggingface_hub import constants

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubHandler)
    httpd.daemon_threads = True
    httpd.files = {}
    httpd.requests = []
    httpd.get_mode = None
    httpd.head_mode = None
    httpd.stopping = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    httpd.endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        yield httpd
    finally:
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _serve(hub, body: bytes, sha: str | None = None, size: int | None = None) -> None:
    sha = sha or hashlib.sha256(body).hexdigest()
    hub.files[f"/{REPO}/resolve/main/{FILE}"] = (body, sha, len(body) if size is None else size)


def test_download_lands_in_our_cache_verified(hub, tmp_path):
    body = os.urandom(300_000)
    _serve(hub, body)
    cache = tmp_path / "cache"
    path = hub_checkpoint(REPO, FILE, cache, progress=False, endpoint=hub.endpoint)
    assert path == cache / FILE and path.read_bytes() == body
    assert os.listdir(cache) == [FILE]  # nothing beside it (no hub metadata folder)
    gets = [r for r in hub.requests if r[0] == "GET"]
    assert len(gets) == 1
    # A second start uses the cached file without asking the hub.
    hub.requests.clear()
    assert hub_checkpoint(REPO, FILE, cache, progress=False, endpoint=hub.endpoint) == path
    assert hub.requests == []


def test_the_log_says_what_was_verified(hub, tmp_path, caplog):
    """A mirror whose ETag is not a sha256 was announced as '(size and sha256
    verified)'; the log now says which checks ran, and warns when the sha256 did not."""
    body = os.urandom(20_000)
    _serve(hub, body)
    with caplog.at_level(logging.INFO, logger="dpt_ros"):
        hub_checkpoint(REPO, FILE, tmp_path / "a", progress=False, endpoint=hub.endpoint)
    (line,) = [r for r in caplog.records if "downloaded" in r.getMessage()]
    assert "size and sha256 verified" in line.getMessage() and line.levelno == logging.INFO
    assert "127.0.0.1" in line.getMessage()  # the server it came from
    caplog.clear()
    _serve(hub, body, sha="mirror-etag-7f3a")  # a mirror's own ETag, no digest
    with caplog.at_level(logging.INFO, logger="dpt_ros"):
        hub_checkpoint(REPO, FILE, tmp_path / "b", progress=False, endpoint=hub.endpoint)
    (line,) = [r for r in caplog.records if "downloaded" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "sha256 NOT verified" in line.getMessage() and "size verified" in line.getMessage()


def test_sha256_mismatch_is_refused_and_deleted(hub, tmp_path):
    body = os.urandom(50_000)
    _serve(hub, body, sha=hashlib.sha256(b"other").hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError, match="SHA-256 mismatch.*corrupt"):
        hub_checkpoint(REPO, FILE, cache, progress=False, endpoint=hub.endpoint)
    assert os.listdir(cache) == []  # never placed, no partial file


def test_size_mismatch_is_refused(hub, tmp_path):
    body = os.urandom(50_000)
    _serve(hub, body, size=len(body) + 1)
    with pytest.raises(CheckpointError, match="size|download"):
        hub_checkpoint(REPO, FILE, tmp_path / "cache", progress=False, endpoint=hub.endpoint)
    assert not (tmp_path / "cache" / FILE).exists()


@pytest.mark.timeout(60)
def test_a_trickling_hub_is_given_up_on(hub, tmp_path, monkeypatch):
    """A hub (or mirror) sending a few bytes well within each socket timeout held the
    download, and the node's or the CLI's start waiting for it, without end: the hub's
    timeouts are per read. The DPT files' minimum rate now holds for hub files too, and
    the error names the file, the server and the way round it."""
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_MIN_RATE", "100000")
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_WINDOW_S", "1")
    _serve(hub, os.urandom(10 * 2**20))
    hub.get_mode = "trickle"
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError) as info:
        hub_checkpoint(REPO, FILE, cache, progress=False, endpoint=hub.endpoint)
    message = str(info.value)
    assert re.search(r"too slow: \d+ bytes/s over the last 1 s", message), message
    assert f"{hub.endpoint}/{REPO}/resolve/main/{FILE}" in message  # file and server
    assert f"copy it to {cache / FILE}" in message and "DPT_ROS_DOWNLOAD_MIN_RATE=0" in message
    assert os.listdir(cache) == []  # no partial file left in the cache


@pytest.mark.timeout(60)
def test_a_hub_trickling_its_headers_is_given_up_on(hub, tmp_path, monkeypatch):
    """huggingface_hub's metadata request has a per-read timeout only: a hub sending
    its headers a byte at a time held the start too. Its answer may take one window."""
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_MIN_RATE", "100000")
    monkeypatch.setenv("DPT_ROS_DOWNLOAD_WINDOW_S", "1")
    _serve(hub, os.urandom(1000))
    hub.head_mode = "trickle"
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError) as info:
        hub_checkpoint(REPO, FILE, cache, progress=False, endpoint=hub.endpoint)
    message = str(info.value)
    assert f"could not download {FILE}" in message and REPO in message, message
    assert f"{hub.endpoint.split('//')[1]} sent no complete answer within 1 s" in message
    assert f"copy it to {cache / FILE}" in message
    assert not cache.exists() or os.listdir(cache) == []


@pytest.mark.timeout(60)
def test_a_body_longer_than_the_hub_reports_is_cut(hub, tmp_path):
    """A server answering with an endless body (no Content-Length) would fill the
    disk at any rate; the download stops past the size the hub reported."""
    body = os.urandom(100_000)
    _serve(hub, body)
    hub.get_mode = "endless"
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError, match=r"the file is 100000 bytes, the server sent more"):
        hub_checkpoint(REPO, FILE, cache, progress=False, endpoint=hub.endpoint)
    assert os.listdir(cache) == []


def test_missing_file_names_the_fix(hub, tmp_path):
    with pytest.raises(CheckpointError, match=r"could not download .*copy it to"):
        hub_checkpoint(REPO, FILE, tmp_path / "cache", progress=False, endpoint=hub.endpoint)


def test_offline_without_the_file(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _serve(hub, b"x" * 10)
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE.*copy it to"):
        hub_checkpoint(REPO, FILE, tmp_path / "cache", progress=False, endpoint=hub.endpoint)
    assert hub.requests == []


def test_file_in_the_hub_cache_is_used_offline(hub, tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    body = os.urandom(1000)
    _serve(hub, body)
    in_hub_cache = Path(huggingface_hub.hf_hub_download(REPO, FILE, endpoint=hub.endpoint))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.requests.clear()
    path = hub_checkpoint(REPO, FILE, tmp_path / "cache", progress=False, endpoint=hub.endpoint)
    assert path.read_bytes() == body and path.resolve() == in_hub_cache.resolve()
    assert hub.requests == []
