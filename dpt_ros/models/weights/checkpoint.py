"""Loading weight files safely, with errors a user can act on.

Weight files are read with ``torch.load(..., weights_only=True)``: a weights file
never executes code. The state_dict keys are the official ones, matched strictly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from dpt_ros.models.errors import CheckpointError, RandomWeightsWarning
from dpt_ros.models.network.build import build_network
from dpt_ros.models.registry import FAMILIES, MODEL_SPECS, ModelFamily, ModelSpec, get_spec
from dpt_ros.models.weights.download import default_cache_dir, ensure_checkpoint
from dpt_ros.models.weights.hub import hub_checkpoint
from dpt_ros.models.weights.layout import (
    dtype_problem,
    expected_layout,
    identify_model_types,
    layout_differences,
)
from dpt_ros.models.weights.safetensors_header import header_problem
from dpt_ros.models.weights.transformers_format import read_config, read_transformers_folder
from dpt_ros.models.weights.verify import verify_weights

_LOG = logging.getLogger(__name__)

PathLike = str | os.PathLike


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Reads a checkpoint file into a flat state_dict of tensors.

    Accepts a bare state_dict, one nested under ``"model"`` or ``"state_dict"``
    (training checkpoints), and strips a DataParallel ``module.`` prefix.

    Raises:
        CheckpointError: the file is missing, is not a PyTorch weights file, or holds
            no tensors.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"weights path is not a file: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        raise CheckpointError(
            f"{path} is not a readable PyTorch weights file ({_load_failure(exc)}); "
            "expected a .pt file saved with torch.save, such as the official DPT checkpoints"
        ) from None
    for nest in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(nest), Mapping):
            obj = obj[nest]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} holds no state_dict (found {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _load_failure(exc: Exception) -> str:
    """Why torch.load failed, in one line.

    The weights-only unpickler's message starts with advice to retry with
    ``weights_only=False``, which would run whatever code the file holds; quote its
    reason instead (e.g. ``Trying to load unsupported GLOBAL posix.system ...``).
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        reasons = [line for line in lines[1:] if not line.startswith(("Please file", "Check the"))]
        return "refused by the safe weights-only loader: " + (
            reasons[0] if reasons else "the file holds more than tensors"
        )
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def check_state_dict(
    state_dict: Mapping[str, torch.Tensor], spec: ModelSpec, source: str = "checkpoint"
) -> None:
    """Raises CheckpointError unless ``state_dict`` has exactly the layout of ``spec``.

    The message says which model type the checkpoint looks like, and summarises the
    missing, unexpected and mis-shaped keys by group instead of listing hundreds.
    """
    expected = dict(expected_layout(spec.name))
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    differences = layout_differences(expected, got)
    if not differences:
        return
    like = identify_model_types(state_dict)
    unsupported = next(filter(None, (f.unsupported_kind(got) for f in FAMILIES)), None)
    if unsupported:
        raise CheckpointError(
            f"{source} is a {unsupported} checkpoint, not {spec.name}: dpt_ros does not "
            "run that type; use the file of the model type you configured"
        )
    holder = _other_family(got, spec)
    if like:
        lead = f"{source} is a {' / '.join(like)} checkpoint, not {spec.name}"
        if holder is not None:
            lead += f" (it holds {_holds(holder)})"
        lead += f"; use --model-type {like[0]} (or the matching parameter), or the right file"
    elif holder is not None:
        types = [name for name, s in MODEL_SPECS.items() if s.family is holder]
        use = types[0] if len(types) == 1 else f"one of {', '.join(types)}"
        lead = (
            f"{source} holds {_holds(holder)}, not {spec.name}'s: use --model-type {use} "
            "(or the matching parameter), or the right file; it matches none of them "
            "exactly"
        )
    else:
        lead = f"{source} does not match the {spec.name} layout"
    raise CheckpointError(f"{lead} ({differences})")


def _other_family(keys: Mapping[str, object], spec: ModelSpec) -> ModelFamily | None:
    """The family other than ``spec``'s whose key markers the file has, or None."""
    if spec.family.holds_weights(keys):
        return None
    return next((f for f in FAMILIES if f is not spec.family and f.holds_weights(keys)), None)


def _holds(family: ModelFamily) -> str:
    """``VGGT weights (aggregator.*, camera_head.*)``."""
    return f"{family.title} weights ({', '.join(m + '*' for m in family.weight_markers)})"


