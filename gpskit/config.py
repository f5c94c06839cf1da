"""Defaults that several steps share, each defined once."""

from __future__ import annotations

import os
from pathlib import Path

#: Where ``gpskit ingest`` writes and every later step reads, unless told otherwise.
DEFAULT_DATASET_DIR = Path("gpskit-data")
#: Environment variable that overrides :data:`DEFAULT_DATASET_DIR`.
DATASET_ENV = "GPSKIT_DATASET"

MANIFEST_FILE = "manifest.parquet"


def default_dataset_dir() -> Path:
    """The dataset folder used when none is given: ``$GPSKIT_DATASET`` or ``./gpskit-data``."""
    env = os.environ.get(DATASET_ENV)
    return Path(env) if env else DEFAULT_DATASET_DIR


def resolve_dataset_dir(path: Path | None) -> Path:
    """The dataset folder a command works on: the argument if given, else the default."""
    return path if path is not None else default_dataset_dir()


def _bundled_dir(name: str) -> Path:
    """Find ``schemas/`` or ``regions/`` in a wheel install or a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gpskit's bundled {name}/ folder is missing (looked next to {here})")


def schemas_dir() -> Path:
    """Folder of the versioned JSON schemas shipped with gpskit."""
    return _bundled_dir("schemas")


def regions_dir() -> Path:
    """Folder of the GeoJSON regions shipped with gpskit."""
    return _bundled_dir("regions")
