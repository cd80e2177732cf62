"""``dpt-ros predict``: run a model (DPT, Depth Anything V2 or Depth Anything 3) on image
files and write the results.

For every input image ``<stem>`` (one file, or each .png/.jpg/.jpeg/.bmp/.tif/.tiff
file directly inside a directory, sorted by name) the output directory receives:

Depth models (``dpt_hybrid``, ``dpt_large``, ``dpt_hybrid_kitti``, ``dpt_hybrid_nyu``,
``depth_anything_v2_*``):

- ``<stem>_depth.npy``: float32, the image's H x W, the model's output resized back to
  the image, unscaled: relative inverse depth (unitless, larger = nearer) for
  ``dpt_hybrid`` / ``dpt_large`` / ``depth_anything_v2_vit*``, metric depth in metres
  for ``dpt_hybrid_kitti`` / ``dpt_hybrid_nyu`` / ``depth_anything_v2_metric_*``.
- ``<stem>_depth.png``: 16-bit single channel.
    * metric models: depth in millimetres (the ROS / OpenNI ``16UC1`` convention),
      rounded, clipped to 65535; 0 = invalid (no finite, positive depth);
    * relative models: the image's own min..max linearly mapped to 0..65535, as the
      original DPT's ``write_depth`` with ``bits=2`` does (a visualisation: values of
      different images are not comparable).
- ``<stem>_depth_color.png``: the Turbo colour map, near = warm (red), far = cold
  (blue), over the 2nd..98th percentile of the image; invalid pixels black.

Depth Anything 3 (``depth_anything_3_*``): the same three files, ``<stem>_depth.npy``
relative inverse depth (the inverse of the network's depth, which grows with distance)
or, for ``depth_anything_3_metric_large``, metres (network output times
((fx + fy) / 2) / 300, fx and fy from ``--camera-info``'s P rescaled to the network input;
required); mono and metric sky pixels hold the reference's filling (the 99th percentile of
the other pixels' depth). Plus ``<stem>_confidence.npy`` (any-view types: >= 1, larger =
more confident) or ``<stem>_sky.npy`` (mono and metric: sky where >= 0.3), float32.

Segmentation models (``dpt_hybrid_ade20k``, ``dpt_large_ade20k``):

- ``<stem>_labels.png``: 8-bit single channel, ADE20K ids 1..150, 0 = unlabelled.
- ``<stem>_labels_color.png``: the ADE20K palette blended 50 % over the image.

Images are decoded by OpenCV (``IMREAD_COLOR``): grayscale, 16-bit and alpha images
become 8-bit RGB. A file that cannot be decoded does not stop the others; the command
ends with an error naming the failed files.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dpt_ros.cli.args import (
    AUTO_BUILD,
    add_max_input_pixels_argument,
    add_predictor_arguments,
    options_from_flags,
    say_backend,
)
from dpt_ros.models import Predictor, get_spec, resolve_device, resolve_precision
from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.registry import model_names
from dpt_ros.ros.camera import Intrinsics, check_camera_info_matches
from dpt_ros.ros.camera_yaml import read_camera_info_yaml
from dpt_ros.ros.image_size import DEFAULT_MAX_INPUT_PIXELS, size_problem
from dpt_ros.runtime.build_choice import choose_build, estimate_build
from dpt_ros.runtime.engine_cache import CachedEngineRuntime, engine_records
from dpt_ros.text import shown
from dpt_ros.viz.ade20k import PALETTE
from dpt_ros.viz.colormap import StableRange, colorize, overlay_labels
from dpt_ros.viz.pictures import atomic_file, write_png

_LOG = logging.getLogger(__name__)

#: File name extensions (lower case) of the images taken from an input directory.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEFAULT_OUTPUT = "dpt_output"
#: ``--output-size`` values.
OUTPUT_SIZES = ("input", "network")
#: The largest value of a 16-bit PNG.
UINT16_MAX = 65535
#: Failed files named in the final error message; the rest are counted.
_MAX_NAMED_FAILURES = 5

_EPILOG = """\
outputs, for each input image <stem> in the output directory:
  depth models:
    <stem>_depth.npy        float32 H x W, unscaled model output: relative inverse
                            depth (dpt_hybrid, dpt_large, depth_anything_v2_vit*) or
                            metres (dpt_hybrid_kitti, dpt_hybrid_nyu,
                            depth_anything_v2_metric_*)
    <stem>_depth.png        16-bit. Metric models: millimetres, clipped to 65535,
                            0 = invalid (ROS/OpenNI convention). Relative models: the
                            image's min..max mapped to 0..65535 (like the original
                            DPT write_depth with bits=2)
    <stem>_depth_color.png  colour map, near = warm (red), far = cold (blue)
  depth_anything_3_* also: <stem>_confidence.npy (>= 1) or <stem>_sky.npy (sky >= 0.3);
    depth_anything_3_metric_large needs --camera-info FILE
  segmentation models:
    <stem>_labels.png       8-bit ADE20K ids 1..150, 0 = unlabelled
    <stem>_labels_color.png palette blended over the image

