"""``Predictor``'s members from before the families (0.1), kept for one release with a
``DeprecationWarning`` that names the replacement (CHANGELOG.md lists them). Each is the
new family-neutral API underneath: :meth:`Predictor.infer_on_device` on the device,
:meth:`Predictor.infer` on the host."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from dpt_ros._exports import REMOVAL
from dpt_ros.models.da3_transforms import network_intrinsics_to
from dpt_ros.models.family import ModelSpec, Prediction
from dpt_ros.models.transforms import check_rgb, label_confidence, labels_from_logits, resize_output


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"Predictor.{old} is deprecated: use {new} ({REMOVAL})", DeprecationWarning, stacklevel=3
    )


class _Predictor(Protocol):
    """What the deprecated members use of a Predictor."""

    spec: ModelSpec
    net_hw: tuple[int, ...]

    @property
    def is_depth(self) -> bool: ...

    @property
    def is_metric(self) -> bool: ...

    def input_size(self, image_hw: Sequence[int]) -> tuple[int, int]: ...

    def infer_on_device(
        self,
        images: torch.Tensor,
        intrinsics: Any = None,
        output_hw: Sequence[int] | None = None,
        mark: Callable[[str], None] | None = None,
        fill_sky: bool = False,
    ) -> Prediction: ...

    def infer(
        self,
        images: Any,
        intrinsics: Any = None,
        output_hw: Sequence[int] | None = None,
        fill_sky: bool = False,
    ) -> Prediction: ...

    def _main(self, found: Prediction) -> Any: ...


def _no_metres(predictor: _Predictor) -> ValueError:
    return ValueError(
        f"{predictor.spec.name} needs the camera's intrinsics for metres: use "
        "infer_on_device or infer with them"
    )


def _not_maps(predictor: _Predictor) -> None:
    if not predictor.spec.maps:
        raise ValueError(f"{predictor.spec.name} is not a Depth Anything 3 model")


class DeprecatedPredictorMembers:
    """The deprecated members of :class:`~dpt_ros.models.predictor.Predictor`."""

    @property
    def is_da3(self: _Predictor) -> bool:
        """Deprecated: ``spec.family.name == "depth_anything_3"``."""
        _deprecated("is_da3", "spec.family (a family's behaviour is its methods)")
        return self.spec.family.name == "depth_anything_3"

    @property
    def second_output(self: _Predictor) -> str:
        """Deprecated: ``spec.maps`` (``confidence`` or ``sky``), else ''."""
        _deprecated("second_output", "spec.maps")
        return self.spec.second_output

    @property
    def process_res(self: _Predictor) -> int:
        """Deprecated: the larger side of the network size, ``max(net_hw)``."""
        _deprecated("process_res", "max(net_hw)")
        return max(self.net_hw)

    def network_intrinsics(self: _Predictor, k: np.ndarray, image_hw: Sequence[int]) -> np.ndarray:
        """Deprecated: (3, 3) camera matrix of the network input of an (H, W) image whose
        camera matrix is ``k``, as Depth Anything 3 rescales it (``infer`` does it)."""
        _deprecated("network_intrinsics", "infer_on_device(images, intrinsics)")
        return network_intrinsics_to(k, image_hw, self.input_size(image_hw), max(self.net_hw))

    def da3_on_device(
        self: _Predictor,
        images: torch.Tensor,
        intrinsics: np.ndarray | Sequence[np.ndarray] | None = None,
        mark: Callable[[str], None] | None = None,
        fill_sky: bool = False,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Deprecated: (depth, second map) of :meth:`infer_on_device` at the network's
        grid: relative inverse depth or metres (None without ``intrinsics``), and the
        confidence or sky map."""
        _deprecated("da3_on_device", "infer_on_device")
        _not_maps(self)
        found = self.infer_on_device(images, intrinsics, None, mark, fill_sky)
        depth = found.depth if self.is_metric else found.inverse_depth
        return depth, getattr(found, self.spec.second_output)

    def depth_on_device(
        self: _Predictor, images: torch.Tensor, mark: Callable[[str], None] | None = None
    ) -> torch.Tensor:
        """Deprecated: the depth of :meth:`infer_on_device` at the network's grid."""
        _deprecated("depth_on_device", "infer_on_device")
        if not self.is_depth:
            raise ValueError(f"{self.spec.name} is a segmentation model; it has no depth")
        if self.spec.needs_intrinsics:
            raise _no_metres(self)
        return self._main(self.infer_on_device(images, mark=mark))

    def run_on_device(
        self: _Predictor,
        images: torch.Tensor,
        output_hw: Sequence[int] | None = None,
        mark: Callable[[str], None] | None = None,
    ) -> torch.Tensor:
        """Deprecated: the depth or labels of :meth:`infer_on_device` at ``output_hw``
        (None = the images' size); ``mark`` also gets ``postprocess``."""
        _deprecated("run_on_device", "infer_on_device")
        if self.spec.needs_intrinsics:
            raise _no_metres(self)
        hw = tuple(images.shape[1:3] if output_hw is None else output_hw)
        result = self._main(self.infer_on_device(images, output_hw=hw, mark=mark))
        if mark is not None:
            mark("postprocess")
        return result

    def segment_on_device(
        self: _Predictor,
        images: torch.Tensor,
        output_hw: Sequence[int],
        mark: Callable[[str], None] | None = None,
        confidence: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Deprecated: (labels, confidence) at ``output_hw``: the ``labels`` of
        :meth:`infer_on_device` and, with ``confidence``, ``label_confidence`` of its
        ``logits``."""
        _deprecated("segment_on_device", "infer_on_device")
        if self.is_depth:
            raise ValueError(f"{self.spec.name} is a depth model; it has no labels")
        found = self.infer_on_device(images, output_hw=output_hw, mark=mark)
        probability = label_confidence(found.logits) if confidence else None
        if mark is not None:
            mark("postprocess")
        return found.labels, probability

    def postprocess(self: _Predictor, out: torch.Tensor, output_hw: Sequence[int]) -> torch.Tensor:
        """Deprecated: network output -> (B, h, w) float32 depth or uint8 ids at
        ``output_hw`` (``infer_on_device(images, output_hw=...)`` does it)."""
        _deprecated("postprocess", "infer_on_device(images, output_hw=...)")
        out = resize_output(out, tuple(output_hw), self.spec.output_interpolation)
        return out if self.is_depth else labels_from_logits(out)

    def predict_batch(
        self: _Predictor,
        images: np.ndarray | Sequence[np.ndarray],
        output_hw: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Deprecated: the (B, h, w) depth or labels of :meth:`infer`."""
        _deprecated("predict_batch", "infer")
        batch = np.stack(images) if not isinstance(images, np.ndarray) else images
        check_rgb(batch, batched=True)
        if self.spec.needs_intrinsics:
            raise _no_metres(self)
        return self._main(self.infer(batch, output_hw=output_hw))

    def predict_da3(
        self: _Predictor,
        image: np.ndarray,
        intrinsics: np.ndarray | None = None,
        output_hw: Sequence[int] | None = None,
        fill_sky: bool = True,
    ) -> dict[str, np.ndarray]:
        """Deprecated: one image's :meth:`infer` (``fill_sky`` on) as a dict: ``depth``
        (absent for the metric type without ``intrinsics``) and ``confidence`` or
        ``sky``, (h, w) float32."""
        _deprecated("predict_da3", "infer")
        check_rgb(image, batched=False)
        _not_maps(self)
        found = self.infer(image[None], intrinsics, output_hw, fill_sky)
        arrays = {self.spec.second_output: getattr(found, self.spec.second_output)}
        depth = self._main(found)
        if depth is not None:
            arrays["depth"] = depth
        return {name: value[0] for name, value in arrays.items()}
