"""``gpskit dedup``: exact copies, near-duplicates and bursts, grouped and explained.

Nothing is deleted. Every photo that has copies joins a group with one keeper; the result
goes to ``duplicates.parquet`` beside the manifest, and later steps use keepers only.

Links between two photos, strongest first:

- exact / bytes: the same SHA-256 of the file;
- exact / pixels: the same decoded pixels (oriented, or as stored: a copy whose only
  change is its tags, the Orientation tag included);
- near / phash: perceptual hashes within ``near_threshold`` bits (re-encoded, resized,
  brightened copies, and copies turned a quarter, upside down or mirrored);
- near / crop: one photo's hash within ``crop_threshold`` bits of one of the other's nine
  95 % crop hashes (slightly cropped copies, which pHash alone misses);
- near / border: the same picture inside uniform borders (screenshots, letterboxed copies);
- burst: two distinct shots (capture times differ) of the same place (``burst_radius_m``)
  and heading (``burst_heading_deg``), taken ``burst_seconds`` apart or less; a pair
  that is both a burst and a near-duplicate is a burst.

Groups are the connected components of these links; a group's kind is its loosest link.
Thresholds were calibrated on generated views (``tests/test_dedup.py``): copies land within
6 bits, views of the same spot 45° apart at least 14 bits (10 for the crop comparison).

Large collections: when comparing every pair would take over an hour, photos with a
position are compared only with photos within ``within_m`` of them, and photos without
one with all (:mod:`~gpskit.dedup.scope`, :mod:`~gpskit.dedup.nearby`).

Where things live: the thresholds in :mod:`~gpskit.dedup.options`, the link registry
and its finders in :mod:`~gpskit.dedup.links` (hash search in
:mod:`~gpskit.dedup.hashes`, lists of hashes as numbers in :mod:`~gpskit.dedup.lists`),
groups and keepers in :mod:`~gpskit.dedup.groups`, the
comparison with another dataset in :mod:`~gpskit.dedup.overlap`; this module runs them
and writes the outputs.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gpskit.atomic import publish, write_text
from gpskit.csvtext import csv_text
from gpskit.dataset import DUPLICATES, Dataset
from gpskit.dedup.groups import KINDS, build_groups, hash_distance, phash_ints
from gpskit.dedup.links import (
    LINKS,
    MATCHES,
    TRANSFORM_NAMES,
    capture_seconds,
    find_links,
    with_decisions,
)
from gpskit.dedup.options import DedupOptions
from gpskit.dedup.overlap import find_overlap, manifest_frame
from gpskit.dedup.scope import plan_search
from gpskit.geo import haversine_m
from gpskit.layout import CONTACT_SHEET_FILE, DUPLICATES_FILE, OVERLAP_FILE
from gpskit.outputs import output_file
from gpskit.schema import load_schema, write_table

__all__ = ["KINDS", "LINKS", "DedupOptions", "DedupReport", "dedup", "find_links"]


@dataclass
class DedupReport:
    """What dedup found, for the summary table and ``--json``."""

    dataset_dir: str
    photos: int
    hashed: int
    groups: dict[str, int]
    photos_in_groups: dict[str, int]
    redundant: dict[str, int]
    gps_conflicts: int
    largest_groups: list[dict[str, Any]]
    pairs: int
    written: list[str]
    overlap: dict[str, Any] | None = None
    #: Where the perceptual searches looked (every pair, or photos within some metres).
    search: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- links ------------------------------------------------------------------------------


def _overlap_summary(against: Path, overlap: pd.DataFrame) -> dict[str, Any]:
    return {
        "other_dataset": str(against),
        "photos_also_in_other": int(overlap[["root", "path"]].drop_duplicates().shape[0]),
        "pairs": len(overlap),
        "by_kind": dict(Counter(overlap.kind)),
    }


def dedup(
    dataset_dir: Path | Dataset,
    options: DedupOptions | None = None,
    *,
    against: Path | None = None,
    pairs_csv: Path | None = None,
    contact_sheet: bool = True,
    dry_run: bool = False,
) -> DedupReport:
    """Find and group duplicates; write duplicates.parquet (and the extras asked for)."""
    options = options or DedupOptions()
    options.validate()
    dataset = Dataset.at(dataset_dir)
    if pairs_csv is not None:
        output_file(pairs_csv, "--pairs", datasets=[dataset])
    dataset.require_manifest()
    with contextlib.nullcontext() if dry_run else dataset.writing("dedup"):
        frame, digest = manifest_frame(dataset, options)
        scope = plan_search(frame, options)
        options = scope.options
        decided = dataset.decision_state()
        pairs = with_decisions(frame, find_links(frame, options), decided)
        table = build_groups(frame, pairs, options, decided)
        overlap = find_overlap(frame, against, options) if against is not None else None
        written: list[str] = []
        if not dry_run:
            stamp = dataset.stamp(DUPLICATES, options, digest)
            written = _write(dataset, stamp, frame, table, pairs, overlap, pairs_csv, contact_sheet)
    summary = None if against is None or overlap is None else _overlap_summary(against, overlap)
    report = summarize(dataset.root, frame, table, pairs, written, summary)
    report.search = scope.to_dict()
    return report


def _write(
    dataset: Dataset,
    stamp: dict[str, str],
    frame: pd.DataFrame,
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    overlap: pd.DataFrame | None,
    pairs_csv: Path | None,
    contact_sheet: bool,
) -> list[str]:
    """Write duplicates.parquet and the extras; return the paths written. The dataset's
    files (duplicates.parquet, overlap.parquet, duplicates.png) are staged and switched in
    as one step (:func:`gpskit.atomic.publish`): never a new table beside an old sheet or
    an overlap of another run (an earlier one's is removed)."""
    staging = Path(tempfile.mkdtemp(prefix=".dedup-", dir=dataset.root))
    try:
        names = _stage(staging, dataset, stamp, frame, table, overlap, contact_sheet)
        publish(dataset.root, staging, names, replaces=OWN_OUTPUTS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = [str(dataset.root / name) for name in names]
    if pairs_csv is not None:
        write_pairs_csv(frame, pairs, pairs_csv)
        written.append(str(pairs_csv))
    return written


#: The files of the dataset folder dedup writes (a run replaces all of them).
OWN_OUTPUTS = (DUPLICATES_FILE, OVERLAP_FILE, CONTACT_SHEET_FILE)


def _stage(
    staging: Path,
    dataset: Dataset,
    stamp: dict[str, str],
    frame: pd.DataFrame,
    table: pd.DataFrame,
    overlap: pd.DataFrame | None,
    contact_sheet: bool,
) -> list[str]:
    write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        staging / DUPLICATES_FILE,
        load_schema("duplicates"),
        extra_metadata=stamp,
    )
    names = [DUPLICATES_FILE]
    if overlap is not None:
        write_table(
            pa.Table.from_pandas(overlap, preserve_index=False),
            staging / OVERLAP_FILE,
            load_schema("overlap"),
        )
        names.append(OVERLAP_FILE)
    if contact_sheet and table.group_id.notna().any():
        from gpskit.plots.sheets import contact_sheet as draw_sheet

        draw_sheet(frame, table, staging / CONTACT_SHEET_FILE)
        names.append(CONTACT_SHEET_FILE)
    return names


def summarize(
    dataset_dir: Path,
    frame: pd.DataFrame,
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    written: list[str],
    overlap: dict[str, Any] | None,
) -> DedupReport:
    grouped = table[table.group_id.notna()]
    groups = grouped.drop_duplicates("group_id")
    largest = (
        groups.sort_values(["group_size", "group_id"], ascending=[False, True])
        .head(5)
        .apply(
            lambda r: {
                "group_id": int(r.group_id),
                "kind": r.kind,
                "size": int(r.group_size),
                "keeper": r.path,
            },
            axis=1,
        )
        .tolist()
        if len(groups)
        else []
    )
    keepers = table[table.group_id.notna() & table.keep]
    return DedupReport(
        dataset_dir=str(dataset_dir),
        photos=len(frame),
        hashed=int(frame.phash.notna().sum()),
        groups={k: int((groups.kind == k).sum()) for k in KINDS},
        photos_in_groups={k: int((grouped.kind == k).sum()) for k in KINDS},
        redundant={k: int(((grouped.kind == k) & ~grouped.keep).sum()) for k in KINDS},
        gps_conflicts=int(table.gps_conflict.sum()),
        largest_groups=[
            {**g, "keeper": str(keepers[keepers.group_id == g["group_id"]].path.iloc[0])}
            for g in largest
        ],
        pairs=len(pairs),
        written=written,
        overlap=overlap,
    )


def write_pairs_csv(frame: pd.DataFrame, pairs: pd.DataFrame, target: Path) -> None:
    """Every linked pair with its link and distances, for a person or a spreadsheet."""
    a, b = pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)
    codes = phash_ints(frame)
    distance = [hash_distance(codes[i], codes[j]) for i, j in zip(a, b, strict=False)]
    lat, lon = frame.latitude.to_numpy(float), frame.longitude.to_numpy(float)
    seconds, _ = capture_seconds(frame)
    out = pd.DataFrame(
        {
            "path_a": (frame.root.str.cat(frame.path, sep="/")).to_numpy()[a],
            "path_b": (frame.root.str.cat(frame.path, sep="/")).to_numpy()[b],
            "kind": [LINKS[m].kind for m in pairs.match],
            "match": [MATCHES[m] for m in pairs.match],
            "transform": np.array(TRANSFORM_NAMES, dtype=object)[pairs["transform"].to_numpy(int)],
            "phash_distance": pd.array(distance, dtype="Int16"),
            "metres_apart": np.round(haversine_m(lat[a], lon[a], lat[b], lon[b]), 2),
            "seconds_apart": np.round(np.abs(seconds[a] - seconds[b]), 3),
        }
    )
    write_text(target, csv_text(out))


# --- another dataset ----------------------------------------------------------------------
