"""Shared test set-up."""

from __future__ import annotations

import struct
import zlib

import numpy as np

RGB = np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8)


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG header (IHDR) claiming width x height, with a token IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
