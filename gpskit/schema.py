"""Versioned data contracts: ``schemas/*.json`` is the single source of truth.

Each schema file lists the fields of one Parquet file (name, type, nullability, allowed
values, a description). gpskit builds the Arrow schema from it, checks tables against it
before writing and after reading, and stores ``{"name", "version"}`` in the Parquet
key-value metadata under ``gpskit.schema`` so a reader can refuse an unknown version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gpskit import __version__
from gpskit.atomic import atomic_path
from gpskit.config import schemas_dir
from gpskit.errors import MissingStepError, SchemaError
from gpskit.imaging import ImageColumn
from gpskit.paths import require_readable_file

METADATA_KEY = b"gpskit.schema"

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "binary": pa.binary(),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    "list<string>": pa.list_(pa.string()),
    "list<int64>": pa.list_(pa.int64()),
    "list<binary>": pa.list_(pa.binary()),
    "image": ImageColumn.arrow_type(),
}


@dataclass(frozen=True)
class FieldSpec:
    """One documented column."""

    name: str
    type: str
    nullable: bool
    description: str
    enum: tuple[str, ...] | None = None
    since: int = 1  # the schema version that added the column

    @property
    def arrow_type(self) -> pa.DataType:
        return _SIMPLE_TYPES[self.type]

    @property
    def empty(self) -> Any:
        """The value a row gets when it has none: null, or an empty list / False."""
        if self.nullable:
            return None
        return [] if self.type.startswith("list<") else _NON_NULL_EMPTY.get(self.type)


@dataclass(frozen=True)
class Schema:
    """A loaded ``schemas/<name>.json``."""

    name: str
    version: int
    description: str
    fields: tuple[FieldSpec, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def primary_key(self) -> tuple[str, ...]:
        """Columns whose values identify a row (unique in every file written)."""
        return tuple(self.extra.get("primary_key", ()))

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"schema {self.name!r} has no field {name!r}")

    def enum(self, name: str) -> tuple[str, ...]:
        """The allowed values of an enumerated column, in the schema's order."""
        values = self.field(name).enum
        if values is None:
            raise KeyError(f"field {name!r} of schema {self.name!r} is not an enum")
        return values

    def arrow_schema(self, extra_metadata: dict[str, str] | None = None) -> pa.Schema:
        """Arrow schema with the gpskit schema tag (and any extra metadata) attached."""
        meta = {METADATA_KEY: json.dumps({"name": self.name, "version": self.version}).encode()}
        for key, value in (extra_metadata or {}).items():
            meta[key.encode()] = value.encode()
        return pa.schema(
            [pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields],
            metadata=meta,
        )


@cache
def load_schema(name: str) -> Schema:
    """Load and sanity-check ``schemas/<name>.json``."""
    path = schemas_dir() / f"{name}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    fields = []
    for item in raw["fields"]:
        if item["type"] not in _SIMPLE_TYPES:
            raise ValueError(f"{path}: field {item['name']!r} has unknown type {item['type']!r}")
        enum = tuple(item["enum"]) if "enum" in item else None
        spec = FieldSpec(
            item["name"],
            item["type"],
            bool(item["nullable"]),
            item["description"],
            enum,
            int(item.get("since", 1)),
        )
        fields.append(spec)
    extra = {k: v for k, v in raw.items() if k not in {"name", "version", "description", "fields"}}
    return Schema(raw["name"], int(raw["version"]), raw["description"], tuple(fields), extra)


# --- coercion: any value from a file into a column, or null ---------------------------------

_NON_NULL_EMPTY: dict[str, Any] = {"bool": False, "string": "", "int64": 0, "int32": 0, "int16": 0}
_INT_BITS = {"int16": 16, "int32": 32, "int64": 64}


class Unfit(ValueError):
    """A value that does not fit its column's type or range."""


