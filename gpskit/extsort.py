"""Sorting more rows than memory holds: sorted runs spilled to disk, then merged.

A :class:`RunSorter` takes Arrow tables that carry a string ``key`` column. It holds up to
``run_rows`` rows, then sorts them and writes them to an Arrow IPC file (a *run*);
:meth:`RunSorter.merged` reads every run a batch at a time and yields all the rows in key
order. Memory holds the run being filled plus one batch per run, whatever the number of
rows, as ``sort -S`` or a database's spilling sort do: what lets ``gpskit ingest`` match
and order the keys of 100M files on a machine that could not hold them.

Keys compare as strings (UTF-8 bytes, the order Arrow and Python share). :func:`sort_key`
makes one from a (root, path) pair that sorts exactly as the pair does.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEY = "key"

#: Rows per batch of a spilled file: what a merge holds per run.
SPILL_BATCH = 4096

_names = itertools.count()


def sort_key(roots: pa.Array | pa.ChunkedArray, paths: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``root + NUL + path``: sorts as the pair (root, path) does, since no root holds a NUL
    (a root that is a prefix of another ends at the NUL, which sorts before any character)."""
    joined = pc.binary_join_element_wise(roots, paths, "\x00")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def sorted_unique(table: pa.Table, newest: str | None = None) -> pa.Table:
    """``table`` sorted by key, one row per key: the one with the largest ``newest`` value
    (any one, without ``newest``)."""
    keys = [(KEY, "ascending")] + ([(newest, "descending")] if newest else [])
    table = table.take(pc.sort_indices(table, sort_keys=keys)).combine_chunks()
    if table.num_rows > 1:
        key = table[KEY]
        repeated = pc.equal(key.slice(1), key.slice(0, len(key) - 1))
        keep = np.append(True, ~repeated.to_numpy(zero_copy_only=False))
        if not keep.all():
            table = table.filter(pa.array(keep))
    return table


class RunSorter:
    """Rows added in any order, given back sorted by key with one row per key (see
    :func:`sorted_unique`), holding at most ``run_rows`` of them in memory."""

    def __init__(
        self, folder: Path, schema: pa.Schema, *, run_rows: int, newest: str | None = None
    ) -> None:
        self.folder, self.schema, self.newest = folder, schema, newest
        self.run_rows = max(1, run_rows)
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.runs: list[Path] = []

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.pending.append(table.select(self.schema.names))
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.run_rows:
            self._spill()

    def _take_pending(self) -> pa.Table:
        table = pa.concat_tables(self.pending) if self.pending else self.schema.empty_table()
        self.pending, self.pending_rows = [], 0
        return sorted_unique(table, self.newest)

    def _spill(self) -> None:
        with RunWriter(self.folder, self.schema) as out:
            out.write(self._take_pending())
        self.runs.append(out.path)

    def merged(self) -> Iterator[pa.Table]:
        """Every row added, in key order, in tables of at most about ``SPILL_BATCH`` rows
        per run (the rows still in memory are one more run). Once."""
        streams: list[Iterable[pa.Table]] = [RunFile(path).batches() for path in self.runs]
        if self.pending:
            last = self._take_pending()
            streams.append(last.slice(i, SPILL_BATCH) for i in range(0, last.num_rows, SPILL_BATCH))
        yield from merge(streams, self.newest)


class RunWriter:
    """Tables already in key order (or any order a reader wants back) written to one
    Arrow IPC file in batches of exactly ``SPILL_BATCH`` rows (the last one shorter), so a
    reader finds row ``i`` in batch ``i // SPILL_BATCH``."""

    def __init__(self, folder: Path, schema: pa.Schema) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"run-{next(_names):06d}.arrow"
        self.schema = schema
        self.rows = 0
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = pa.ipc.new_file(self._sink, schema)
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self._buffer.append(table.select(self.schema.names))
        self._buffered += table.num_rows
        if self._buffered >= SPILL_BATCH:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        table = pa.concat_tables(self._buffer).combine_chunks() if self._buffer else None
        self._buffer, self._buffered = [], 0
        if table is None:
            return
        whole = table.num_rows if final else table.num_rows // SPILL_BATCH * SPILL_BATCH
        if whole:
            self._writer.write_table(table.slice(0, whole), max_chunksize=SPILL_BATCH)
            self.rows += whole
        if whole < table.num_rows:
            self._buffer, self._buffered = [table.slice(whole)], table.num_rows - whole

    def close(self) -> None:
        self._flush(final=True)
        self._writer.close()
        self._sink.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunFile:
    """A file written by :class:`RunWriter`: read in order, or a batch at a time by
    number (row ``i`` is in batch ``i // SPILL_BATCH``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = pa.OSFile(str(path), "rb")
        self._reader = pa.ipc.open_file(self._file)
        batches = self._reader.num_record_batches
        last = self._reader.get_record_batch(batches - 1).num_rows if batches else 0
        self.rows = int(max(batches - 1, 0) * SPILL_BATCH + last)

    def __len__(self) -> int:
        return self.rows

    def locate(self, row: int) -> tuple[int, int]:
        """The number of the batch that holds ``row``, and the row's place in it."""
        return divmod(row, SPILL_BATCH)

    def batch(self, number: int) -> pa.Table:
        return pa.Table.from_batches([self._reader.get_record_batch(number)])

    def batches(self) -> Iterator[pa.Table]:
        for number in range(self._reader.num_record_batches):
            yield self.batch(number)


@dataclass
class _Head:
    """The batch a stream is at, its keys as Python strings (for bisection), and how far
    into it the merge has come."""

    stream: Iterator[pa.Table]
    table: pa.Table
    keys: list[str]
    offset: int = 0


def _advance(stream: Iterator[pa.Table]) -> _Head | None:
    for table in stream:
        if table.num_rows:
            return _Head(stream, table, table[KEY].to_pylist())
    return None


def aligned(streams: Iterable[Iterable[pa.Table]]) -> Iterator[list[pa.Table | None]]:
    """Streams each sorted by key, cut at the same keys: each step gives every stream's
    rows up to one key (the smallest last key among the batches the streams are at), so
    rows with the same key in any streams meet in the same step. Each step uses up at
    least one batch: steps hold one batch per stream."""
    iterators = [iter(stream) for stream in streams]
    heads: list[_Head | None] = [_advance(it) for it in iterators]
    while any(head is not None for head in heads):
        cutoff = min(head.keys[-1] for head in heads if head is not None)
        parts: list[pa.Table | None] = [None] * len(heads)
        for i, head in enumerate(heads):
            if head is None:
                continue
            end = bisect_right(head.keys, cutoff, lo=head.offset)
            if end > head.offset:
                parts[i] = head.table.slice(head.offset, end - head.offset)
                head.offset = end
            if head.offset == len(head.keys):
                heads[i] = _advance(head.stream)
        yield parts


def merge(streams: Iterable[Iterable[pa.Table]], newest: str | None = None) -> Iterator[pa.Table]:
    """Streams each sorted by key with one row per key, as one such stream (a key in
    several streams: the row with the largest ``newest``)."""
    for parts in aligned(streams):
        present = [part for part in parts if part is not None]
        if len(present) == 1:
            yield present[0]
        elif present:
            yield sorted_unique(pa.concat_tables(present), newest)
