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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from gpskit.errors import SchemaError
from gpskit.schema import Schema, read_table, write_table

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
