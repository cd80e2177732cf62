"""Writing pictures and arrays to files (command-line tools and the demo): each file
appears complete or not at all (:func:`atomic_file`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np


def write_png(path: str | Path, image: np.ndarray, rgb: bool = False) -> None:
    """Writes a PNG.

    Args:
        path: the file to write.
        image: (H, W) uint8 / uint16 grey, or (H, W, 3) uint8 with ``rgb``.
        rgb: ``image`` is RGB (OpenCV writes BGR, so the channels are swapped).

    Raises:
        OSError: the file cannot be written (the reason when OpenCV gives one).
    """
    if rgb:
        image = np.ascontiguousarray(image[:, :, ::-1])
    try:
        ok, encoded = cv2.imencode(".png", image)
    except cv2.error as exc:
        raise OSError(f"cannot write {path}: {' '.join(str(exc).split())}") from None
    if not ok:
        raise OSError(f"cannot write {path}")
    with atomic_file(path) as f:
        f.write(encoded.tobytes())


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` complete or not at all.

    It is written as a hidden temporary file beside ``path`` and renamed over it when
    the block ends; on any error (a full disk) the temporary file is removed and
    ``path`` keeps what it held before.

    Raises:
        OSError: the file cannot be written (with the path).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
