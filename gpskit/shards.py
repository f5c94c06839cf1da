"""Rows written as they arrive, in Parquet shards: work that survives a kill.

A :class:`ShardWriter` buffers rows and writes them to numbered shards in a folder
(``part-000000.parquet``, ...) every ``rows`` rows or ``seconds`` seconds, each shard
atomically (temp file + rename) and checked against its schema. A run killed at any point
leaves complete shards only; :func:`read_shards` reads them back, skipping a shard that
cannot be read (it can only be the one being renamed when the machine died).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gpskit.errors import SchemaError
from gpskit.schema import RowGroupReader, Schema, read_table, write_table

SHARD_GLOB = "part-*.parquet"


class ShardWriter:
    """Append rows; they reach disk in shards of at most ``rows`` rows, at least every
    ``seconds`` seconds while rows keep coming."""

    def __init__(self, folder: Path, schema: Schema, *, rows: int = 256, seconds: float = 5.0):
        self.folder, self.schema = folder, schema
        self.max_rows, self.max_seconds = max(1, rows), seconds
        self.buffer: list[dict[str, Any]] = []
        self.next_index = len(list(folder.glob(SHARD_GLOB))) if folder.exists() else 0
        self.last_flush = time.monotonic()
        self.written: list[Path] = []  # this writer's shards, in order

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        due = time.monotonic() - self.last_flush >= self.max_seconds
        if len(self.buffer) >= self.max_rows or due:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one shard (nothing when the buffer is empty)."""
        self.last_flush = time.monotonic()
        if not self.buffer:
            return
        columns = {name: [row.get(name) for row in self.buffer] for name in self.schema.names}
        table = pa.Table.from_pydict(columns, schema=self.schema.arrow_schema())
        while (target := self.folder / f"part-{self.next_index:06d}.parquet").exists():
            self.next_index += 1
        write_table(table, target, self.schema)
        self.written.append(target)
        self.next_index += 1
        self.buffer.clear()


def read_shards(folder: Path, schema: Schema) -> Iterator[dict[str, Any]]:
    """Every row of every readable shard in ``folder``, shard by shard."""
    if not folder.is_dir():
        return
    for table in _readable(sorted(folder.glob(SHARD_GLOB)), schema):
        yield from table.to_pylist()


def shard_table(paths: list[Path], schema: Schema) -> pa.Table:
    """The rows of the readable shards among ``paths``, as one Arrow table (columnar: a
    fraction of the memory of the same rows as Python objects)."""
    tables = list(_readable(paths, schema))
    if not tables:
        return schema.arrow_schema().empty_table()
    return pa.concat_tables(tables)


def _readable(paths: list[Path], schema: Schema) -> Iterator[pa.Table]:
    for path in paths:
        try:
            yield read_table(path, schema)
        except SchemaError:
            continue  # cut short by a crash while being written: its rows are read again


def remove_shards(folder: Path) -> None:
    """Forget a journal once its rows are in the finished output."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)


class RowGather:
    """Rows asked for by (file, row number) from gpskit Parquet files, in the asked order.

    It reads the row groups that hold them, one at a time, and keeps the most recently
    used ones up to ``cache_bytes``: what assembles a manifest from earlier rows and a
    journal without holding either whole. Rows asked for in roughly file order (as a
    sorted manifest and a journal written in scan order are) read each row group once.
    """

    #: open readers kept (a journal of a long run has thousands of shards)
    MAX_READERS = 64

    def __init__(self, paths: list[Path], schema: Schema, cache_bytes: int = 64 << 20) -> None:
        self.paths, self.schema, self.cache_bytes = list(paths), schema, cache_bytes
        self.readers: OrderedDict[int, RowGroupReader] = OrderedDict()
        self.starts: dict[int, npt.NDArray[np.int64]] = {}
        self.cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()
        self.cached_bytes = 0
        self.reads = 0  # row groups read (a re-read after eviction counts again)

    def add(self, path: Path, reader: RowGroupReader | None = None) -> int:
        """Another file to take rows from (``reader``: one already open on it); its number."""
        self.paths.append(path)
        if reader is not None:
            self._register(len(self.paths) - 1, reader)
        return len(self.paths) - 1

    def take(self, source: npt.ArrayLike, row: npt.ArrayLike) -> pa.Table:
        """Row ``row[i]`` of file ``source[i]``, for every i, as one table."""
        source = np.asarray(source, dtype=np.int64)
        row = np.asarray(row, dtype=np.int64)
        arrow = self.schema.arrow_schema()
        if not len(source):
            return arrow.empty_table()
        order = np.lexsort((row, source))
        group = np.empty(len(order), dtype=np.int64)
        for file in np.unique(source):
            mine = source[order] == file
            group[mine] = np.searchsorted(self._starts(int(file)), row[order][mine], "right") - 1
        parts = []
        cuts = np.flatnonzero((np.diff(source[order]) != 0) | (np.diff(group) != 0)) + 1
        for run in np.split(np.arange(len(order)), cuts):
            file, index = int(source[order[run[0]]]), int(group[run[0]])
            local = row[order[run]] - self._starts(file)[index]
            parts.append(self._group(file, index).take(pa.array(local)))
        gathered = pa.concat_tables([part.cast(arrow) for part in parts])
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return gathered.take(pa.array(back))

    def _register(self, file: int, reader: RowGroupReader) -> None:
        self.readers[file] = reader
        while len(self.readers) > self.MAX_READERS:
            self.readers.popitem(last=False)
        counts = np.asarray(reader.row_counts, dtype=np.int64)
        self.starts[file] = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def _reader(self, file: int) -> RowGroupReader:
        if file not in self.readers:
            self._register(file, RowGroupReader(self.paths[file], self.schema))
        self.readers.move_to_end(file)
        return self.readers[file]

    def _starts(self, file: int) -> npt.NDArray[np.int64]:
        if file not in self.starts:
            self._reader(file)
        return self.starts[file]

    def _group(self, file: int, index: int) -> pa.Table:
        key = (file, index)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        table = self._reader(file).read(index).replace_schema_metadata(None)
        self.reads += 1
        self.cache[key] = table
        self.cached_bytes += table.nbytes
        while self.cached_bytes > self.cache_bytes and len(self.cache) > 1:
            _, dropped = self.cache.popitem(last=False)
            self.cached_bytes -= dropped.nbytes
        return table
