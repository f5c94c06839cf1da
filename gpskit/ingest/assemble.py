"""manifest.parquet assembled from the kept earlier rows and this run's journal, merged in
key order a row group at a time, and the verdict settings it records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpskit import checks
from gpskit.dataset import Dataset
from gpskit.errors import SchemaError
from gpskit.extsort import RunFile, RunSorter, merge, sort_key
from gpskit.ingest.find import ScannedFiles
from gpskit.ingest.labels import LabelMatcher, relabel_table
from gpskit.ingest.options import IngestOptions
from gpskit.ingest.plan import KEPT, key_table
from gpskit.ingest.report import ManifestCounts
from gpskit.ingest.rows import judge_table, manifest_schema
from gpskit.schema import (
    file_metadata,
    read_table,
    table_writer,
)
from gpskit.shards import RowGather

#: Rows per row group of manifest.parquet, and per step of its assembly: what bounds the
#: memory of a run, whatever the number of rows (about 2 KB a row with every hash).
MANIFEST_ROW_GROUP = 16_384


def verdicts(options: IngestOptions) -> dict[str, Any]:
    """What a row's verdict depends on besides the row (kept in the manifest's metadata)."""
    return {
        "thresholds": options.thresholds,
        "strict_quality": options.strict_quality,
        "checks": checks.fingerprint(),
    }


def earlier_sources(path: Path) -> list[str]:
    """The tables and Hub folders earlier runs read (kept: ``publish`` never writes there)."""
    try:
        settings = json.loads(file_metadata(path).get("gpskit.ingest", "{}"))
    except (OSError, ValueError, pa.ArrowException):
        return []
    found = settings.get("sources", []) if isinstance(settings, dict) else []
    return [s for s in found if isinstance(s, str)]


def judged_alike(path: Path, options: IngestOptions) -> bool:
    """Whether the verdicts in an earlier manifest are the ones this run would give."""
    try:
        settings = json.loads(file_metadata(path).get("gpskit.ingest", "{}"))
    except (OSError, ValueError, pa.ArrowException):
        return False
    mine = verdicts(options)
    return isinstance(settings, dict) and all(settings.get(k) == v for k, v in mine.items())


def recorded_verdicts(path: Path) -> dict[str, Any]:
    """The thresholds and ``strict_quality`` an earlier manifest was judged with (empty
    when it records none): a run adding photos beside it judges them alike."""
    try:
        settings = json.loads(file_metadata(path).get("gpskit.ingest", "{}"))
    except (OSError, ValueError, pa.ArrowException):
        return {}
    if not isinstance(settings, dict):
        return {}
    found: dict[str, Any] = {}
    thresholds = settings.get("thresholds")
    if isinstance(thresholds, dict) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in thresholds.items()
    ):
        found["thresholds"] = {k: float(v) for k, v in thresholds.items()}
    if isinstance(settings.get("strict_quality"), bool):
        found["strict_quality"] = settings["strict_quality"]
    return found


def _settings(
    dataset: Dataset,
    files: ScannedFiles,
    options: IngestOptions,
    labels: LabelMatcher | None,
    sources: list[str] | None,
) -> dict[str, str]:
    """What the manifest's metadata records of the run (``gpskit.ingest``)."""
    settings = {
        "inputs": files.root_names(),
        "position_tables": sorted({t.source for t in labels.tables}) if labels else [],
        "sources": sorted(set(sources or []) | set(earlier_sources(dataset.manifest_path))),
        "decode": options.decode,
        "max_pixels": options.max_pixels,
        **verdicts(options),
    }
    return {"gpskit.ingest": json.dumps(settings, sort_keys=True)}


def _rebatched(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """``tables`` cut and joined into tables of ``rows`` rows (the last one shorter)."""
    held: list[pa.Table] = []
    count = 0
    for table in tables:
        held.append(table)
        count += table.num_rows
        while count >= rows:
            joined = pa.concat_tables(held)
            yield joined.slice(0, rows)
            held, count = [joined.slice(rows)], count - rows
    if count:
        yield pa.concat_tables(held)


def assemble_manifest(
    dataset: Dataset,
    kept: RunFile,
    gather: RowGather,
    written: list[Path],
    files: ScannedFiles,
    options: IngestOptions,
    judged: set[int],
    spill: Path,
    labels: LabelMatcher | None = None,
    sources: list[str] | None = None,
) -> ManifestCounts:
    """Write manifest.parquet from the kept earlier rows (``kept``, in key order) and this
    run's journal shards (``written``, their keys sorted in runs), merged in (root, path)
    order and judged, a row group at a time: memory holds a run of keys and one row
    group, never the whole manifest. Rows of the files in ``judged`` (and of this run's
    shards, judged as they were read) keep their verdicts; the others are judged again."""
    roots = files.roots
    judged = set(judged)
    fresh = RunSorter(spill, KEPT, run_rows=options.sort_rows)
    for shard in written:
        found = read_table(shard, manifest_schema(), columns=["root", "path"])
        source = gather.add(shard)
        judged.add(source)
        fresh.add(
            key_table(
                KEPT,
                key=sort_key(found["root"], found["path"]), root_id=roots.encode(found["root"]),
                path=found["path"], source=np.full(found.num_rows, source, dtype=np.int32),
                row=np.arange(found.num_rows, dtype=np.int64),
            )
        )  # fmt: skip
    metadata = _settings(dataset, files, options, labels, sources)
    counts = ManifestCounts()
    schema = manifest_schema()
    steps = _rebatched(merge([kept.batches(), fresh.merged()]), MANIFEST_ROW_GROUP)
    with table_writer(
        dataset.manifest_path,
        schema,
        extra_metadata=metadata,
        row_group_rows=MANIFEST_ROW_GROUP,
        ordered=True,
    ) as write:
        for step in steps:
            try:
                rows = gather.take(step["source"].to_numpy(), step["row"].to_numpy())
            except SchemaError as exc:  # keys read fine, the rest of a row group did not
                raise SchemaError(
                    exc.message,
                    hint=f"move {dataset.manifest_path.name} away and run ingest again: the "
                    "rows this run read are journaled and will be reused",
                ) from None
            # rows re-filed under a new root (see plan.root_moves)
            rows = rows.set_column(
                rows.schema.get_field_index("root"), "root", roots.strings(step["root_id"])
            )
            rows = rows.set_column(rows.schema.get_field_index("path"), "path", step["path"])
            relabelled, gone = relabel_table(rows, labels) if labels else (None, None)
            if gone is not None:  # photos a table named and names no more
                counts.dropped += int(pc.sum(gone).as_py() or 0)
                relabelled = (relabelled if relabelled is not None else rows).filter(
                    pc.invert(gone)
                )
            if relabelled is not None:
                rows = judge_table(relabelled, options.thresholds, options.strict_quality)
            elif not np.isin(step["source"].to_numpy(), list(judged)).all():
                rows = judge_table(rows, options.thresholds, options.strict_quality)
            counts.add(rows)
            write(rows)
        if not counts.files:
            write(schema.arrow_schema().empty_table())
    return counts
