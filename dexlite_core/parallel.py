"""Map a function over work items on local processes or a Ray cluster, results in input order.

Workers are started with ``spawn`` so they share no state with the parent: no OpenMP pool of
a native library (point-cloud-utils brings its own) ends up spinning beside torch's threads.
They do not re-run the caller's script, so a plain script calling the library needs no
``if __name__ == "__main__":`` guard.
Results are identical whichever executor runs them, as long as ``fn`` is deterministic in its
arguments (seed from the item, never from the worker).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("process", "ray", "inline")


@dataclass(frozen=True)
class ParallelConfig:
    executor: str = "process"  #: process | ray | inline (in this process, for debugging)
    n_workers: int = 2  #: local processes, or Ray tasks in flight
    ray_address: str | None = None  #: None starts a local Ray instance; "auto" joins a running cluster

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got {self.n_workers}")


def _limit_threads() -> None:
    # One worker per core: keep each worker's math libraries single-threaded.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], config: ParallelConfig = ParallelConfig(),
                 desc: str | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on the configured executor, with a progress bar."""
    items = list(items)
    if not items:
        return []
    if config.executor == "inline":
        return [fn(x) for x in tqdm(items, desc=desc, disable=desc is None)]
    if config.executor == "ray":
        return _ray_map(fn, items, config, desc)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(config.n_workers, len(items)), mp_context=ctx,
                             initializer=_limit_threads) as pool:
        with _main_script_hidden(fn):  # map submits every item now: the workers start inside
            results = pool.map(fn, items)
        return list(tqdm(results, total=len(items), desc=desc, disable=desc is None))


@contextmanager
def _main_script_hidden(fn: Callable):
    """Start spawned workers without the parent's main script. ``spawn`` imports it in every worker,
    in case ``fn`` lives there; a script without a ``__main__`` guard would then run again in each
    worker and fail. The library's callables live in its modules, so the workers do not need it."""
    main = sys.modules["__main__"]
    hidden = {k: getattr(main, k) for k in ("__file__", "__spec__") if getattr(main, k, None) is not None}
    if getattr(fn, "__module__", None) == "__main__" or type(fn).__module__ == "__main__" or not hidden:
        yield
        return
    for key in hidden:
        setattr(main, key, None) if key == "__spec__" else delattr(main, key)
    try:
        yield
    finally:
        for key, value in hidden.items():
            setattr(main, key, value)


def _ray_map(fn: Callable[[T], R], items: list[T], config: ParallelConfig, desc: str | None) -> list[R]:
    try:
        import ray
    except ImportError as exc:  # optional dependency
        raise RuntimeError("executor 'ray' needs Ray: pip install 'dexlite[ray]'") from exc
    started = not ray.is_initialized()
    if started:
        ray.init(address=config.ray_address, num_cpus=None if config.ray_address else config.n_workers,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1)(_call)
        refs = [remote.remote(fn, x) for x in items]
        out: list[R] = []
        for ref in tqdm(refs, desc=desc, disable=desc is None):
            out.append(ray.get(ref))
        return out
    finally:
        if started:
            ray.shutdown()


def _call(fn: Callable[[T], R], x: T) -> R:
    _limit_threads()
    return fn(x)


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Split ``items`` into consecutive lists of at most ``size``."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def flatten(groups: Iterable[Iterable[T]]) -> list[T]:
    return [x for g in groups for x in g]