def _int(bits: int) -> Callable[[Any], int]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def convert(value: Any) -> int:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            raise Unfit(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise Unfit(value)
        elif not hasattr(value, "__index__"):  # int and numpy integers have it
            raise Unfit(type(value).__name__)
        number = int(value)
        if not low <= number <= high:
            raise Unfit(number)
        return number

    return convert


def _float(value: Any) -> float:
    if isinstance(value, (bool, str, bytes)) or type(value).__name__ == "bool_":
        raise Unfit(value)
    if not hasattr(value, "__float__"):  # int, float and numpy numbers have it
        raise Unfit(type(value).__name__)
    number = float(value)
    if not math.isfinite(number):
        raise Unfit(number)
    return number


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise Unfit(type(value).__name__)
    # lone surrogates (from decoders that escape bad bytes) are not UTF-8: replace them
    return value.encode("utf-8", "replace").decode("utf-8")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise Unfit(type(value).__name__)
    return bool(value)


def _binary(value: Any) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise Unfit(type(value).__name__)
    return bytes(value)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Unfit(value)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError) as exc:
        raise Unfit(value) from exc


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    def convert(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise Unfit(type(value).__name__)
        return [item(v) for v in value]

    return convert


_COERCE: dict[str, Callable[[Any], Any]] = {
    **{name: _int(bits) for name, bits in _INT_BITS.items()},
    "float32": _float,
    "float64": _float,
    "string": _text,
    "bool": _bool,
    "binary": _binary,
    "timestamp[us, tz=UTC]": _timestamp,
    "list<string>": _list_of(_text),
    "list<int64>": _list_of(_int(64)),
    "list<binary>": _list_of(_binary),
}


def coerce_row(row: MutableMapping[str, Any], schema: Schema) -> list[str]:
    """Make every value of ``row`` fit its column (type, range, enum), in place.

    A value that does not fit becomes the column's empty value (null where allowed) and its
    column is returned, so the caller can say which tag was dropped: one odd value in one
    file never stops a table from being written. Missing columns get their empty value.
    """
    unfit: list[str] = []
    for spec in schema.fields:
        value = row.get(spec.name)
        if value is None:
            row[spec.name] = spec.empty
            continue
        try:
            value = _COERCE[spec.type](value)
            if spec.enum is not None and value not in spec.enum:
                raise Unfit(value)
        except (Unfit, TypeError, ValueError, OverflowError):
            row[spec.name] = spec.empty
            unfit.append(spec.name)
            continue
        row[spec.name] = value
    return unfit


def validate_table(
    table: pa.Table, schema: Schema, *, where: str, columns: Sequence[str] | None = None
) -> None:
    """Raise :class:`SchemaError` if ``table`` breaks ``schema`` (columns, types, nulls,
    enums, primary key); with ``columns``, only those are checked."""
    expected = schema.arrow_schema()
    wanted = schema.names if columns is None else list(columns)
    missing = [n for n in wanted if n not in table.column_names]
    if missing:
        raise SchemaError(f"{where}: missing columns {missing} for schema {schema.name!r}")
    for spec in schema.fields:
        if spec.name not in wanted:
            continue
        column = table.column(spec.name)
        want = expected.field(spec.name).type
        if not column.type.equals(want):
            raise SchemaError(
                f"{where}: column {spec.name!r} is {column.type}, schema {schema.name!r} "
                f"v{schema.version} says {want}"
            )
        if not spec.nullable and column.null_count:
            raise SchemaError(f"{where}: column {spec.name!r} has {column.null_count} nulls")
        if spec.enum is not None and len(column):
            ok = pc.is_in(column, value_set=pa.array(spec.enum, pa.string()))
            bad = pc.and_(pc.invert(ok), pc.is_valid(column))
            if pc.any(bad).as_py():
                values = sorted(set(pc.filter(column, bad).to_pylist()))
                raise SchemaError(
                    f"{where}: column {spec.name!r} has values {values[:5]} "
                    f"outside {list(spec.enum)}"
                )
    if set(schema.primary_key) <= set(wanted):
        _check_primary_key(table, schema, where)


def _check_primary_key(table: pa.Table, schema: Schema, where: str) -> None:
    """Raise :class:`SchemaError` when two rows share the declared primary key."""
    key = list(schema.primary_key)
    if not key or table.num_rows < 2:
        return
    counts = table.select(key).group_by(key).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows:
        example = {k: repeated.column(k)[0].as_py() for k in key}
        raise SchemaError(
            f"{where}: {repeated.num_rows} values of the primary key {key} appear more than "
            f"once (e.g. {example})"
        )


def to_table(
    columns: dict[str, Any] | pa.Table,
    schema: Schema,
    *,
    extra_metadata: dict[str, str] | None = None,
) -> pa.Table:
    """Build a table in schema column order and types (cast where lossless)."""
    arrow_schema = schema.arrow_schema(extra_metadata)
    try:
        if isinstance(columns, pa.Table):
            missing = [n for n in schema.names if n not in columns.column_names]
            if missing:
                raise SchemaError(f"missing columns {missing} for schema {schema.name!r}")
            for spec in schema.fields:
                nulls = columns.column(spec.name).null_count
                if not spec.nullable and nulls:
                    raise SchemaError(f"column {spec.name!r} has {nulls} nulls")
            table = columns.select(schema.names).cast(arrow_schema)
        else:
            arrays = [pa.array(columns[f.name], type=f.arrow_type) for f in schema.fields]
            table = pa.Table.from_arrays(arrays, schema=arrow_schema)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise SchemaError(f"a table does not fit schema {schema.name!r}: {exc}") from exc
    return table.replace_schema_metadata(arrow_schema.metadata)


def write_table(
    table: pa.Table,
    path: Path,
    schema: Schema,
    *,
    extra_metadata: dict[str, str] | None = None,
    row_group_rows: int | None = None,
) -> None:
    """Check ``table`` against ``schema`` and write it to ``path`` atomically."""
    with table_writer(
        path, schema, extra_metadata=extra_metadata, row_group_rows=row_group_rows
    ) as write:
        write(table)


@contextmanager
def table_writer(
    path: Path,
    schema: Schema,
    *,
    extra_metadata: dict[str, str] | None = None,
    row_group_rows: int | None = None,
    ordered: bool = False,
) -> Iterator[Callable[[pa.Table], None]]:
    """Write a gpskit Parquet file a piece at a time: ``with table_writer(...) as write:
    write(piece)``. Each piece is checked against ``schema`` before it is written; the file
    appears at ``path`` (by rename) only when the block ends without an error, so memory
    holds one piece, never the whole file.

    With ``ordered``, pieces come sorted by the primary key, which is then checked to rise
    strictly across pieces too (unique in the whole file without keeping its keys).
    Fixed writer settings, so the same pieces give the same bytes.
    """
    meta = {"gpskit.version": __version__, **(extra_metadata or {})}
    arrow_schema = schema.arrow_schema(meta)
    key = list(schema.primary_key)
    last: tuple[Any, ...] | None = None

    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, arrow_schema, compression="zstd", write_statistics=True) as writer,
    ):

        def write(piece: pa.Table) -> None:
            nonlocal last
            table = to_table(piece, schema, extra_metadata=meta)
            validate_table(table, schema, where=str(path))
            if ordered and key and table.num_rows:
                first = tuple(table.column(k)[0].as_py() for k in key)
                if last is not None and not last < first:
                    raise SchemaError(
                        f"{path}: rows out of order or repeated at {schema.name} key {first}"
                    )
                last = tuple(table.column(k)[-1].as_py() for k in key)
            writer.write_table(table, row_group_size=row_group_rows)

        yield write


