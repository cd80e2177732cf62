"""What the pipeline says about a frame besides its outputs: typed statuses, each with
its one log line (``str``), never text to be parsed again. No torch or ROS import here:
the node's health reads them too."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CameraInfoProblem(enum.Enum):
    """What was wrong with a frame's camera_info."""

    #: Its distortion cannot be undone (NaN or absurd coefficients): the frame goes on
    #: unrectified, without camera_info.
    UNRECTIFIABLE = "cannot rectify"
    #: It does not describe the image (another size) or is no usable calibration.
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class CameraInfoRefusal:
    """A frame's camera_info that the pipeline refused: the frame is processed without
    it (no ``points``, no ``depth/camera_info``).

    Attributes:
        problem: what kind of refusal.
        detail: the check's own sentence (no prefix).
    """

    problem: CameraInfoProblem
    detail: str

    @property
    def reason(self) -> str:
        """Why, in one sentence, without saying that a camera_info was refused."""
        if self.problem is CameraInfoProblem.UNRECTIFIABLE:
            return f"cannot rectify: {self.detail}"
        return self.detail

    def __str__(self) -> str:
        return f"camera_info rejected: {self.reason}"


@dataclass(frozen=True)
class NoMetres:
    """Why a depth model that needs the camera's focal length for metres (metric Depth
    Anything 3) published no metres for a frame (no ``depth/image``, no ``points``).

    Attributes:
        model: the model type.
        refusal: the frame's refused camera_info; None = the frame had none.
    """

    model: str
    refusal: CameraInfoRefusal | None

    def __str__(self) -> str:
        why = "no camera_info" if self.refusal is None else str(self.refusal)
        return (
            f"{self.model} publishes no metres without the camera's focal length: "
            f"{why} (depth/image and points are not published)"
        )
