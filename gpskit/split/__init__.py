"""``gpskit split``: leak-free, reproducible train/val/test Parquet splits.

Units, not photos, are assigned to splits, so that nothing that looks alike straddles two
splits:

- ``spot`` (default): a unit is a spot from coverage (photos of one place, all headings),
  merged with every spot that shares a duplicate group with it;
- ``block``: a unit is a square block of ``block_m`` metres; with ``buffer_m``, evaluation
  photos closer than that to a block of another split are dropped;
- ``random``: a unit is one photo (duplicates still kept together). This leaks: views of
  one spot land on both sides, and errors measured on such a split are optimistic.
- ``given``: the split each photo came with (a Hub dataset's ``train``/``test`` files, a
  table's split column: the manifest's ``source_split``), kept as it is, so its leakage
  can be measured beside a leak-free split of the same photos.

Assignment is stratified over space and meets the ratios by photo count within one
unit's worth: units are taken in the order of a Hilbert curve over their positions
(shuffled within short runs by the seed) and each goes to the split furthest below its
target share. Every neighbourhood therefore feeds every split, and the same inputs and
seed give byte-identical files.

Modules: ``options`` (what can be asked), ``select`` (which photos), ``assign`` (units and
splits), ``leakage`` (the report), ``write`` (images, tables, files).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit import __version__
from gpskit.atomic import recover
from gpskit.dataset import Dataset
from gpskit.errors import InputError, UsageError
from gpskit.geo import label_noise
from gpskit.schema import load_schema
from gpskit.split.assign import assign, buffer_mask, unit_labels, unit_names
from gpskit.split.leakage import leakage_report
from gpskit.split.options import (
    GIVEN_NAMES,
    SPLIT_NAMES,
    STRATEGIES,
    SplitName,
    SplitOptions,
    Strategy,
    format_ratios,
    parse_ratios,
)
from gpskit.split.select import candidate_photos, prepare_inputs
from gpskit.split.write import embed_images, split_tables, write_splits

__all__ = [
    "SPLIT_NAMES",
    "STRATEGIES",
    "SplitName",
    "SplitOptions",
    "SplitReport",
    "Strategy",
    "format_ratios",
    "parse_ratios",
    "split",
]

#: What each opt-out risks, said in split.json's warnings.
RISKS = {
    "random": "random split: views of one spot fall on both sides; its errors are optimistic (leakage)",
    "given": "given split: the split the photos came with, kept as it is; its leakage is measured here, not removed",
    "include_duplicates": "duplicates included: copies stay within one split, but they weigh more in training",
    "include_rejected": "rejected photos with a position included: their labels are suspect (poor or stale fixes)",
    "include_outside": "photos outside the region included: they may be mislabelled or off the study area",
}


@dataclass
class SplitReport:
    """What split.json records (and the terminal shows)."""

    dataset_dir: str
    strategy: str
    ratios: list[float]
    seed: int
    counts: dict[str, int]
    units: dict[str, int]
    shares: dict[str, float]
    excluded: dict[str, int]
    leakage: dict[str, Any]
    label_noise_m: dict[str, float]
    options: dict[str, Any]
    manifest_sha256: str
    gpskit_version: str
    warnings: list[str] = field(default_factory=list)
    embed_failures: list[str] = field(default_factory=list)
    #: each photo a duplicate rule left out: photo, kept_instead, kind, match
    duplicates_left_out: list[dict[str, Any]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what this run did first; not in split.json

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _risks(options: SplitOptions) -> list[str]:
    flags = {
        "random": options.strategy == Strategy.RANDOM.value,
        "given": options.strategy == Strategy.GIVEN.value,
        "include_duplicates": options.include_duplicates,
        "include_rejected": options.include_rejected,
        "include_outside": options.include_outside,
    }
    return [RISKS[name] for name, on in flags.items() if on]


def _drop(frame: pd.DataFrame, keep: npt.NDArray[np.bool_], *arrays: Any) -> tuple[Any, ...]:
    return (frame[keep].reset_index(drop=True), *(a[keep] for a in arrays))


def split(
    dataset_dir: Path | Dataset, options: SplitOptions | None = None, progress: Any = None
) -> SplitReport:
    """Make the splits and write DATASET_DIR/splits/."""
    options = options or SplitOptions()
    options.validate()
    dataset = Dataset.at(dataset_dir)
    dataset.require_manifest()
    out_dir = dataset.splits_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file, not a folder", hint="move it away")
    if out_dir.is_dir():
        recover(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not options.force:
        raise UsageError(f"{out_dir} already has splits", hint="pass --force to replace them")
    with dataset.writing("split"):
        return _split(dataset, options, progress)


def _split(dataset: Dataset, options: SplitOptions, progress: Any) -> SplitReport:
    notes: list[str] = []
    prepare_inputs(dataset, notes)
    frame, excluded, digest, removed = candidate_photos(dataset, options)
    if len(frame) < 3:
        raise InputError(
            f"{dataset.root}: only {len(frame)} photos to split (accepted, kept, inside the region)",
            hint="check `gpskit info` and `gpskit coverage` (is --region right?)",
        )
    units = unit_labels(frame, options)
    if options.strategy == Strategy.GIVEN.value:
        split_index = given_splits(frame)
        excluded["no_given_split"] = int((split_index < 0).sum())
        frame, units, split_index = _drop(frame, split_index >= 0, units, split_index)
    else:
        split_index = assign(frame, units, options)
    drop = buffer_mask(frame, split_index, options)
    excluded["buffer"] = int(drop.sum())
    frame, units, split_index = _drop(frame, ~drop, units, split_index)
    warnings = _risks(options)
    images = embed_images(frame, options, progress)
    failed = np.array([isinstance(e, str) for e in images], bool)
    failures = [
        f"{r}/{p}: {e}"
        for r, p, e in zip(frame.root, frame.path, images, strict=True)
        if isinstance(e, str)
    ]
    if failed.any():
        warnings.append(
            f"{int(failed.sum())} photos could not be embedded and were left out (see embed_failures)"
        )
    frame, units, split_index = _drop(frame, ~failed, units, split_index)
    embedded = [e for e in images if not isinstance(e, str)]
    tables = split_tables(frame, embedded, split_index, unit_names(frame, units, options))
    report = _report(dataset, frame, units, split_index, excluded, options)
    report.manifest_sha256 = digest
    report.warnings, report.embed_failures, report.notes = warnings, failures, notes
    report.duplicates_left_out = removed
    record = report.to_dict()
    record.pop("notes")
    report.written = write_splits(dataset.splits_dir, tables, record, load_schema("split"), options)
    return report


def given_splits(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Split index per row from the split each photo came with (-1: none, or a name that
    is not train, validation or test)."""
    index = {name: i for i, name in enumerate(SPLIT_NAMES)}
    named = frame.source_split.fillna("").astype(str).str.strip().str.lower()
    found = named.map(lambda n: index.get(GIVEN_NAMES.get(n, ""), -1)).to_numpy(np.int64)
    if not (found >= 0).any():
        raise InputError(
            "no photo came with a split of its own (the manifest's source_split)",
            hint="ingest a table or Hub dataset that has splits (data/train-*.parquet, a "
            "split column), or choose another --strategy",
        )
    if not (found == 0).any():
        raise InputError("no photo came in the train split", hint="choose another --strategy")
    return found


def _report(
    dataset: Dataset,
    frame: pd.DataFrame,
    units: npt.NDArray[np.int64],
    split_index: npt.NDArray[np.int64],
    excluded: dict[str, int],
    options: SplitOptions,
) -> SplitReport:
    counts = {name: int((split_index == i).sum()) for i, name in enumerate(SPLIT_NAMES)}
    total = max(1, sum(counts.values()))
    return SplitReport(
        dataset_dir=str(dataset.root),
        strategy=options.strategy,
        ratios=list(options.ratios),
        seed=options.seed,
        counts=counts,
        units={name: len(np.unique(units[split_index == i])) for i, name in enumerate(SPLIT_NAMES)},
        shares={name: round(counts[name] / total, 4) for name in SPLIT_NAMES},
        excluded=excluded,
        leakage=leakage_report(frame, split_index),
        label_noise_m=label_noise(
            frame.latitude,
            frame.longitude,
            frame.spot_latitude,
            frame.spot_longitude,
            frame.spot_id,
        ),
        options={
            k: v for k, v in asdict(options).items() if k not in ("force", "workers", "engine")
        },
        manifest_sha256="",  # set by the caller: the hash of the manifest bytes it read
        gpskit_version=__version__,
    )
