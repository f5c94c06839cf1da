"""The names inside a dataset folder, and which of its entries a walk for photos skips.

Kept apart from :mod:`gpskit.dataset` (which loads Arrow and numpy) so that the quick paths
of the command line (``--help``, an ingest with nothing new) can know a dataset's layout
without paying for the libraries that read its tables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gpskit.config import DATASET_ENV, DEFAULT_DATASET_DIR

MANIFEST_FILE = "manifest.parquet"
DUPLICATES_FILE = "duplicates.parquet"
OVERLAP_FILE = "overlap.parquet"
CONTACT_SHEET_FILE = "duplicates.png"
COVERAGE_FILE = "coverage.parquet"
DECISIONS_FILE = "decisions.sqlite"  # what people decided (gpskit.decisions)
#: The decisions' files: SQLite keeps recent writes in the -wal file until a checkpoint.
DECISIONS_FILES = (DECISIONS_FILE, f"{DECISIONS_FILE}-wal")
COVERAGE_DIR = "coverage"
SPLITS_DIR = "splits"
RUNS_DIR = "runs"
STATE_DIR = ".gpskit"  # gpskit's own bookkeeping: the write lock, journals, logs
IMPORTED_DIR = "imported"  # images written out of tables (a Hub dataset's image bytes)
#: Files at the top of a dataset folder that its steps write.
OWN_FILES = frozenset(
    {MANIFEST_FILE, DUPLICATES_FILE, OVERLAP_FILE, COVERAGE_FILE, CONTACT_SHEET_FILE}
    | {DECISIONS_FILE, f"{DECISIONS_FILE}-wal", f"{DECISIONS_FILE}-shm"}
)
#: Folders inside a dataset folder whose every file a step owns.
OWN_FOLDERS = frozenset({STATE_DIR, SPLITS_DIR, COVERAGE_DIR, RUNS_DIR, "sweeps", IMPORTED_DIR})
#: Folders a step stages its outputs in before switching them in (left by a killed run).
STAGING_PREFIXES = (".dedup-", ".coverage-", ".splits-", ".gpskit-")


def default_dataset_dir() -> Path:
    """The dataset folder used when none is given: ``$GPSKIT_DATASET`` or ``./gpskit-data``."""
    env = os.environ.get(DATASET_ENV)
    return Path(env) if env else DEFAULT_DATASET_DIR


def dataset_root(dataset: str | os.PathLike[str] | Any | None) -> Path:
    """The folder of a dataset named by its path, by a ``Dataset``, or not at all (the
    default folder), without loading :mod:`gpskit.dataset`."""
    if dataset is None:
        return default_dataset_dir()
    if isinstance(dataset, str | os.PathLike):
        return Path(dataset)
    return Path(dataset.root)


def own_entries(
    folder: Path, dirnames: list[str], filenames: list[str]
) -> tuple[list[str], list[str]]:
    """What of a folder's entries a walk for photos keeps: in a dataset folder (one with
    gpskit's ``.gpskit/``), not the dataset's own tables and folders; anywhere, not the
    ``.gpskit-*`` markers of folders gpskit fills."""
    filenames = [n for n in filenames if not n.startswith(".gpskit-")]
    if not (folder / STATE_DIR).is_dir():
        return dirnames, filenames
    return (
        [d for d in dirnames if d not in OWN_FOLDERS and not d.startswith(STAGING_PREFIXES)],
        [n for n in filenames if n not in OWN_FILES],
    )
