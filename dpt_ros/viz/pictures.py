"""Writing pictures to files (command-line tools and the demo)."""

from __future__ import annotations

from pathlib import Path

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
    # start-up: cv2 on use (dpt-ros predict imports this module to parse)
    import cv2

    if rgb:
        image = np.ascontiguousarray(image[:, :, ::-1])
    try:
        ok = cv2.imwrite(str(path), image)
    except cv2.error as exc:
        raise OSError(f"cannot write {path}: {' '.join(str(exc).split())}") from None
    if not ok:
        raise OSError(f"cannot write {path}")
