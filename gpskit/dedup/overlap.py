"""Photos of one dataset that also appear in another (``gpskit dedup --against``): every
link kind that can hold between two datasets, sought with the same finders as within one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from gpskit.dataset import Dataset
from gpskit.dedup.hashes import SOURCE
from gpskit.dedup.links import BY_MATCH, LINKS, TRANSFORM_NAMES
from gpskit.dedup.lists import CODES, ManifestSource, read_code_lists
from gpskit.dedup.options import CROP_COLUMNS, DIHEDRAL_COLUMNS, DedupOptions
from gpskit.errors import MissingStepError
from gpskit.schema import load_schema

OVERLAP_COLUMNS = load_schema("overlap").names


def manifest_frame(dataset: Dataset, options: DedupOptions) -> tuple[pd.DataFrame, str]:
    """The columns dedup needs of the manifest, and the hash of the bytes read. Lists of
    hashes come as Arrow ``list<uint64>`` columns, read a batch at a time (no Python
    objects: 180M crop hashes at 10M photos), and the frame knows its file, for the
    256-bit twins read when needed."""
    source = ManifestSource.of(dataset.manifest_path)
    lists = [c for c in options.manifest_columns() if c in (*CROP_COLUMNS, *DIHEDRAL_COLUMNS)]
    columns = [c for c in options.manifest_columns() if c not in lists]
    table, digest = dataset.manifest_snapshot(columns)
    source.check()  # the file the lists are read from is the one hashed
    for name in lists:
        codes = read_code_lists(source, name)
        if codes is not None:
            table = table.append_column(name, codes)
    mapped = pd.ArrowDtype(CODES)
    frame: pd.DataFrame = table.to_pandas(
        types_mapper=lambda kind: mapped if kind == CODES else None
    ).reset_index(drop=True)
    frame.attrs[SOURCE] = source
    pa.default_memory_pool().release_unused()  # the read's buffers, back to the system
    return frame, digest


def _hits(mine: pd.DataFrame, theirs: pd.DataFrame, options: DedupOptions) -> pd.DataFrame | None:
    """Every matching (mine, theirs) pair as rows m, o, match, phash_distance, transform."""
    found = [
        pd.DataFrame(
            {
                "m": pairs.a,
                "o": pairs.b,
                "match": kind.match,
                "phash_distance": pairs.distance,
                "transform": pairs.transform,
            }
        )
        for kind in LINKS
        if kind.across
        for pairs in kind.find(mine, theirs, options)
        if len(pairs.a)
    ]
    return pd.concat(found, ignore_index=True) if found else None


def find_overlap(frame: pd.DataFrame, other_dir: Path, options: DedupOptions) -> pd.DataFrame:
    """Photos of ``frame`` that also appear (exactly or nearly) in the dataset ``other_dir``."""
    other_dataset = Dataset(other_dir)
    if not other_dataset.manifest_path.exists():
        raise MissingStepError(
            f"--against {other_dir}: no {other_dataset.manifest_path.name} there",
            hint=f"run `gpskit ingest PHOTOS --out {other_dir}` first",
        )
    other, _ = manifest_frame(other_dataset, options)
    hits = _hits(frame[frame.read_status == "ok"], other[other.read_status == "ok"], options)
    if hits is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OVERLAP_COLUMNS})
    hits["rank"] = hits.match.map(lambda m: BY_MATCH[m].priority)
    hits["turned"] = hits["transform"] != 0
    hits = hits.sort_values(["m", "o", "rank", "turned"]).drop_duplicates(["m", "o"])
    return (
        pd.DataFrame(
            {
                "root": frame.root.to_numpy()[hits.m],
                "path": frame.path.to_numpy()[hits.m],
                "other_dataset": str(other_dir),
                "other_root": other.root.to_numpy()[hits.o],
                "other_path": other.path.to_numpy()[hits.o],
                "kind": hits.match.map(lambda m: BY_MATCH[m].kind).to_numpy(),
                "match": hits.match.to_numpy(),
                "transform": np.array(TRANSFORM_NAMES, dtype=object)[
                    hits["transform"].to_numpy(int)
                ],
                "phash_distance": pd.array(hits.phash_distance.to_numpy(), dtype="Int16"),
            }
        )
        .sort_values(["root", "path", "other_root", "other_path"])
        .reset_index(drop=True)
    )
