"""What an ingest run did: counts by status, reason, warning and format, and its notes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from gpskit import checks, storage
from gpskit.dataset import Dataset
from gpskit.ingest.find import Scope
from gpskit.ingest.options import IngestOptions
from gpskit.ingest.plan import Plan
from gpskit.ingest.summary import IngestReport


def inside_inputs(dataset: Dataset, inputs: Sequence[Path | str]) -> list[str]:
    """Say when the dataset folder sits inside a photo folder (gpskit skips it; other tools
    that walk the photos may not)."""
    root = dataset.root.resolve()
    return [
        f"warning: the dataset folder {dataset.root} is inside the photo folder {given}; "
        "gpskit skips it, but other tools walking the photos may not: keep them apart"
        for given in inputs
        if isinstance(given, Path) and given.is_dir() and given.resolve() in root.parents
    ]


def scope_notes(plan: Plan, options: IngestOptions, scopes: Sequence[Scope] = ()) -> list[str]:
    notes = [
        f"warning: could not list {storage.join(s.root, hole.rstrip('/')) if hole else s.root}: "
        "its files were not read and its earlier rows are kept (check its permissions)"
        for s in scopes
        for hole in s.holes
    ]
    if plan.kept_rows:
        notes.append(f"kept {plan.kept_rows} rows of folders not named in this run")
    if plan.removed:
        where = (
            "not found in this run (--prune)" if options.prune else "gone from the folders scanned"
        )
        notes.append(f"dropped {plan.removed} rows of files {where}")
    return notes


@dataclass
class ManifestCounts:
    """Counts by status, reason, warning and format, added up a piece of manifest at a time."""

    files: int = 0
    images: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  # rows of photos a table no longer names

    def add(self, table: pa.Table) -> None:
        self.files += table.num_rows
        status = table.column("status")
        self.accepted += int(pc.sum(pc.equal(status, "accepted")).as_py() or 0)
        self.rejected += int(pc.sum(pc.equal(status, "rejected")).as_py() or 0)
        read_ok = pc.equal(table.column("read_status"), checks.READ_OK)
        self.images += int(pc.sum(read_ok).as_py() or 0)
        for counter, values in (
            (self.reasons, pc.list_flatten(table.column("reasons"))),
            (self.warnings, pc.list_flatten(table.column("warnings"))),
            (self.formats, pc.drop_null(table.column("format"))),
            (self.sources, pc.fill_null(table.column("gps_source"), "none")),
        ):
            for item in pc.value_counts(values).to_pylist():
                if item["values"]:
                    counter[item["values"]] += item["counts"]

    def report(self, dataset: Dataset) -> IngestReport:
        return IngestReport(
            dataset_dir=str(dataset.root),
            manifest=str(dataset.manifest_path),
            files=self.files,
            images=self.images,
            accepted=self.accepted,
            rejected=self.rejected,
            read=0,
            reused=0,
            removed=0,
            reasons=dict(self.reasons.most_common()),
            warnings=dict(self.warnings.most_common()),
            formats=dict(self.formats.most_common()),
            position_sources=dict(self.sources.most_common()),
        )


def summarize(table: pa.Table, dataset: Dataset) -> IngestReport:
    """Counts by status, reason, warning and format of a manifest table."""
    counts = ManifestCounts()
    counts.add(table)
    return counts.report(dataset)


def threshold_hints(report: IngestReport, options: IngestOptions) -> list[str]:
    """When a threshold rejects most photos (half or more, or all), say which option moves
    it: a folder of 800 photos all `too_small` is a setting to look at, not 800 bad photos."""
    hints = []
    for code, count in report.reasons.items():
        check = checks.REGISTRY.get(code)
        if check is None or check.threshold is None or not report.images:
            continue
        if count * 2 >= report.images and count:
            value = options.thresholds.get(check.threshold, check.default)
            unit = f" {check.unit}" if check.unit else ""
            share = (
                "every photo" if count >= report.images else f"{count} of {report.images} photos"
            )
            hints.append(
                f"{share} rejected as {code}: the threshold is --{check.threshold.replace('_', '-')} "
                f"{value:g}{unit}; if that is not what this collection needs, run again with "
                "another value (`gpskit ingest --list-checks` lists them)"
            )
    return hints