exit status: 0 on success, 2 on an error (one line on stderr, 'dpt-ros: error: ...')."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Lists the model types when help is printed, so parsing never imports torch."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action) or ""
        if "--model-type" in action.option_strings:
            text += " (one of: " + ", ".join(model_names()) + ")"
        return text


def add_parser(subparsers, name: str, help: str) -> argparse.ArgumentParser:
    """Adds the ``predict`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description="Run a depth or segmentation model (DPT, Depth Anything V2 or Depth "
        "Anything 3) on an image file or on every image in a directory (not recursive) and "
        "write the results.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--model-type", required=True, metavar="NAME", help="model type")
    parser.add_argument(
        "--weights",
        metavar="PATH",
        help="weights file (.pt) or transformers save_pretrained folder; default: the "
        "official checkpoint from the cache "
        "($DPT_ROS_CACHE or ~/.cache/dpt_ros), downloaded there if missing",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="use random weights instead of a file (timing and plumbing tests only; "
        "the outputs are meaningless)",
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="IMAGE|DIR",
        help="an image file, or a directory whose "
        + "/".join(e[1:] for e in IMAGE_EXTENSIONS)
        + " files are all processed",
    )
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="output directory, created if needed (default: ./%(default)s)",
    )
    add_predictor_arguments(parser, engine_build_auto=True)
    add_max_input_pixels_argument(parser)
    parser.add_argument(
        "--engine",
        metavar="PATH",
        help="exported .onnx / .engine file for --backend onnxruntime/tensorrt",
    )
    parser.add_argument(
        "--camera-info",
        metavar="FILE",
        help="the camera's calibration (camera_calibration YAML, as camera_info_manager "
        "writes it) for the images' size; required by depth_anything_3_metric_large",
    )
    parser.add_argument(
        "--output-size",
        choices=OUTPUT_SIZES,
        default="input",
        help="size of the results: the input image's (default) or the network input's",
    )
    return parser


# --------------------------------------------------------------------------- inputs


def list_images(path: Path) -> list[Path]:
    """The image files of ``path``: the file itself, or a directory's images sorted by name.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a directory without images.
    """
    if not path.exists():
        raise FileNotFoundError(f"input not found: {_name(path)}")
    if not path.is_dir():
        return [path]
    files = sorted(
        p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
        raise ValueError(
            f"no images in directory {_name(path)} (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)} files, not in subdirectories)"
        )
    return files


def output_stems(paths: Sequence[Path]) -> list[str]:
    """Output name stems: the file stem, or the whole name with '_' for '.' where two
    inputs share a stem (``a.png`` and ``a.jpg`` -> ``a_png``, ``a_jpg``)."""
    counts = Counter(p.stem for p in paths)
    return [p.stem if counts[p.stem] == 1 else p.name.replace(".", "_") for p in paths]


def _name(path: Path | str) -> str:
    """A file name or path as it appears in a line: quoted, control characters escaped,
    cut to 255 characters (:func:`dpt_ros.text.shown`), so that a file named
    ``"x\\n[FATAL] ..."`` cannot forge a line nor an ESC sequence move the terminal."""
    return shown(path, limit=255)


class _TooLarge(ValueError):
    """An image file over ``--max-input-pixels`` (its message names file and size)."""


def read_rgb(path: Path, max_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> np.ndarray:
    """Reads an image file as (H, W, 3) uint8 RGB.

    Decoded by OpenCV with ``IMREAD_COLOR`` (as ``cv2.imread`` does; the bytes are read
    here so that I/O errors and undecodable content are told apart): grayscale and
    alpha images become 3-channel, 16-bit ones 8-bit.

    Its size is read from the header first: more than ``max_pixels`` pixels (0 = no
    limit) are refused before decoding.

    Raises:
        OSError: the file cannot be read.
        ValueError: the content is not an image OpenCV can decode, or is too large.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ValueError(f"{_name(path)} is empty")
    problem = size_problem(data, max_pixels)
    if problem:
        raise _TooLarge(f"{_name(path.name)} ({problem})")
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    old_level = log.getLogLevel() if log is not None else None
    try:
        if log is not None:  # OpenCV warns on stderr about truncated files; we report them
            log.setLogLevel(log.LOG_LEVEL_ERROR)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    finally:
        if log is not None:
            log.setLogLevel(old_level)
    if bgr is None or bgr.size == 0:
        raise ValueError(f"{_name(path)} is not an image OpenCV can decode")
    if bgr.dtype == np.uint16:  # IMREAD_COLOR already gives 8 bits; kept for safety
        bgr = (bgr.astype(np.uint16) >> 8).astype(np.uint8)
    elif bgr.dtype != np.uint8:
        bgr = np.clip(bgr.astype(np.float32) * 255.0, 0, 255).round().astype(np.uint8)
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(bgr[:, :, 2::-1])


