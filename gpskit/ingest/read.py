"""Reading the planned files in isolated workers, one manifest row per file."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, overload

from gpskit import checks, storage
from gpskit.engines import map_isolated
from gpskit.errors import EnvironmentProblem
from gpskit.extsort import RunFile
from gpskit.ingest.find import FileRef, Roots, file_refs, not_read_because
from gpskit.ingest.options import IngestOptions
from gpskit.ingest.plan import Plan
from gpskit.ingest.rows import failure_row, manifest_row
from gpskit.pool import TIMED_OUT
from gpskit.reader import WorkerInit, read_file


class _ReadTasks(Sequence[tuple[str, bool, int]]):
    """The reader's arguments for each file to read, made from the spilled list of files
    when a worker asks for them (a million tuples made up front would be a few hundred MB)."""

    def __init__(self, files: RunFile, roots: Roots, options: IngestOptions):
        self.files, self.roots, self.options = files, roots, options
        self._batches: dict[int, list[FileRef]] = {}  # a few, by number: asked in rough order

    def __len__(self) -> int:
        return len(self.files)

    def ref(self, index: int) -> FileRef:
        number, offset = self.files.locate(index)
        refs = self._batches.get(number)
        if refs is None:
            if len(self._batches) >= 4:
                del self._batches[next(iter(self._batches))]
            refs = self._batches[number] = list(file_refs(self.files.batch(number), self.roots))
        return refs[offset]

    @overload
    def __getitem__(self, index: int) -> tuple[str, bool, int]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, bool, int]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> tuple[str, bool, int] | list[tuple[str, bool, int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return (self.ref(index).absolute, self.options.decode, self.options.max_pixels)


class StoreWatch:
    """Stops a run whose object store has gone away: after :attr:`LIMIT` files in a row
    that could not be reached, one line, not hours of retries journaling every object as
    unreadable (the rows read so far are journaled: the next run resumes)."""

    LIMIT = 5
    _GONE = re.compile(
        r"^(ConnectionError|ConnectionRefusedError|ConnectionResetError|EndpointConnectionError"
        r"|ConnectTimeoutError|ClientConnectorError|ServerDisconnectedError|ClientOSError)"
    )

    def __init__(self) -> None:
        self.in_a_row = 0

    def saw(self, location: str, extracted: dict[str, Any]) -> None:
        if not storage.is_url(location):
            return  # local files say nothing of the store
        error = str(extracted.get("error") or "")
        self.in_a_row = self.in_a_row + 1 if self._GONE.match(error) else 0
        if self.in_a_row >= self.LIMIT:
            raise EnvironmentProblem(
                f"the object store stopped answering: {self.LIMIT} files in a row could not be "
                f"reached (last: {location}: {error[:160]})",
                hint="check the endpoint and the network, then run ingest again: it resumes "
                "where it stopped",
            )


def read_files(
    plan: Plan,
    roots: Roots,
    options: IngestOptions,
    sink: Callable[[dict[str, Any]], None],
    log: Path | None,
) -> None:
    """Read the files the plan lists in isolated workers; hand each row to ``sink``. A
    file whose name is not UTF-8, or that is not a regular file, is not read: its row says
    why."""
    for batch in plan.unnamed.batches():
        for ref in file_refs(batch, roots):
            why = not_read_because(ref.absolute)
            sink(manifest_row(ref, failure_row(checks.READ_UNREADABLE, why)))
    tasks = _ReadTasks(plan.to_read, roots, options)
    store = StoreWatch()
    for outcome in map_isolated(
        read_file,
        tasks,
        engine=options.engine,
        workers=options.workers,
        timeout=options.timeout,
        max_memory=options.max_memory,
        initializer=WorkerInit(options.max_pixels, str(log) if log else None),
    ):
        if outcome.failure is None:
            assert outcome.value is not None
            extracted = outcome.value
        else:
            crashed = outcome.failure != TIMED_OUT
            status = checks.READ_WORKER_CRASHED if crashed else checks.READ_TIMEOUT
            extracted = failure_row(status, outcome.detail)
        ref = tasks.ref(outcome.index)
        sink(manifest_row(ref, extracted))
        store.saw(ref.absolute, extracted)