#: What reading a damaged Parquet file raises: I/O and Arrow errors, and ValueError (a
#: footer whose column names are not UTF-8 raises UnicodeDecodeError; byte-mutation test)
_UNREADABLE = (OSError, pa.ArrowException, ValueError)


def schema_tag(path: Path) -> dict[str, Any] | None:
    """The ``{"name", "version"}`` tag of a Parquet file written by gpskit, or None."""
    require_readable_file(path)
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(METADATA_KEY)
    return json.loads(raw) if raw else None


def read_table(
    path: Path,
    schema: Schema,
    *,
    step_hint: str | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read a gpskit Parquet file, refusing other schemas and unknown versions.

    Files of an older version are upgraded in memory (see :func:`upgrade`). ``columns``
    reads only those (projection push-down); the rest of the schema is not checked.
    """
    version = _checked_version(path, schema, step_hint)
    try:
        present = set(pq.read_schema(path).names)
        wanted = None if columns is None else [c for c in columns if c in present]
        table = pq.read_table(path, columns=wanted)
    except _UNREADABLE as exc:
        raise SchemaError(f"{path} is not a readable Parquet file: {exc}") from exc
    return _checked(table, schema, version, str(path), columns)


class RowGroupReader:
    """A gpskit Parquet file one row group at a time (checked as :func:`read_table` checks
    a whole file): what reads a file too big to hold reads it with. The file is opened
    per read, so thousands of readers hold no file handles; its footer is parsed once and
    handed to each open (a footer of 3,000 row groups is megabytes: parsing it per read
    made a pass over such a file quadratic)."""

    def __init__(self, path: Path, schema: Schema) -> None:
        self.path, self.schema = path, schema
        self.version = _checked_version(path, schema, None)
        try:
            with pq.ParquetFile(path) as file:
                meta = file.metadata
                self.names = set(file.schema_arrow.names)
            self.metadata = meta
        except _UNREADABLE as exc:
            raise SchemaError(f"{path} is not a readable Parquet file: {exc}") from exc
        self.row_counts = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]

    @property
    def num_rows(self) -> int:
        return sum(self.row_counts)

    def read(self, index: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Row group ``index`` (``columns``: only those)."""
        wanted = None if columns is None else [c for c in columns if c in self.names]
        try:
            with pq.ParquetFile(self.path, metadata=self.metadata) as file:
                table = file.read_row_group(index, columns=wanted)
            table.validate(full=True)  # Parquet does not check UTF-8: damaged text gets in
        except _UNREADABLE as exc:
            raise SchemaError(f"{self.path} row group {index} is not readable: {exc}") from exc
        where = f"{self.path} (row group {index})"
        return _checked(table, self.schema, self.version, where, columns)


def _checked_version(path: Path, schema: Schema, step_hint: str | None) -> int:
    """The schema version a gpskit file declares (refusing other schemas and versions)."""
    require_readable_file(path)
    if not path.exists():
        hint = step_hint or "check the path"
        raise MissingStepError(f"{path} does not exist", hint=hint)
    try:
        tag = schema_tag(path)
    except _UNREADABLE as exc:
        raise SchemaError(f"{path} is not a readable Parquet file: {exc}") from exc
    if tag is None or tag.get("name") != schema.name:
        raise SchemaError(
            f"{path} is not a gpskit {schema.name} file (no gpskit.schema tag for {schema.name!r})"
        )
    version = tag.get("version")
    if not isinstance(version, int) or not 1 <= version <= schema.version:
        raise SchemaError(
            f"{path} has {schema.name} schema version {version}, this gpskit "
            f"({__version__}) reads versions 1 to {schema.version}",
            hint="re-create it with this gpskit version, or install the gpskit that wrote it",
        )
    return version


def _checked(
    table: pa.Table, schema: Schema, version: int, where: str, columns: Sequence[str] | None
) -> pa.Table:
    if version < schema.version:
        table = upgrade(table, schema, version, where=where, columns=columns)
    validate_table(table, schema, where=where, columns=columns)
    return table


def upgrade(
    table: pa.Table,
    schema: Schema,
    version: int,
    *,
    where: str,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """A table of an older version of ``schema``: the columns added since, empty.

    Columns are only ever added between versions (a changed column is a new one), so an
    older file reads as the current version with the new columns empty.
    """
    wanted = schema.names if columns is None else list(columns)
    for spec in schema.fields:
        if spec.name in table.column_names or spec.name not in wanted:
            continue
        if spec.since <= version:
            raise SchemaError(f"{where}: missing column {spec.name!r} of {schema.name} v{version}")
        empty = pa.array([spec.empty] * table.num_rows, type=spec.arrow_type)
        table = table.append_column(pa.field(spec.name, spec.arrow_type, spec.nullable), empty)
    return table.select([n for n in schema.names if n in wanted])


def file_metadata(path: Path) -> dict[str, str]:
    """All key-value metadata of a Parquet file, decoded."""
    require_readable_file(path)
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}
