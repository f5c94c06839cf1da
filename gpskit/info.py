"""``gpskit info``: what a dataset's manifest holds, and its worst photos by quality check.

The summary depends only on the manifest and the decisions, so it is remembered against
them (``.gpskit/info.json``, see :mod:`gpskit.memo`): asked again with neither changed,
it answers without loading Arrow or pandas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpskit import __version__
from gpskit.layout import DECISIONS_FILES, MANIFEST_FILE, STATE_DIR, dataset_root
from gpskit.memo import Memo, identity

if TYPE_CHECKING:
    from gpskit.dataset import Dataset
    from gpskit.ingest.summary import IngestReport

_SUMMARY_COLUMNS = ("status", "read_status", "reasons", "warnings", "format", "gps_source")
INFO_MEMO = "info.json"


def manifest_summary(dataset_dir: Path | Dataset | None) -> dict[str, Any]:
    """The summary ``gpskit info --json`` prints: the ingest counts, the settings the
    manifest was made with (``settings``) and the worst photos of each quality check
    (``quality_worst``: rows of root, path, code, measure, value)."""
    root = dataset_root(dataset_dir)
    key = {
        "gpskit": __version__,
        "files": identity(root / n for n in (MANIFEST_FILE, *DECISIONS_FILES)),
    }
    memo = Memo(root / STATE_DIR / INFO_MEMO, key)
    remembered = memo.get()
    if _fits(remembered):  # named as this call names the folder
        return {**remembered, "dataset_dir": str(root), "manifest": str(root / MANIFEST_FILE)}
    report, settings = manifest_info(root)
    worst = {code: frame.to_dict("records") for code, frame in quality_offenders(root).items()}
    summary: dict[str, Any] = json.loads(
        json.dumps({**report.to_dict(), "settings": settings, "quality_worst": worst}, default=str)
    )
    if (root / STATE_DIR).is_dir():  # keyed by the files as they were before the read
        memo.put(summary)
    return summary


def manifest_info(dataset_dir: Path | Dataset) -> tuple[IngestReport, dict[str, Any]]:
    """Summary of an existing manifest and the options it was made with."""
    from gpskit.dataset import Dataset
    from gpskit.ingest.report import summarize
    from gpskit.schema import file_metadata

    dataset = Dataset.at(dataset_dir)
    table = dataset.load_manifest(columns=list(_SUMMARY_COLUMNS))
    meta = file_metadata(dataset.manifest_path)
    settings = json.loads(meta.get("gpskit.ingest", "{}"))
    settings["gpskit_version"] = meta.get("gpskit.version")
    return summarize(table, dataset), settings


def quality_offenders(dataset_dir: Path | Dataset, per_check: int = 6) -> dict[str, Any]:
    """The worst photos of each image-quality check in a manifest (see
    :func:`gpskit.quality.worst_offenders`); only the columns that needs are read."""
    from gpskit.dataset import Dataset
    from gpskit.quality import COLUMNS, worst_offenders

    dataset = Dataset.at(dataset_dir)
    wanted = ["root", "path", "width", "height", "warnings", "reasons", *COLUMNS]
    return worst_offenders(dataset.load_manifest(columns=wanted).to_pandas(), per_check)


def _fits(answer: Any) -> bool:
    """Whether a remembered summary is one this gpskit wrote (a hand-edited one is not
    used: the summary is made again from the manifest)."""
    from gpskit.ingest.summary import IngestReport

    if not isinstance(answer, dict):
        return False
    counts = {k: v for k, v in answer.items() if k not in ("settings", "quality_worst")}
    worst = answer.get("quality_worst")
    try:
        IngestReport.from_dict(counts)
    except (TypeError, KeyError):
        return False
    return (
        isinstance(answer.get("settings"), dict)
        and isinstance(worst, dict)
        and all(
            isinstance(rows, list)
            and all(
                isinstance(r, dict)
                and isinstance(r.get("path"), str)
                and isinstance(r.get("measure"), str)
                and isinstance(r.get("value"), int | float)
                and not isinstance(r.get("value"), bool)
                for r in rows
            )
            for rows in worst.values()
        )
    )
