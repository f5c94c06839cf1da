"""Reading the tables users bring (CSV, TSV, Parquet, JSON Lines, Arrow): whatever a cell
holds, a name comes back as text or None and a number as a finite float or None; a file
that is not a readable table is one line naming it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gpskit import paths
from gpskit.errors import InputError
from gpskit.ingest.options import TABLE_SUFFIXES, is_table

#: Rows per batch when a table of images is read a piece at a time.
IMAGE_BATCH = 256


def _refused(path: Path, exc: BaseException) -> InputError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    kind = path.suffix[1:].upper() or "table"
    return InputError(
        f"{path}: not a readable {kind} table ({first})",
        hint="check the file, or name a CSV, TSV, Parquet, JSON Lines or Arrow file",
    )


def _require(path: Path) -> None:
    paths.require_readable_file(path, "table")
    if paths.kind(path) == paths.MISSING:
        raise InputError(f"{path}: no such file", hint="check the path")
    if not is_table(path):
        raise InputError(
            f"{path}: not a table (its name ends in {path.suffix or 'nothing'})",
            hint=f"name a table: {', '.join(TABLE_SUFFIXES)}",
        )


def read_table_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A table file as an Arrow table (``columns``: only those where it has them)."""
    _require(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            options = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            # text that is not UTF-8 stays bytes (a Latin-1 name), never a failed read
            convert = pacsv.ConvertOptions(check_utf8=False)
            table = pacsv.read_csv(path, parse_options=options, convert_options=convert)
        elif suffix == ".parquet":
            table = pq.read_table(path, columns=columns)
        elif suffix in (".jsonl", ".ndjson"):
            table = _read_json_lines(path)
        else:
            table = _read_arrow(path)
        names = table.column_names  # names that are not UTF-8 fail here, not later
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise _refused(path, exc) from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            f"{path}: the column name {twice[0]!r} appears twice",
            hint="rename one of them",
        )
    if columns is not None:
        table = table.select([c for c in columns if c in names])
    return table


def _read_json_lines(path: Path) -> pa.Table:
    """JSON Lines with cells of any type: a column mixing numbers and text is text."""
    import pandas as pd  # only here: it reads rows of mixed types

    frame = pd.read_json(path, lines=True, dtype=False)
    columns = {}
    for name in frame.columns:
        values = frame[name].tolist()
        try:
            columns[str(name)] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError):
            columns[str(name)] = pa.array(
                [
                    None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                    for v in values
                ],
                pa.string(),
            )
    return pa.table(columns)


def _read_arrow(path: Path) -> pa.Table:
    """An Arrow IPC file or stream (what the Hub's ``datasets`` library caches)."""
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


def table_schema(path: Path) -> pa.Schema:
    """A table's columns (a Parquet file's from its footer alone)."""
    _require(path)
    if path.suffix.lower() == ".parquet":
        try:
            return pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise _refused(path, exc) from None
    return read_table_file(path).schema


def batches(path: Path, columns: list[str]) -> Iterator[pa.Table]:
    """A table's rows a batch at a time (a Parquet file of images is never read whole)."""
    if path.suffix.lower() != ".parquet":
        yield read_table_file(path, columns)
        return
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=IMAGE_BATCH, columns=columns):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowException, OSError) as exc:
        raise _refused(path, exc) from None


def texts(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """A column's cells as text: strings as they are, bytes decoded (undecodable bytes
    kept as the file system keeps them), numbers written out, anything else None."""
    out: list[str | None] = []
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # a CSV read without its UTF-8 check may hold any bytes: decode them here
        column = column.cast(pa.large_binary())
    for value in column.to_pylist():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, bytes):
            out.append(value.decode("utf-8", "surrogateescape"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(str(value) if math.isfinite(value) else None)
        else:
            out.append(None)
    return out


def numbers(column: pa.ChunkedArray | pa.Array) -> list[float | None]:
    """A column's cells as finite floats; text that is not a number, NaN and inf: None."""
    out: list[float | None] = []
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = column.cast(pa.large_binary())
    for value in column.to_pylist():
        number: Any = None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is not None and not isinstance(value, bool | dict | list):
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                number = None
        out.append(number if number is not None and math.isfinite(number) else None)
    return out