# --------------------------------------------------------------------------- encodings


def depth_to_png16(depth: np.ndarray, metric: bool) -> np.ndarray:
    """The 16-bit PNG encoding of a depth map (see the module docstring).

    Args:
        depth: (H, W) float depth: metres if ``metric``, else relative inverse depth.
        metric: millimetres (0 = invalid) instead of the min..max mapping.

    Returns:
        (H, W) uint16.
    """
    d = np.asarray(depth, dtype=np.float64)
    finite = np.isfinite(d)
    if metric:
        valid = finite & (d > 0)
        mm = np.where(valid, d, 0.0) * 1000.0
        return np.clip(np.rint(mm), 0, UINT16_MAX).astype(np.uint16)
    if not finite.any():
        return np.zeros(d.shape, np.uint16)
    lo, hi = float(d[finite].min()), float(d[finite].max())
    if hi - lo <= np.finfo(np.float32).eps:
        return np.zeros(d.shape, np.uint16)
    scaled = np.where(finite, d - lo, 0.0) * (UINT16_MAX / (hi - lo))
    return np.clip(np.rint(scaled), 0, UINT16_MAX).astype(np.uint16)


def depth_to_color(depth: np.ndarray, metric: bool) -> np.ndarray:
    """(H, W, 3) uint8 RGB colour image of a depth map, near = warm, far = cold.

    The colour range is the 2nd..98th percentile of the valid pixels; invalid ones
    (non-finite, and for metric depth <= 0) are black.
    """
    d = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(d) & (d > 0) if metric else np.isfinite(d)
    values = np.where(valid, d, np.float32(np.nan))
    lo, hi = StableRange(alpha=1.0).update(values)
    # colorize puts vmax at the warm end: nearest is the smallest metric depth but the
    # largest inverse depth.
    near, far = (lo, hi) if metric else (hi, lo)
    return colorize(values, vmin=far, vmax=near)