def resolve_weights(
    spec: ModelSpec,
    weights: PathLike | None = None,
    cache_dir: PathLike | None = None,
    progress: bool = True,
) -> Path:
    """The weights file to load: ``weights`` if given, else the cached or downloaded official file."""
    if weights:
        return Path(weights).expanduser()
    if spec.hub_repo:
        # Depth Anything 3's files all have one name: each is kept in its own folder.
        base = Path(cache_dir) if cache_dir else None
        if spec.cache_subdir:
            base = (base or default_cache_dir()) / spec.cache_subdir
        return hub_checkpoint(spec.hub_repo, spec.file_name, base, progress)
    return ensure_checkpoint(
        spec.file_name,
        spec.url,
        spec.hash_prefix,
        Path(cache_dir) if cache_dir else None,
        progress=progress,
    )


_QUIET = threading.local()


@contextlib.contextmanager
def random_weights_already_announced() -> Iterator[None]:
    """Within it, on this thread, :func:`load_model` builds random weights without its
    warning: for a second load of a model whose random weights were announced once
    already (an engine exported in the background)."""
    before = getattr(_QUIET, "random_weights", False)
    _QUIET.random_weights = True
    try:
        yield
    finally:
        _QUIET.random_weights = before


def _read_weights(path: Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state_dict of a weights file (PyTorch or safetensors), of a hub folder
    (config.json + the official file, for the types whose files come so), or of a folder
    written by transformers' save_pretrained, converted to the official layout. Each
    family's file conventions become the official layout (:func:`file_keys`)."""
    if path.is_dir() and spec.hub_model_name:
        return file_keys(read_hub_folder(path, spec))
    if path.is_dir():
        return read_transformers_folder(path, spec)
    if path.suffix == ".safetensors":
        return file_keys(read_safetensors_file(path))
    return file_keys(read_state_dict(path))


def file_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A file's state_dict through every family's
    :meth:`~dpt_ros.models.family.ModelFamily.file_keys` (a bare Depth Anything 3
    state_dict gets the hub's ``model.`` prefix), so that it is checked against the
    official layouts and a file of another family is named."""
    state = dict(state_dict)
    for family in FAMILIES:
        state = family.file_keys(state)
    return state


def read_safetensors_file(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file (no pickle)."""
    # start-up: safetensors loads only for a safetensors file
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    problem = header_problem(path)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    try:
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors")
    return tensors


def read_hub_folder(folder: Path, spec: ModelSpec) -> dict[str, torch.Tensor]:
    """A hub folder: ``config.json`` whose ``model_name`` must be ``spec``'s
    ``hub_model_name`` (``da3-small`` ...), and the official file (``model.safetensors``)."""
    config = read_config(folder)
    name = config.get("model_name")
    if name != spec.hub_model_name:
        raise CheckpointError(
            f"{folder}/config.json names model {name!r}, not {spec.hub_model_name!r} "
            f"({spec.name}); use the {spec.hub_repo} files or the matching model type"
        )
    return read_safetensors_file(folder / spec.file_name)


#: The former name of :func:`read_hub_folder`.
read_da3_folder = read_hub_folder


def load_model(
    model_type: str,
    weights: PathLike | None = None,
    *,
    random_weights: bool = False,
    cache_dir: PathLike | None = None,
    progress: bool = True,
) -> nn.Module:
    """Builds ``model_type`` and loads its weights, strictly.

    Args:
        model_type: a registry name (``dpt_hybrid`` ...).
        weights: path of a weights file, or of a folder in transformers' format
            (``save_pretrained``: config.json + model.safetensors); None looks in the cache
            (``$DPT_ROS_CACHE`` or ``~/.cache/dpt_ros``) and downloads the official file there.
        random_weights: explicitly use random (seeded, reproducible) weights instead of a
            file, for benchmarks and demos; logs a warning. Never a silent fallback.
        cache_dir: overrides the cache directory.
        progress: show a download progress bar.

    Returns:
        The model in eval mode, on the CPU, float32.

    Raises:
        ValueError: unknown model type, or both ``weights`` and ``random_weights``.
        CheckpointError: the weights are missing, unreadable, for another model, or hold
            a tensor of another kind than the network's (an int8 weight).
    """
    spec = get_spec(model_type)
    if random_weights:
        if weights:
            raise ValueError("give either a weights file or random_weights, not both")
        msg = (
            f"{model_type}: using RANDOM weights (explicitly requested); outputs are "
            "meaningless except for timing and plumbing"
        )
        if not getattr(_QUIET, "random_weights", False):
            _LOG.warning(msg)
            warnings.warn(msg, RandomWeightsWarning, stacklevel=2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_network(spec)
    path = resolve_weights(spec, weights, cache_dir, progress)
    state_dict = _read_weights(path, spec)
    check_state_dict(state_dict, spec, source=str(path))
    with torch.device("meta"):
        model = build_network(spec)
    problem = dtype_problem(state_dict, model.state_dict())
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    verify_weights(path, spec, state_dict, cache_dir)  # contents: sha256 of official files
    # assign=True takes the file's tensors as the parameters: no second copy, no init.
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.float().eval()
