"""Test helpers: manifests written directly (no images), for steps after ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from gpskit.dataset import Dataset
from gpskit.schema import load_schema, write_table

DEFAULTS: dict[str, Any] = {
    "root": "/photos",
    "file_size": 1000,
    "mtime_ns": 1,
    "read_status": "ok",
    "format": "JPEG",
    "has_exif": True,
    "width": 640,
    "height": 480,
    "gps_flags": [],
    "unfit_tags": [],
    "crop_hashes": [],
    "dihedral_hashes": [],
    "dihedral_phash256": [],
    "crop_phash256": [],
    "decoded": True,
    "status": "accepted",
    "reasons": [],
    "warnings": [],
    "img_direction_ref": "T",
}


def write_manifest(dataset: Path, rows: list[dict[str, Any]]) -> None:
    """A manifest from partial rows (path, latitude, longitude, img_direction, ...)."""
    schema = load_schema("manifest")
    full = []
    for i, row in enumerate(rows):
        merged = {name: None for name in schema.names}
        merged.update(DEFAULTS)
        merged["path"] = f"p{i:05d}.jpg"
        merged.update(row)
        full.append(merged)
    columns = {name: [r[name] for r in full] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
    write_table(table, Dataset(dataset).manifest_path, schema)
