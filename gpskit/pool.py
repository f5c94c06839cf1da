"""A process pool that survives its tasks: a crash or a hang costs one task, not the run.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (a
segfault in a decoder, the kernel's OOM killer), and has no per-task time limit. Here
tasks go out in chunks and results come back one by one; the parent watches every
worker's pipe and process sentinel, and replaces a worker that died or ran past the
time limit, reporting that task as crashed or timed out.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")

CRASHED = "crashed"
TIMED_OUT = "timeout"


class WorkerStartError(RuntimeError):
    """Worker processes die before their first task: a broken environment, not a bad file."""


@dataclass
class Outcome(Generic[T]):
    """The result of one task: ``value`` when it returned, else ``failure`` says why."""

    index: int
    value: T | None
    failure: str | None = None
    detail: str | None = None


def _limit_memory(max_bytes: int | None) -> None:
    if not max_bytes or sys.platform != "linux":
        return
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def _worker_main(
    conn: Connection,
    func: Callable[..., Any],
    max_memory: int | None,
    initializer: Callable[[], None] | None,
) -> None:
    _limit_memory(max_memory)
    if initializer is not None:
        initializer()
    conn.send("ready")
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if chunk is None:
            return
        for index, args in chunk:
            result: tuple[int, Any, str | None]
            try:
                result = (index, func(*args), None)
            except MemoryError as exc:
                result = (index, None, f"MemoryError: {exc}")
            conn.send(result)


@dataclass
class _Slot:
    process: Any
    conn: Connection
    queue: deque[int] = field(default_factory=deque)  # indices sent, not yet answered
    last_progress: float = 0.0


def _context(preload: Sequence[str]) -> Any:
    # forkserver: fast starts without forking a parent that runs threads (rich's refresher);
    # modules preloaded in the server are imported once, not once per worker.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def run_isolated(
    func: Callable[..., T],
    tasks: Sequence[tuple[Any, ...]],
    *,
    workers: int | None = None,
    timeout: float | None = None,
    max_memory: int | None = None,
    initializer: Callable[[], None] | None = None,
    chunk_size: int | None = None,
    preload: Sequence[str] = (),
) -> Iterator[Outcome[T]]:
    """Run ``func(*args)`` for each args tuple in worker processes; yield outcomes as they end.

    ``func`` must be importable (a module-level function). An exception inside ``func`` is
    the caller's to catch (return an error value instead); a dead or hung worker yields an
    :class:`Outcome` with ``failure`` set to :data:`CRASHED` or :data:`TIMED_OUT` for the
    task it was on, and the rest of its chunk goes back to the queue. Tasks travel in
    chunks and results stream back one by one, so a worker never waits on the parent.
    ``timeout`` limits each task, not the chunk.
    """
    if not tasks:
        return
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    chunk = chunk_size or max(1, min(64, len(tasks) // (n_workers * 4)))
    ctx = _context(preload or [func.__module__])
    slots: list[_Slot] = []
    pending: deque[int] = deque(range(len(tasks)))

    def start() -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main, args=(child, func, max_memory, initializer), daemon=True
        )
        process.start()
        child.close()
        try:
            if not parent.poll(60) or parent.recv() != "ready":
                raise EOFError
        except (EOFError, OSError):
            process.kill()
            process.join()
            raise WorkerStartError(
                f"a worker process could not start (exit code {process.exitcode}); "
                "run from a script or module, not from standard input"
            ) from None
        return _Slot(process, parent)

    def feed(slot: _Slot) -> None:
        if slot.queue or not pending:
            return
        batch = [pending.popleft() for _ in range(min(chunk, len(pending)))]
        slot.queue.extend(batch)
        slot.last_progress = time.monotonic()
        slot.conn.send([(i, tasks[i]) for i in batch])

    def fail(slot: _Slot, failure: str, detail: str) -> Outcome[T]:
        """Replace the worker; its current task failed, the rest of its chunk is requeued."""
        culprit = slot.queue.popleft()
        pending.extendleft(reversed(slot.queue))
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        slots[slots.index(slot)] = fresh = start()
        feed(fresh)
        return Outcome(culprit, None, failure, detail)

    try:
        for _ in range(n_workers):
            slot = start()
            slots.append(slot)
            feed(slot)
        while any(s.queue for s in slots):
            busy = [s for s in slots if s.queue]
            wait_for = 0.5 if timeout is None else min(0.5, timeout)
            ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], wait_for)
            now = time.monotonic()
            for slot in busy:
                if slot.conn in ready:
                    try:
                        index, value, error = slot.conn.recv()
                    except (EOFError, OSError):
                        slot.process.join(1.0)
                        yield fail(slot, CRASHED, _exit_detail(slot.process.exitcode))
                        continue
                    slot.queue.remove(index)
                    slot.last_progress = now
                    if error is not None:
                        yield Outcome(index, None, CRASHED, error)
                    else:
                        yield Outcome(index, value)
                    feed(slot)
                elif slot.process.sentinel in ready or not slot.process.is_alive():
                    slot.process.join(1.0)
                    yield fail(slot, CRASHED, _exit_detail(slot.process.exitcode))
                elif timeout is not None and now - slot.last_progress > timeout:
                    yield fail(slot, TIMED_OUT, f"no result after {timeout:g} s")
    finally:
        for slot in slots:
            try:
                if slot.process.is_alive():
                    slot.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()


def _exit_detail(code: int | None) -> str:
    """Say how a worker ended: a negative exit code is the signal that killed it."""
    if code is not None and code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker killed by {name}"
    return f"worker exited with code {code}"
