"""``gpskit info``: what a dataset's manifest holds, and its worst photos by quality check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpskit.dataset import Dataset
from gpskit.ingest.report import summarize
from gpskit.ingest.summary import IngestReport
from gpskit.schema import file_metadata

_SUMMARY_COLUMNS = ("status", "read_status", "reasons", "warnings", "format", "gps_source")


def manifest_info(dataset_dir: Path | Dataset) -> tuple[IngestReport, dict[str, Any]]:
    """Summary of an existing manifest and the options it was made with."""
    dataset = Dataset.at(dataset_dir)
    table = dataset.load_manifest(columns=list(_SUMMARY_COLUMNS))
    meta = file_metadata(dataset.manifest_path)
    settings = json.loads(meta.get("gpskit.ingest", "{}"))
    settings["gpskit_version"] = meta.get("gpskit.version")
    return summarize(table, dataset), settings


def quality_offenders(dataset_dir: Path | Dataset, per_check: int = 6) -> dict[str, Any]:
    """The worst photos of each image-quality check in a manifest (see
    :func:`gpskit.quality.worst_offenders`); only the columns that needs are read."""
    from gpskit.quality import COLUMNS, worst_offenders

    dataset = Dataset.at(dataset_dir)
    wanted = ["root", "path", "width", "height", "warnings", "reasons", *COLUMNS]
    return worst_offenders(dataset.load_manifest(columns=wanted).to_pandas(), per_check)
