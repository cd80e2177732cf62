"""A hub (or a mirror named by ``HF_ENDPOINT``) that trickles a Depth Anything V2 file:
ten bytes every 20 ms, well inside every socket timeout. ``huggingface_hub``'s timeouts
are per read, so ``dpt-ros predict`` (and the node, which resolves weights the same way)
waited without end. With the default minimum rate (10 kB/s over 60 s) it now stops
after one window with one line naming the file, the server, the rate and the ways
round it, and leaves nothing in the cache."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading

import pytest
from attack import DPT_ROS, attack
from helpers import small_image

REPO = "depth-anything/Depth-Anything-V2-Small"
FILE = "depth_anything_v2_vits.pth"
#: What the hub reports for the file: the size of the real one (about 95 MiB).
SIZE = 99_158_906
#: The CLI imports torch and waits for the download; nothing is built or run.
PEAK_MB = 1500


class _TricklingHub(http.server.BaseHTTPRequestHandler):
    """Answers HEAD as the hub does for an LFS file, then trickles the GET's body."""

    def _headers(self) -> bool:
        if self.path.split("?")[0] != f"/{REPO}/resolve/main/{FILE}":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        sha = hashlib.sha256(FILE.encode()).hexdigest()  # never reached: a sha256 form
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.send_header("ETag", f'"{sha}"')
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(SIZE))
        self.send_header("X-Repo-Commit", "a" * 40)
        self.end_headers()
        return True

    def do_HEAD(self):  # noqa: N802 - http.server naming
        self._headers()

    def do_GET(self):  # noqa: N802 - http.server naming
        if not self._headers():
            return
        self.close_connection = True
        try:
            while not self.server.stopping.wait(0.02):
                self.wfile.write(b"\0" * 10)
                self.wfile.flush()
        except OSError:  # the client gave up
            pass

    def log_message(self, format, *args):  # noqa: A002 - signature from base class
        pass


@pytest.fixture
def trickling_hub():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TricklingHub)
    httpd.daemon_threads = True
    httpd.stopping = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.timeout(400)
def test_a_trickling_hub_ends_a_start_with_one_line(tmp_path, trickling_hub):
    import cv2

    cv2.imwrite(str(tmp_path / "in.png"), small_image())
    cache = tmp_path / "cache"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DPT_ROS_DOWNLOAD_", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    }
    env.update(
        HF_ENDPOINT=trickling_hub,
        HF_HOME=str(tmp_path / "hf_home"),  # the hub's own cache: empty
        DPT_ROS_CACHE=str(cache),
    )
    argv = [*DPT_ROS, "predict", "--model-type", "depth_anything_v2_vits"]
    argv += ["--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out")]
    done = attack([*argv, "--backend", "torch", "--device", "cpu"], env=env, timeout=300)
    print(f"rc {done.rc}, {done.wall_s:.0f} s, peak {done.peak_rss_mb:.0f} MB")
    assert done.rc == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    (error,) = [line for line in done.error_lines() if line.startswith("dpt-ros: error:")]
    print(error)
    assert f"{trickling_hub}/{REPO}/resolve/main/{FILE} is too slow" in error
    assert "over the last 60 s, under $DPT_ROS_DOWNLOAD_MIN_RATE=10000" in error
    assert f"copy it to {cache / FILE}" in error
    assert done.wall_s < 200  # one 60 s window after the start, not hours
    assert done.peak_rss_mb < PEAK_MB, done.peak_rss_mb
    left = [p for p in cache.rglob("*")] if cache.exists() else []
    assert [p for p in left if not p.is_dir()] == [], left  # no partial file
