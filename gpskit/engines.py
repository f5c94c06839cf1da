"""Where per-file work runs: gpskit's own process pool, or a Ray cluster.

``local`` (the default) is :func:`gpskit.pool.run_isolated`: worker processes on this
machine, no dependency. ``ray`` runs the same function on Ray (``pip install
'gpskit[ray]'``): a local instance started for the run, or an existing cluster at
``--ray-address``. Both give the same guarantees, so a run gives the same rows on either:

- a file that kills its worker (a decoder segfault, the OOM killer) is one ``crashed``
  outcome, and the rest of its chunk is sent again;
- a file with no result within ``timeout`` seconds is one ``timeout`` outcome.

Ray Data is built for whole-dataset transforms, where a failure retries or aborts a whole
block and a hang stalls the job; gpskit needs per-file outcomes, so it uses Ray's
streaming generator tasks directly: each task reads a chunk of files in order and yields
one result per file, so the driver always knows which file a dead or silent task was on.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from gpskit.errors import InputError, require_module

if TYPE_CHECKING:  # the pool (multiprocessing) loads when files are read, not at start
    from gpskit.pool import Outcome

#: Seconds a chunk may take to produce its first result beyond ``timeout`` (a Ray worker
#: starting and importing the reader).
STARTUP_GRACE_S = 15.0


class Engine(str, Enum):
    """Where per-file work runs (see the module docstring)."""

    LOCAL = "local"
    RAY = "ray"


ENGINES = tuple(e.value for e in Engine)


@dataclass(frozen=True)
class EngineOptions:
    """Which engine, and the Ray cluster to use (None: start a local one)."""

    engine: str = Engine.LOCAL.value
    ray_address: str | None = None

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.ray_address and self.engine != Engine.RAY.value:
            raise InputError("--ray-address needs --engine ray")


def map_isolated(
    func: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    engine: EngineOptions | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    max_memory: int | None = None,
    initializer: Callable[[], None] | None = None,
) -> Iterator[Outcome[Any]]:
    """``func(*args)`` for every task on the chosen engine; outcomes as they end."""
    from gpskit.pool import run_isolated

    engine = engine or EngineOptions()
    if engine.engine == Engine.LOCAL.value:
        yield from run_isolated(
            func,
            tasks,
            workers=workers,
            timeout=timeout,
            max_memory=max_memory,
            initializer=initializer,
        )
        return
    yield from run_on_ray(
        func,
        tasks,
        address=engine.ray_address,
        workers=workers,
        timeout=timeout,
        initializer=initializer,
    )


def require_ray() -> Any:
    """The ``ray`` module, or one clear line on how to install it."""
    return require_module("ray", "--engine ray needs Ray", "gpskit[ray]")


def connect(address: str | None) -> Any:
    """Ray, initialised: the cluster at ``address``, or a local instance for this run."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except ConnectionError as exc:
        raise InputError(
            f"--ray-address {address}: cannot reach a Ray cluster ({exc})",
            hint="check the address (ray://HOST:10001 or auto), or leave it out to start "
            "a local Ray instance",
        ) from None
    return ray


_STARTED: set[str] = set()  # initializers already run in this Ray worker process


def _chunk_results(
    job: tuple[Callable[..., Any], Callable[[], None] | None],
    token: str,
    chunk: list[tuple[int, tuple[Any, ...]]],
) -> Iterator[tuple[int, Any, str | None]]:
    """In a Ray worker: run the initializer once per process, then each task in order."""
    func, initializer = job
    if initializer is not None and token not in _STARTED:
        initializer()
        _STARTED.add(token)
    for index, args in chunk:
        try:
            yield index, func(*args), None
        except MemoryError as exc:  # the same report as the local pool's
            yield index, None, f"MemoryError: {exc}"


@dataclass
class _Running:
    """One chunk in flight: its generator and the task indices still unanswered."""

    stream: Any
    waiting: deque[int]
    deadline: float
    started: float = field(default_factory=time.monotonic)


def run_on_ray(
    func: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    address: str | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    initializer: Callable[[], None] | None = None,
) -> Iterator[Outcome[Any]]:
    """:func:`map_isolated` on Ray (see the module docstring for the guarantees)."""
    from gpskit.pool import TIMED_OUT

    if not tasks:
        return
    ray = connect(address)
    remote = ray.remote(num_returns="streaming", max_retries=0, num_cpus=1)(_chunk_results)
    slots = max(1, workers or int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))
    size = max(1, min(64, len(tasks) // (slots * 4)))
    pending: deque[int] = deque(range(len(tasks)))
    token = uuid.uuid4().hex
    shared = ray.put((func, initializer))
    running: list[_Running] = []

    def submit() -> None:
        while pending and len(running) < slots:
            chunk = [pending.popleft() for _ in range(min(size, len(pending)))]
            stream = remote.remote(shared, token, [(i, tasks[i]) for i in chunk])
            limit = (timeout or float("inf")) + STARTUP_GRACE_S
            running.append(_Running(stream, deque(chunk), time.monotonic() + limit))

    try:
        submit()
        while running:
            ready, _ = ray.wait([r.stream for r in running], num_returns=1, timeout=0.5)
            for run in [r for r in running if r.stream in ready]:
                yield from _advance(ray, run, running, pending, timeout)
            now = time.monotonic()
            for run in [r for r in running if now > r.deadline]:
                ray.cancel(run.stream, force=True)
                yield _give_up(run, running, pending, TIMED_OUT, f"no result after {timeout:g} s")
            submit()
    finally:
        for run in running:
            ray.cancel(run.stream, force=True)


def _advance(
    ray: Any, run: _Running, running: list[_Running], pending: deque[int], timeout: float | None
) -> Iterator[Outcome[Any]]:
    """The next result of a chunk whose stream is ready (or its end, or its failure)."""
    from gpskit.pool import CRASHED, Outcome

    try:
        ref = next(run.stream)
    except StopIteration:
        running.remove(run)
        return
    try:
        index, value, error = ray.get(ref)
    except ray.exceptions.RayError as exc:
        yield _give_up(run, running, pending, CRASHED, _ray_detail(ray, exc))
        return
    run.waiting.remove(index)
    run.deadline = time.monotonic() + (timeout or float("inf"))
    yield Outcome(index, None, CRASHED, error) if error else Outcome(index, value)


def _give_up(
    run: _Running, running: list[_Running], pending: deque[int], failure: str, detail: str
) -> Outcome[Any]:
    """The chunk's current task failed; the rest of the chunk goes back to the queue."""
    from gpskit.pool import Outcome

    running.remove(run)
    culprit = run.waiting.popleft()
    pending.extendleft(reversed(run.waiting))
    return Outcome(culprit, None, failure, detail)


def _ray_detail(ray: Any, exc: Exception) -> str:
    """What killed a task, in one line."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause
        return f"{type(cause).__name__}: {cause}" if cause is not None else "task failed"
    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        return "worker killed by Ray's memory monitor (out of memory)"
    return "worker died (killed or crashed)"
