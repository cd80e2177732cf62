#!/usr/bin/env python3
"""Memory of decoding a decompression "bomb": a small PNG of many pixels.

Builds a real PNG of ``--size`` x ``--size`` black pixels (zlib keeps it under a
megabyte for 20000x20000; written row by row, so making it takes little memory) and
hands it to ``compressed_to_rgb`` in a fresh child process per limit, printing the
child's peak RSS and its RSS after the call (freed memory returned or not).

    python scripts/check_image_bomb.py [--size 20000] [--unlimited]

Without ``--unlimited`` only the default limit (``max_input_pixels``) is run: the
unlimited decode of 20000x20000 needs about 2.5 GB.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, resource, sys
from sensor_msgs.msg import CompressedImage
from dpt_ros.ros.image_codec import ImageDecodeError, compressed_to_rgb

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

data = open(sys.argv[1], "rb").read()
before = rss_mb()
try:
    compressed_to_rgb(CompressedImage(format="png", data=data), int(sys.argv[2]))
    result = "decoded"
except ImageDecodeError as exc:
    result = "refused: " + str(exc)[:90]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"result": result, "rss_before_mb": before, "peak_mb": peak,
                  "rss_after_mb": rss_mb()}))
"""


def write_png_bomb(path: Path, size: int) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    zipper = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * size)  # filter byte + RGB
    idat = b"".join(zipper.compress(row) for _ in range(size)) + zipper.flush()
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--unlimited", action="store_true", help="also decode with no limit")
    parser.add_argument("--out", default="/tmp/dpt_ros_bomb.png")
    args = parser.parse_args()
    from dpt_ros.ros.image_size import DEFAULT_MAX_INPUT_PIXELS

    path = Path(args.out)
    write_png_bomb(path, args.size)
    print(f"{path}: {args.size}x{args.size} PNG, {path.stat().st_size / 1024:.0f} KiB")
    limits = [DEFAULT_MAX_INPUT_PIXELS] + ([0] if args.unlimited else [])
    for limit in limits:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(limit)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        r = json.loads(done.stdout)
        print(
            f"max_input_pixels={limit}: {r['result']}\n  RSS before {r['rss_before_mb']:.0f} MB, "
            f"peak {r['peak_mb']:.0f} MB, after {r['rss_after_mb']:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
