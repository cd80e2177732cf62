"""Image dimensions from an encoded file's header, read before anything is decoded.

A PNG of a few hundred kilobytes can hold 20000x20000 pixels of one colour: decoding it
takes gigabytes. :func:`encoded_size` reads width and height from the header of the
formats OpenCV decodes for dpt_ros (PNG, JPEG, BMP, TIFF, WebP, GIF) without decoding,
and :func:`size_problem` turns a size over the limit into an error text a user can act
on. Plain functions on bytes: no OpenCV, no ROS.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

#: Default largest input image in pixels (4096x4096: above any camera a robot carries,
#: far below what fills an 8 GB Jetson). 0 = no limit.
DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096

_Size = tuple[int, int]

# JPEG start-of-frame markers (C0..CF except DHT C4, JPG C8 and DAC CC) carry the size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _png(b: bytes) -> _Size | None:
    if len(b) >= 24 and b[12:16] == b"IHDR":
        return struct.unpack(">II", b[16:24])
    return None


def _jpeg(b: bytes) -> _Size | None:
    pos = 2
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            return None
        marker = b[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker == 0xDA:  # scan data before any frame header
            return None
        if marker in _JPEG_SOF and pos + 9 <= len(b):
            height, width = struct.unpack(">HH", b[pos + 5 : pos + 9])
            return width, height
        pos += 2 + struct.unpack(">H", b[pos + 2 : pos + 4])[0]
    return None


def _bmp(b: bytes) -> _Size | None:
    if len(b) < 26:
        return None
    if struct.unpack("<I", b[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", b[18:22])
    width, height = struct.unpack("<ii", b[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def _gif(b: bytes) -> _Size | None:
    return struct.unpack("<HH", b[6:10]) if len(b) >= 10 else None


def _webp(b: bytes) -> _Size | None:
    chunk = b[12:16]
    if chunk == b"VP8 " and len(b) >= 30:
        width, height = struct.unpack("<HH", b[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(b) >= 25:
        bits = struct.unpack("<I", b[21:25])[0]
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X" and len(b) >= 30:
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    return None


# TIFF tags read here: ImageWidth, ImageLength, TileWidth, TileLength.
_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH = 256, 257, 322, 323


def _tiff_tags(b: bytes) -> dict[int, int] | None:
    """The size and tile tags of the first image file directory, read as libtiff reads
    them: the first entry of a tag counts (libtiff ignores a duplicate with a warning).
    None where the directory is cut short, a size tag is not a SHORT or LONG, or a tag
    is given twice with different values (ambiguous: which one a decoder uses is not
    ours to guess)."""
    order = "<" if b[:2] == b"II" else ">"
    if len(b) < 8:
        return None
    ifd = struct.unpack(order + "I", b[4:8])[0]
    if ifd + 2 > len(b):
        return None
    count = struct.unpack(order + "H", b[ifd : ifd + 2])[0]
    wanted = (_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH)
    found: dict[int, int] = {}
    for i in range(count):
        entry = b[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            return None  # the directory is cut short: tags after it are unknown
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag not in wanted:
            continue
        if kind not in (3, 4):  # SHORT or LONG; anything else is malformed
            return None
        fmt = order + ("H" if kind == 3 else "I")
        value = struct.unpack(fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
        if found.setdefault(tag, value) != value:
            return None
    return found


def _tiff(b: bytes) -> _Size | None:
    """The size in the first image file directory (see :func:`_tiff_tags`)."""
    tags = _tiff_tags(b)
    if tags is None or _TIFF_WIDTH not in tags or _TIFF_LENGTH not in tags:
        return None
    return tags[_TIFF_WIDTH], tags[_TIFF_LENGTH]


def _tiff_tile_problem(b: bytes, max_pixels: int) -> str | None:
    """Why a tiled TIFF must not be decoded under ``max_pixels``, or None.

    A tiled TIFF is decoded a whole tile at a time, and a tile may be far larger than
    the image it covers: a 64x64 image in one 16384x16368 Deflate tile is a 1 MB file
    that OpenCV unpacks into a gigabyte. What decoding unpacks is the image padded up to
    whole tiles (ceil(W / TileWidth) * TileWidth by ceil(H / TileLength) * TileLength);
    that must fit ``max_pixels`` as the image itself must. Strips need no such check:
    libtiff clamps RowsPerStrip to ImageLength and reads no more of a strip than its
    rows hold, so a strip never unpacks more than the image's own pixels."""
    tags = _tiff_tags(b) or {}
    tile = tags.get(_TIFF_TILE_WIDTH), tags.get(_TIFF_TILE_LENGTH)
    if tile == (None, None):
        return None  # stripped
    width, height = tags[_TIFF_WIDTH], tags[_TIFF_LENGTH]
    tile_w, tile_h = tile
    if not tile_w or not tile_h:
        return f"TIFF tile size {tile_w}x{tile_h} is malformed (both TileWidth and TileLength must be > 0)"
    tiles_across, tiles_down = -(-width // tile_w), -(-height // tile_h)
    unpacked = tiles_across * tile_w * tiles_down * tile_h
    if unpacked > max_pixels:
        return (
            f"TIFF tile of {tile_w}x{tile_h} pixels: decoding the {width}x{height} image "
            f"would unpack {tiles_across * tiles_down} tile(s), {unpacked} pixels, more "
            f"than max_input_pixels={max_pixels}; it was not decoded (a tile larger than "
            "its image is a decompression bomb)"
        )
    return None


#: (magic bytes at offset 0, format name, header reader).
_FORMATS: tuple[tuple[bytes, str, Callable[[bytes], _Size | None]], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG", _png),
    (b"\xff\xd8", "JPEG", _jpeg),
    (b"BM", "BMP", _bmp),
    (b"GIF8", "GIF", _gif),
    (b"II*\x00", "TIFF", _tiff),
    (b"MM\x00*", "TIFF", _tiff),
)
_KNOWN = "PNG, JPEG, BMP, TIFF, WebP, GIF"
# JPEG tables and PNG chunks before the size are small; TIFF's first IFD may be anywhere.
_HEAD_BYTES = 1 << 16


def encoded_size(data: bytes | np.ndarray) -> tuple[str, _Size | None] | None:
    """(format, (width, height)) read from the header of an encoded image.

    Args:
        data: the file's bytes (or a uint8 array of them).

    Returns:
        None for a format not listed above; (format, None) for a known format whose
        header is cut short or malformed; else the format and its size in pixels.
    """
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    head = raw if raw[:2] in (b"II", b"MM") else raw[:_HEAD_BYTES]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP", _webp(head)
    for magic, name, read in _FORMATS:
        if head.startswith(magic):
            try:
                return name, read(head)
            except struct.error:
                return name, None
    return None


def too_large(width: int, height: int, max_pixels: int) -> str | None:
    """The error text for an image of width x height over ``max_pixels`` (0 = no limit),
    else None."""
    if max_pixels > 0 and width * height > max_pixels:
        return (
            f"{width}x{height} image ({width * height} pixels) is larger than "
            f"max_input_pixels={max_pixels}; it was not decoded (raise the limit for "
            "larger cameras, 0 = no limit)"
        )
    return None


def size_problem(data: bytes | np.ndarray, max_pixels: int) -> str | None:
    """Why an encoded image must not be decoded under ``max_pixels`` (0 = no limit),
    or None: its header's size is over the limit, or the size cannot be read."""
    if max_pixels <= 0:
        return None
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    found = encoded_size(raw)
    if found is None:
        return (
            f"data is corrupt or in a format whose size cannot be read before decoding "
            f"(readable: {_KNOWN}); with max_input_pixels={max_pixels} it is not decoded "
            "(0 = no limit: any format OpenCV reads)"
        )
    name, size = found
    if size is None:
        return (
            f"{name} header is cut short, malformed or ambiguous (e.g. a size given twice): "
            "cannot read the image size"
        )
    problem = too_large(size[0], size[1], max_pixels)
    if problem is None and name == "TIFF":
        problem = _tiff_tile_problem(raw, max_pixels)
    return problem
