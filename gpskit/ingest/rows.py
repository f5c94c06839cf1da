"""A manifest row: what the reader extracted, fitted to its columns and judged by the checks."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from gpskit import checks
from gpskit.ingest.find import FileRef
from gpskit.schema import (
    Schema,
    coerce_row,
    load_schema,
)


def failure_row(status: str, detail: str | None) -> dict[str, Any]:
    return {"read_status": status, "decoded": False, "has_exif": False, "error": detail}


def manifest_row(ref: FileRef, extracted: dict[str, Any]) -> dict[str, Any]:
    """A manifest row from what the reader extracted: every value made to fit its column.

    This is the one place values from a file cross into the manifest; one that does not fit
    (an Orientation of 36865, a year past 9999) becomes empty and is named in
    ``unfit_tags``, never an error at the final write.
    """
    row = {
        **extracted,
        "root": ref.root,
        "path": ref.path,
        "file_size": ref.size,
        "mtime_ns": ref.mtime_ns,
        "status": "accepted",
        "reasons": [],
        "warnings": [],
    }
    unfit = coerce_row(row, manifest_schema())
    row["unfit_tags"] = unfit
    return row


def judge(row: dict[str, Any], thresholds: dict[str, float], strict_quality: bool = False) -> None:
    """Run the checks on one row: fill ``reasons``, ``warnings`` and ``status``."""
    reasons, warns = checks.evaluate(row, thresholds, strict_quality)
    row["reasons"], row["warnings"] = reasons, warns
    row["status"] = "rejected" if reasons else "accepted"


def manifest_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Manifest rows (each made by :func:`manifest_row`) as an Arrow table."""
    schema = manifest_schema()
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema.arrow_schema())


def judge_table(
    table: pa.Table, thresholds: dict[str, float], strict_quality: bool = False, batch: int = 65_536
) -> pa.Table:
    """:func:`judge` every row of a table, a batch at a time (the checks read the scalar
    columns only, never the hashes, so those are not turned into Python objects)."""
    fields = [name for name in table.column_names if "hash" not in name]
    reasons: list[list[str]] = []
    warns: list[list[str]] = []
    for part in table.select(fields).to_batches(max_chunksize=batch):
        for row in part.to_pylist():
            found, warned = checks.evaluate(row, thresholds, strict_quality)
            reasons.append(found)
            warns.append(warned)
    arrow = manifest_schema().arrow_schema()
    status = ["rejected" if found else "accepted" for found in reasons]
    for name, values in (("reasons", reasons), ("warnings", warns), ("status", status)):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, arrow.field(name), pa.array(values, arrow.field(name).type))
    return table


def manifest_schema() -> Schema:
    return load_schema("manifest")
