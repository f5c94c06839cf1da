"""The split files: embedded images, the Parquet tables, split.json, swapped in atomically."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from gpskit import paths, storage
from gpskit.atomic import publish, write_text
from gpskit.csvtext import csv_text
from gpskit.engines import map_isolated
from gpskit.imaging import ImageColumn
from gpskit.schema import Schema, write_table
from gpskit.split.options import SPLIT_NAMES, SplitOptions


def embed_from_path(path: str, max_side: int) -> bytes | str:
    """Worker entry: the embedded JPEG of one photo, or why it could not be made."""
    try:
        return ImageColumn.embed(path, max_side)
    except Exception as exc:  # the photo changed or vanished since ingest
        return f"{type(exc).__name__}: {exc}"


def embed_images(
    frame: pd.DataFrame, options: SplitOptions, progress: Any
) -> list[bytes | str | None]:
    """Per row: embedded JPEG bytes, a failure message, or None when not embedding."""
    if not options.embed:
        return [None] * len(frame)
    paths = [
        (storage.join(r, p), options.max_side) for r, p in zip(frame.root, frame.path, strict=True)
    ]
    results: list[bytes | str | None] = [None] * len(paths)
    outcomes = map_isolated(
        embed_from_path,
        paths,
        engine=options.engine,
        workers=options.workers,
        timeout=120,
        initializer=storage.StoreSettings(),
    )
    for done, outcome in enumerate(outcomes, start=1):
        results[outcome.index] = (
            outcome.value if outcome.failure is None else f"{outcome.failure}: {outcome.detail}"
        )
        if progress:
            progress(done, len(paths))
    return results


def huggingface_features(schema: Schema) -> str:
    """The ``datasets`` feature description stored in the Parquet metadata."""
    features: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.type == "image":
            features[spec.name] = dict(ImageColumn.feature)
        else:
            features[spec.name] = {"dtype": spec.type, "_type": "Value"}
    return json.dumps({"info": {"features": features}})


def split_tables(
    frame: pd.DataFrame,
    images: list[bytes | None],
    split_index: npt.NDArray[np.int64],
    unit_names: npt.NDArray[np.object_],
) -> dict[str, pd.DataFrame]:
    """One table per split, in the split schema's columns."""
    tables = {}
    for index, name in enumerate(SPLIT_NAMES):
        mask = split_index == index
        part = frame[mask]
        data = [images[i] for i in np.flatnonzero(mask)]
        tables[name] = pd.DataFrame(
            {
                "image": [
                    ImageColumn.value(d, r, p)
                    for d, r, p in zip(data, part.root, part.path, strict=True)
                ],
                "split": name,
                "root": part.root.to_numpy(),
                "path": part.path.to_numpy(),
                "latitude": part.latitude.to_numpy(float),
                "longitude": part.longitude.to_numpy(float),
                "spot_id": part.spot_id.to_numpy(np.int64),
                "spot_latitude": part.spot_latitude.to_numpy(float),
                "spot_longitude": part.spot_longitude.to_numpy(float),
                "unit": unit_names[mask],
                "heading": part.heading_true.astype("Float64").to_numpy(),
                "heading_sector": part.heading_sector.to_numpy(),
                "group_id": part.group_id.astype("Int64").to_numpy(),
                "gps_h_error": part.gps_h_error.astype("Float64").to_numpy(),
                "width": part.width.astype("Int32").to_numpy(),
                "height": part.height.astype("Int32").to_numpy(),
                "sha256": part.sha256.to_numpy(),
            }
        )
    return tables


def _write_split(
    folder: Path,
    name: str,
    table: pd.DataFrame,
    schema: Schema,
    meta: dict[str, str],
    export_csv: bool,
) -> list[str]:
    arrow = (
        pa.Table.from_pandas(table, preserve_index=False)
        if len(table)
        else schema.arrow_schema().empty_table()
    )
    write_table(arrow, folder / f"{name}.parquet", schema, extra_metadata=meta)
    written = [f"{name}.parquet"]
    if export_csv:
        csv = pd.DataFrame(
            {
                "image_path": table.root + "/" + table.path,
                "latitude": table.latitude,
                "longitude": table.longitude,
            }
        )
        write_text(folder / f"{name}.csv", csv_text(csv))
        written.append(f"{name}.csv")
    return written


#: Every file name ``gpskit split`` writes into splits/ (a re-run replaces only these).
OWNED = (*(f"{n}.{ext}" for n in SPLIT_NAMES for ext in ("parquet", "csv")), "split.json")


def previously_written(out_dir: Path) -> list[str]:
    """The files the last ``gpskit split`` recorded writing into ``out_dir`` (split.json's
    ``written``): a re-run replaces those, never a file of the user's that merely has one
    of gpskit's names (a ``train.csv`` made by hand when gpskit wrote none)."""
    try:
        record = json.loads(paths.read_text(out_dir / "split.json"))
        written = record.get("written", []) if isinstance(record, dict) else []
        names = {Path(str(p)).name for p in written if isinstance(p, str)}
    except (OSError, ValueError):
        names = set()
    return sorted(names & set(OWNED))


def write_splits(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    record: dict[str, Any],
    schema: Schema,
    options: SplitOptions,
) -> list[str]:
    """Write every file into a staging folder, then publish them into ``out_dir`` as one
    step (:func:`gpskit.atomic.publish`): the previous splits stay whole until the new ones
    are complete, and files in ``out_dir`` that gpskit did not write are left alone.

    ``record`` is split.json's content; returns the paths written.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".splits-", dir=out_dir.parent))
    try:
        stamp = {
            "strategy": options.strategy,
            "seed": options.seed,
            "manifest_sha256": record["manifest_sha256"],
        }
        meta = {
            "huggingface": huggingface_features(schema),
            "gpskit.split": json.dumps(stamp, sort_keys=True),
        }
        names: list[str] = []
        for name, table in tables.items():
            names += _write_split(staging, name, table, schema, meta, options.export_csv)
        names.append("split.json")
        record["written"] = [str(out_dir / n) for n in names]
        text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
        write_text(staging / "split.json", text)
        publish(out_dir, staging, names, replaces=previously_written(out_dir))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(out_dir / n) for n in names]
