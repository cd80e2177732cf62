"""Bounds on a safetensors file's header, checked before the header is parsed.

A safetensors file starts with the length of its JSON header (8 bytes, little endian)
and the header lists every tensor. A header of tens of megabytes of empty tensors took
the safetensors parser 89 s and 1.2 GB before the layout check could refuse the file.
The largest official layout dpt_ros loads (Depth Anything 3 large) has 643 tensors in a
header of about 82 kB; the bounds leave a wide margin over it (transformers folders
split q, k and v, and add metadata).
"""

from __future__ import annotations

import struct
from pathlib import Path

#: The largest header accepted, bytes (the largest official one is about 82 kB).
MAX_HEADER_BYTES = 2 * 2**20
#: The most tensors accepted in one file (the largest official layout has 643).
MAX_TENSORS = 8192


def header_problem(path: Path) -> str | None:
    """Why ``path``'s safetensors header is too large to parse, or None (a file that is
    not safetensors at all is left to the safetensors reader to name).

    The header's length is read from its first 8 bytes; a header within
    :data:`MAX_HEADER_BYTES` is scanned for its tensor count (each tensor has one
    ``"data_offsets"`` key) without parsing it.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                return (
                    f"its safetensors header is {length} bytes, larger than the "
                    f"{MAX_HEADER_BYTES} any weights file of these models needs; it was not "
                    "parsed (a damaged or hostile file)"
                )
            text = f.read(length)
    except OSError:
        return None  # the reader that follows names the failure
    tensors = text.count(b'"data_offsets"')
    if tensors > MAX_TENSORS:
        return (
            f"its safetensors header lists {tensors} tensors, larger than the "
            f"{MAX_TENSORS} any weights file of these models needs; it was not parsed "
            "(a damaged or hostile file)"
        )
    return None
