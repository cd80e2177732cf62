"""The runtime that a :class:`~dpt_ros.models.options.PredictorOptions` asks for: the
torch model, an exported engine file, or engines built and cached on first use.

It sits above both :mod:`~dpt_ros.runtime.runtimes` (the runtimes themselves) and
:mod:`~dpt_ros.runtime.engine_cache` (which builds engines with
:mod:`~dpt_ros.runtime.export`, which runs them with the runtimes), so that none of
them imports another in a circle.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dpt_ros.models.options import PredictorOptions
from dpt_ros.models.weights.checkpoint import load_model, random_weights_already_announced
from dpt_ros.runtime.engine_cache import CachedEngineRuntime, resolve_backend
from dpt_ros.runtime.runtimes import EngineRuntime, PathLike, Runtime, TorchRuntime, load_backend


def create_runtime(
    options: PredictorOptions,
    device: torch.device,
    dtype: torch.dtype,
    *,
    cache_dir: PathLike | None = None,
    progress: bool = True,
) -> Runtime:
    """The runtime that ``options`` ask for, loaded on ``device``.

    ``auto`` resolves by :func:`~dpt_ros.runtime.engine_cache.resolve_backend`; an engine
    backend without an engine file gets a
    :class:`~dpt_ros.runtime.engine_cache.CachedEngineRuntime` (engines built once per
    input shape and kept in the cache).

    Returns:
        A :class:`~dpt_ros.runtime.runtimes.Runtime`: :class:`TorchRuntime`,
        :class:`EngineRuntime` or ``CachedEngineRuntime``.

    Raises:
        CheckpointError: the torch backend's weights cannot be had or do not fit.
        FileNotFoundError, ValueError: see :func:`load_backend`.
    """
    backend = resolve_backend(options, device, dtype)
    if backend != "torch" and options.engine:
        engine = load_backend(backend, options.engine, options.model_type, device)
        return EngineRuntime(engine, backend)

    def load_torch() -> TorchRuntime:
        model = load_model(
            options.model_type,
            options.weights,
            random_weights=options.random_weights,
            cache_dir=cache_dir,
            progress=progress,
        ).to(device)
        return TorchRuntime(model, dtype, options.compile, options.channels_last)

    torch_runtime = load_torch()
    if backend == "torch":
        return torch_runtime
    # Loaded again only if its engines need a fallback; a second load of random weights
    # is not announced again.
    return CachedEngineRuntime(
        backend, options, torch_runtime, dtype, cache_dir, torch_loader=_quietly(load_torch)
    )


def _quietly(load: Callable[[], TorchRuntime]) -> Callable[[], TorchRuntime]:
    def again() -> TorchRuntime:
        with random_weights_already_announced():
            return load()

    return again
