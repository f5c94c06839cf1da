"""Versioned data contracts: ``schemas/*.json`` is the single source of truth.

Each schema file lists the fields of one Parquet file (name, type, nullability, allowed
values, a description). gpskit builds the Arrow schema from it, checks tables against it
before writing and after reading, and stores ``{"name", "version"}`` in the Parquet
key-value metadata under ``gpskit.schema`` so a reader can refuse an unknown version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    "image": ImageColumn.arrow_type,
}


@dataclass(frozen=True)
class FieldSpec:
    """One documented column."""

    name: str
    type: str
    nullable: bool
    description: str
    enum: tuple[str, ...] | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return _SIMPLE_TYPES[self.type]


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
        fields.append(
            FieldSpec(item["name"], item["type"], bool(item["nullable"]), item["description"], enum)
        )
    extra = {k: v for k, v in raw.items() if k not in {"name", "version", "description", "fields"}}
    return Schema(raw["name"], int(raw["version"]), raw["description"], tuple(fields), extra)


def validate_table(table: pa.Table, schema: Schema, *, where: str) -> None:
    """Raise :class:`SchemaError` if ``table`` breaks ``schema`` (columns, types, nulls, enums)."""
    expected = schema.arrow_schema()
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise SchemaError(f"{where}: missing columns {missing} for schema {schema.name!r}")
    for spec in schema.fields:
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
) -> None:
    """Check ``table`` against ``schema`` and write it to ``path`` atomically."""
    meta = {"gpskit.version": __version__, **(extra_metadata or {})}
    table = to_table(table, schema, extra_metadata=meta)
    validate_table(table, schema, where=str(path))
    with atomic_path(path) as tmp:
        # Fixed writer settings so the same rows give the same bytes.
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def schema_tag(path: Path) -> dict[str, Any] | None:
    """The ``{"name", "version"}`` tag of a Parquet file written by gpskit, or None."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(METADATA_KEY)
    return json.loads(raw) if raw else None


def read_table(path: Path, schema: Schema, *, step_hint: str | None = None) -> pa.Table:
    """Read a gpskit Parquet file, refusing other schemas and unknown versions."""
    if not path.exists():
        hint = step_hint or "check the path"
        raise MissingStepError(f"{path} does not exist", hint=hint)
    try:
        tag = schema_tag(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SchemaError(f"{path} is not a readable Parquet file: {exc}") from exc
    if tag is None or tag.get("name") != schema.name:
        raise SchemaError(
            f"{path} is not a gpskit {schema.name} file (no gpskit.schema tag for {schema.name!r})"
        )
    if tag.get("version") != schema.version:
        raise SchemaError(
            f"{path} has {schema.name} schema version {tag.get('version')}, this gpskit "
            f"({__version__}) reads version {schema.version}",
            hint="re-create it with this gpskit version, or install the gpskit that wrote it",
        )
    table = pq.read_table(path)
    validate_table(table, schema, where=str(path))
    return table


def file_metadata(path: Path) -> dict[str, str]:
    """All key-value metadata of a Parquet file, decoded."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}