def labels_to_color(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The ADE20K palette blended 50 % over the image; unlabelled pixels keep the image."""
    return overlay_labels(rgb, labels, PALETTE, alpha=0.5)


def write_npy(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` as float32 ``.npy``, complete or not at all (a full disk leaves
    no truncated file)."""
    with atomic_file(path) as f:
        np.save(f, np.asarray(array, dtype=np.float32))


def write_depth_outputs(out_dir: Path, stem: str, depth: np.ndarray, metric: bool) -> list[Path]:
    """Writes ``<stem>_depth.npy``, ``<stem>_depth.png`` and ``<stem>_depth_color.png``."""
    paths = [
        out_dir / f"{stem}_depth.npy",
        out_dir / f"{stem}_depth.png",
        out_dir / f"{stem}_depth_color.png",
    ]
    write_npy(paths[0], depth)
    write_png(paths[1], depth_to_png16(depth, metric))
    write_png(paths[2], depth_to_color(depth, metric), rgb=True)
    return paths


def write_label_outputs(
    out_dir: Path, stem: str, labels: np.ndarray, rgb: np.ndarray
) -> list[Path]:
    """Writes ``<stem>_labels.png`` and ``<stem>_labels_color.png``."""
    paths = [out_dir / f"{stem}_labels.png", out_dir / f"{stem}_labels_color.png"]
    write_png(paths[0], np.asarray(labels, dtype=np.uint8))
    write_png(paths[1], labels_to_color(rgb, labels), rgb=True)
    return paths


# --------------------------------------------------------------------------- command


def camera_matrix_for(camera_info: Any, image_hw: Sequence[int]) -> np.ndarray:
    """(3, 3) camera matrix of an (H, W) image from its calibration (P, binning and ROI
    as image_geometry reads them).

    Raises:
        ValueError: the calibration is for another image size.
    """
    check_camera_info_matches(camera_info, int(image_hw[1]), int(image_hw[0]))
    c = Intrinsics.from_camera_info(camera_info)
    return np.array([[c.fx, 0.0, c.cx], [0.0, c.fy, c.cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def _readable(paths: Sequence[Path], failed: list[str], max_pixels: int) -> Iterator[tuple]:
    for path, stem in zip(paths, output_stems(paths)):
        try:
            yield path, stem, read_rgb(path, max_pixels)
        except (ValueError, OSError) as exc:
            _LOG.info("cannot read %s: %s", _name(path), exc)
            failed.append(str(exc) if isinstance(exc, _TooLarge) else _name(path.name))


def run(args: argparse.Namespace) -> int:
    """Runs ``dpt-ros predict``; errors are raised for ``dpt_ros.cli.main.main`` to report."""
    # Cheap checks first, so that a typo does not wait for a model to load.
    spec = get_spec(args.model_type)
    if args.weights and args.random_weights:
        raise ValueError("give either --weights or --random-weights, not both")
    # --engine-build auto: cached engines only, until the first image shows whether a
    # build pays off (_choose_backend).
    decide = args.engine_build == AUTO_BUILD
    options = options_from_flags(
        args,
        spec.name,
        weights=args.weights,
        engine=args.engine,
        random_weights=args.random_weights,
    )
    options = options.with_(engine_build="never" if decide else args.engine_build).validated()
    resolve_precision(args.precision, resolve_device(args.device))
    camera_info = None
    if getattr(args, "camera_info", None):
        camera_info = read_camera_info_yaml(args.camera_info)
        try:  # an unusable calibration is refused before the model loads
            Intrinsics.from_camera_info(camera_info)
        except ValueError as exc:
            raise ValueError(f"{args.camera_info}: {exc}") from None
    elif spec.camera_requirement:
        raise ValueError(
            f"{spec.name} needs --camera-info FILE (the camera's calibration YAML): "
            f"{spec.camera_requirement}"
        )
    paths = list_images(Path(args.input).expanduser())
    out_dir = Path(args.output).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output path exists and is not a directory: {_name(out_dir)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    done, inference_s, predictor = _predict_all(
        options,
        paths,
        out_dir,
        failed,
        args.max_input_pixels,
        camera_info,
        getattr(args, "output_size", "input"),
        decide,
    )
    if done:
        print(
            f"{done} image(s) with {spec.name} on {predictor.device} "
            f"({str(predictor.dtype).replace('torch.', '')}): {inference_s:.2f} s, "
            f"{inference_s * 1000 / done:.1f} ms per image; results in {_name(out_dir)}",
            flush=True,
        )
    if failed:
        named = ", ".join(failed[:_MAX_NAMED_FAILURES])
        if len(failed) > _MAX_NAMED_FAILURES:
            named += f" and {len(failed) - _MAX_NAMED_FAILURES} more"
        raise ValueError(
            f"{len(failed)} of {len(paths)} input file(s) could not be read as images "
            f"or run: {named}"
        )
    return 0


def _predict_all(
    options: PredictorOptions,
    paths: Sequence[Path],
    out_dir: Path,
    failed: list[str],
    max_pixels: int,
    camera_info: Any = None,
    output_size: str = "input",
    decide: bool = False,
) -> tuple[int, float, Any]:
    """Runs every readable image and writes its outputs; returns (images done, seconds
    of inference, the predictor or None). Unreadable files, and images whose network
    input would be too elongated or too large, are appended to ``failed``. With
    ``decide`` (``--engine-build auto``) the first image runs on what the cache has, and
    whether to build an engine for the rest is decided from its time."""
    predictor = None
    inference_s = 0.0
    done = 0
    for path, stem, rgb in _readable(paths, failed, max_pixels):
        if predictor is None:  # loaded once an image is known to be readable
            predictor = Predictor(options)
            _LOG.info("%s on %s (%s)", options.model_type, predictor.device, predictor.dtype)
        try:
            predictor.prepare(rgb.shape[:2])  # an engine for a new size: built once, untimed
            output_hw = predictor.input_size(rgb.shape[:2]) if output_size == "network" else None
        except ValueError as exc:  # a network input too elongated or too large: skipped
            _LOG.info("skipping %s: %s", _name(path), exc)
            failed.append(f"{_name(path.name)} ({exc})")
            continue
        start = time.perf_counter()
        k = None
        if camera_info is not None and predictor.spec.camera_requirement:
            k = camera_matrix_for(camera_info, rgb.shape[:2])
        found = predictor.infer(rgb[None], k, output_hw, fill_sky=True)
        seconds = time.perf_counter() - start
        inference_s += seconds
        if predictor.is_depth:
            depth = found.depth if predictor.is_metric else found.inverse_depth
            write_depth_outputs(out_dir, stem, depth[0], predictor.is_metric)
            for name in predictor.spec.maps:
                write_npy(out_dir / f"{stem}_{name}.npy", getattr(found, name)[0])
        else:
            write_label_outputs(out_dir, stem, found.labels[0], rgb)
        done += 1
        print(
            f"{_name(path.name)}: {rgb.shape[1]}x{rgb.shape[0]}, {seconds * 1000:.1f} ms",
            flush=True,
        )
        if decide:
            decide = False
            _choose_backend(predictor, rgb.shape[:2], len(paths) - done, seconds)
    return done, inference_s, predictor


def _choose_backend(predictor: Any, image_hw: Sequence[int], frames_left: int, torch_s: float):
    """``--backend auto`` with ``--engine-build auto``, after the first image: builds the
    engine of its shape when the build pays off over the frames left
    (:mod:`dpt_ros.runtime.build_choice`), and says what runs and why in one line."""
    runtime = predictor.runtime
    if not isinstance(runtime, CachedEngineRuntime):
        if predictor.options.backend == "auto":
            why = (
                "--compile asks for PyTorch"
                if predictor.options.compile != "none"
                else f"no engine runtime for {predictor.device} "
                f"{str(predictor.dtype).replace('torch.', '')} here"
            )
            say_backend(f"torch ({why})")
        return
    shape = (1, 3, *predictor.input_size(image_hw))
    if runtime.failure or runtime.has_engine(shape) or runtime.torch_faster:
        say_backend(runtime.status)  # a cached engine, or none to be had
        return
    if runtime.auto_build_refusal:
        say_backend(f"torch ({runtime.auto_build_refusal})")
        return
    model = runtime.model
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    build_s, share, measured = estimate_build(
        predictor.options.model_type,
        runtime.backend,
        params_m,
        torch_s,
        shape[2] * shape[3],
        engine_records(runtime.root),
    )
    choice = choose_build(frames_left, torch_s, build_s, share, measured)
    if not choice.build:
        say_backend(f"torch ({choice.reason(runtime.backend)})")
        return
    say_backend(f"{runtime.backend} ({choice.reason(runtime.backend)}); building it now")
    runtime.build_now(shape)
    if not runtime.has_engine(shape):
        say_backend(runtime.status)  # the build failed, or PyTorch was measured faster
