"""A process pool that survives its tasks: a crash or a hang costs one task, not the run.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (a
segfault in a decoder, the kernel's OOM killer), and has no per-task time limit. Here
tasks go out in chunks and results come back one by one; the parent watches every
worker's pipe and process sentinel, and replaces a worker that died or ran past the
time limit, reporting that task as crashed or timed out.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Generic, TypeVar

from gpskit.errors import GpskitError

T = TypeVar("T")

CRASHED = "crashed"
TIMED_OUT = "timeout"


class WorkerStartError(GpskitError):
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


def quiet_stderr(log: str) -> None:
    """Send this process's stderr (file descriptor 2: C libraries too) to a log file.

    Decoders print to stderr from C (libtiff warns about ~1,000 odd tags on a real corpus);
    in a worker that output belongs in a log, not on the user's terminal.
    """
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError:
        return
    os.dup2(fd, 2)
    os.close(fd)


@contextlib.contextmanager
def output_to_log(log: Path) -> Iterator[list[str]]:
    """While inside, what decoders say goes to ``log``, not the terminal: Python warnings
    (Pillow warns once per odd tag, thousands on hostile photos) and C-level stderr
    (libtiff). Yields the list the Python warnings are counted into."""
    caught: list[str] = []
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)

    def record(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        text = f"{category.__name__}: {message} ({filename}:{lineno})\n"
        caught.append(text)
        os.write(2, text.encode("utf-8", "replace"))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = record
            yield caught
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _worker_main(
    conn: Connection,
    func: Callable[..., Any],
    max_memory: int | None,
    initializer: Callable[[], None] | None,
) -> None:
    # Ctrl-C is the parent's to handle (one line, workers stopped); a worker ignores it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(max_memory)
    if initializer is not None:
        initializer()
    try:
        conn.send("ready")
        _serve(conn, func)
    except (EOFError, OSError):
        return  # the parent is gone (killed, or closed the pipe): stop quietly


def _serve(conn: Connection, func: Callable[..., Any]) -> None:
    while (chunk := conn.recv()) is not None:
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


#: Thread pools of numeric libraries held to one thread in workers: each worker is already
#: one of as many processes as cores, and a small matrix product that wakes a thread per
#: core in every worker was measured 5x slower than on one (ingest's hashes).
_ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _workers_environment() -> Iterator[None]:
    """The environment worker processes start with (a setting the user made is kept)."""
    added = [name for name in _ONE_THREAD if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _context(preload: Sequence[str]) -> Any:
    # forkserver: fast starts without forking a parent that runs threads (rich's refresher);
    # modules preloaded in the server are imported once, not once per worker.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


class _Pool:
    """Worker processes, each fed chunks of task indices and watched for death and hangs."""

    def __init__(
        self,
        func: Callable[..., Any],
        tasks: Sequence[tuple[Any, ...]],
        *,
        workers: int,
        chunk: int,
        timeout: float | None,
        max_memory: int | None,
        initializer: Callable[[], None] | None,
        preload: Sequence[str],
    ) -> None:
        self.func, self.tasks, self.chunk, self.timeout = func, tasks, chunk, timeout
        self.max_memory, self.initializer = max_memory, initializer
        self.ctx = _context(preload or [func.__module__])
        self.pending: deque[int] = deque(range(len(tasks)))
        self.slots: list[_Slot] = []
        self.workers = workers

    def start(self) -> _Slot:
        """A fresh worker that has said it is ready (else :class:`WorkerStartError`)."""
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(
            target=_worker_main,
            args=(child, self.func, self.max_memory, self.initializer),
            daemon=True,
        )
        with _workers_environment():
            process.start()
        child.close()
        try:
            if not parent.poll(60) or parent.recv() != "ready":
                raise EOFError
        except (EOFError, OSError):
            process.kill()
            process.join()
            raise WorkerStartError(
                f"a worker process could not start (exit code {process.exitcode})",
                hint=(
                    "run gpskit from a script or module, not standard input; a script "
                    'must start the work under `if __name__ == "__main__":`'
                ),
            ) from None
        return _Slot(process, parent)

    def feed(self, slot: _Slot) -> None:
        """Send the next chunk to an idle worker."""
        if slot.queue or not self.pending:
            return
        batch = [self.pending.popleft() for _ in range(min(self.chunk, len(self.pending)))]
        slot.queue.extend(batch)
        slot.last_progress = time.monotonic()
        slot.conn.send([(i, self.tasks[i]) for i in batch])

    def fail(self, slot: _Slot, failure: str, detail: str) -> Outcome[Any]:
        """Replace the worker; its current task failed, the rest of its chunk is requeued."""
        culprit = slot.queue.popleft()
        self.pending.extendleft(reversed(slot.queue))
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join()
        slot.conn.close()
        self.slots[self.slots.index(slot)] = fresh = self.start()
        self.feed(fresh)
        return Outcome(culprit, None, failure, detail)

    def receive(self, slot: _Slot, now: float) -> Outcome[Any]:
        """The next result of a worker whose pipe is readable."""
        try:
            index, value, error = slot.conn.recv()
        except (EOFError, OSError):
            slot.process.join(1.0)
            return self.fail(slot, CRASHED, _exit_detail(slot.process.exitcode))
        slot.queue.remove(index)
        slot.last_progress = now
        self.feed(slot)
        if error is not None:
            return Outcome(index, None, CRASHED, error)
        return Outcome(index, value)

    def outcomes(self) -> Iterator[Outcome[Any]]:
        """Start the workers and yield every task's outcome as it ends."""
        for _ in range(self.workers):
            slot = self.start()
            self.slots.append(slot)
            self.feed(slot)
        while any(s.queue for s in self.slots):
            busy = [s for s in self.slots if s.queue]
            wait_for = 0.5 if self.timeout is None else min(0.5, self.timeout)
            ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], wait_for)
            now = time.monotonic()
            for slot in busy:
                if slot.conn in ready:
                    yield self.receive(slot, now)
                elif slot.process.sentinel in ready or not slot.process.is_alive():
                    slot.process.join(1.0)
                    yield self.fail(slot, CRASHED, _exit_detail(slot.process.exitcode))
                elif self.timeout is not None and now - slot.last_progress > self.timeout:
                    yield self.fail(slot, TIMED_OUT, f"no result after {self.timeout:g} s")

    def close(self) -> None:
        """Ask every worker to stop; kill those that do not within 2 s."""
        for slot in self.slots:
            try:
                if slot.process.is_alive():
                    slot.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for slot in self.slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()


def start_forkserver(preload: Sequence[str]) -> None:
    """Start the process that workers fork from now, importing ``preload``, so that its
    start-up overlaps the caller's own work (scanning, reading the old manifest)."""
    if "forkserver" not in mp.get_all_start_methods():
        return
    from multiprocessing import forkserver

    _context(preload)
    with _workers_environment():
        forkserver.ensure_running()


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
    pool = _Pool(
        func,
        tasks,
        workers=n_workers,
        chunk=chunk,
        timeout=timeout,
        max_memory=max_memory,
        initializer=initializer,
        preload=preload,
    )
    try:
        yield from pool.outcomes()
    finally:
        pool.close()


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
