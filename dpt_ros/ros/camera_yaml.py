"""camera_calibration YAML files (as ``camera_info_manager`` writes them) as CameraInfo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sensor_msgs.msg import CameraInfo

#: The matrices of the file: (YAML key, CameraInfo field, number of values).
_MATRICES = (
    ("camera_matrix", "k", 9),
    ("rectification_matrix", "r", 9),
    ("projection_matrix", "p", 12),
)


def _values(data: dict[str, Any], key: str, count: int | None, path: Path) -> list[float]:
    entry = data.get(key)
    values = entry.get("data") if isinstance(entry, dict) else None
    if not isinstance(values, list) or (count is not None and len(values) != count):
        want = f"{count} numbers" if count is not None else "a list of numbers"
        raise ValueError(f"{path}: {key} must be a mapping whose data holds {want}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {key} data must be numbers") from None


def read_camera_info_yaml(path: str | Path) -> CameraInfo:
    """A camera_calibration YAML file (``image_width``, ``image_height``,
    ``camera_matrix``, ``distortion_model``, ``distortion_coefficients``,
    ``rectification_matrix``, ``projection_matrix``) as a CameraInfo.

    Raises:
        ValueError: missing or unreadable file, or a field missing or malformed (one
            line naming the file and the field).
    """
    import yaml  # start-up: only for a calibration file

    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read camera calibration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{path} is not a YAML camera calibration ({reason})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a camera calibration (no YAML mapping)")
    info = CameraInfo()
    for key in ("image_width", "image_height"):
        value = data.get(key)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{path}: {key} must be a positive integer, got {value!r}")
    info.width, info.height = data["image_width"], data["image_height"]
    for key, field, count in _MATRICES:
        setattr(info, field, _values(data, key, count, path))
    info.distortion_model = str(data.get("distortion_model") or "plumb_bob")
    if "distortion_coefficients" in data:
        info.d = _values(data, "distortion_coefficients", None, path)
    return info
